/**
 * The admin page's filter form → an audit query. The page accepts what a person types: an account's e-mail or id,
 * calendar days in Paris time (a whole day, both ends included). The API keeps its strict contract
 * (`auditQuerySchema`: ids and ISO 8601 instants).
 */
import { parseWith } from "../http/validation.server";
import { auditQuerySchema, type AuditFilters, type AuditQuery } from "./audit.server";
import { FILTER_FIELDS, type FilterField, type FilterValues } from "./fields";
import { RESOLVE_LIMIT, resolveActor, resolveAction, resolvePatient, type Match } from "./resolve.server";

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME_ZONE = "Europe/Paris";

/** Minutes east of UTC in Paris at that instant (60 in winter, 120 in summer). */
function parisOffsetMinutes(at: Date): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: TIME_ZONE,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  }).formatToParts(at);
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const wall = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"));
  return Math.round((wall - Math.floor(at.getTime() / 60_000) * 60_000) / 60_000);
}

/** 00:00 in Paris on a calendar day `YYYY-MM-DD` (null when the day does not exist). */
export function parisDayStart(day: string): Date | null {
  const m = DAY.exec(day);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const utcMidnight = Date.UTC(y, mo - 1, d);
  const check = new Date(utcMidnight);
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return null;
  // The offset at Paris midnight: guess with the offset at UTC midnight, then correct once (DST changes at 02:00
  // or 03:00, never at midnight, so one correction is enough).
  let t = utcMidnight - parisOffsetMinutes(check) * 60_000;
  t = utcMidnight - parisOffsetMinutes(new Date(t)) * 60_000;
  return new Date(t);
}

/** The last millisecond of a calendar day in Paris (just before the next day's midnight). */
export function parisDayEnd(day: string): Date | null {
  const m = DAY.exec(day);
  if (!m || !parisDayStart(day)) return null;
  const next = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + 1)).toISOString().slice(0, 10);
  return new Date(parisDayStart(next)!.getTime() - 1);
}

/** The fields an admin may fill with words (names, e-mails, labels), resolved to ids on the server. */
export type ResolvedField = "actor" | "patient" | "action";

export type PageFilters =
  | { ok: true; query: AuditQuery; values: FilterValues }
  | {
      ok: false;
      errors: Partial<Record<FilterField | "cursor" | "limit", string>>;
      values: FilterValues;
      /** When a name matches several accounts, patients or actions: the choices, each a link on the page. */
      matches: Partial<Record<ResolvedField, Match[]>>;
    };

const RESOLVERS: Record<ResolvedField, (text: string) => Match[] | Promise<Match[]>> = {
  actor: resolveActor,
  patient: resolvePatient,
  action: resolveAction,
};
const NONE: Record<ResolvedField, string> = {
  actor: "Aucun compte ne correspond (nom, adresse e-mail ou identifiant).",
  patient: "Aucun patient ne correspond (nom ou identifiant).",
  action: "Aucune action ne correspond à ce libellé.",
};
const SEVERAL: Record<ResolvedField, string> = {
  actor: "Plusieurs comptes correspondent : choisissez-en un ci-dessous.",
  patient: "Plusieurs patients correspondent : choisissez-en un ci-dessous.",
  action: "Plusieurs actions correspondent : choisissez-en une ci-dessous.",
};

/** Reads the filter form (GET parameters). Field errors come back in French, keyed by field, for the form. */
export async function parsePageFilters(params: URLSearchParams, defaults: { limit?: number } = {}): Promise<PageFilters> {
  const values: FilterValues = {};
  for (const field of FILTER_FIELDS) {
    const v = params.get(field)?.trim();
    if (v) values[field] = v;
  }
  const errors: Partial<Record<FilterField, string>> = {};
  const matches: Partial<Record<ResolvedField, Match[]>> = {};
  const resolved: Partial<Record<ResolvedField, string>> = {};
  for (const field of Object.keys(RESOLVERS) as ResolvedField[]) {
    const text = values[field];
    if (!text) continue;
    // A NUL or an absurdly long text names nothing: the schema below refuses it with a field error.
    if (text.length > 200 || text.includes("\0")) {
      resolved[field] = text;
      continue;
    }
    const found = await RESOLVERS[field](text);
    if (found.length === 1) resolved[field] = found[0]!.id;
    else if (found.length === 0) errors[field] = NONE[field];
    else {
      errors[field] = SEVERAL[field];
      matches[field] = found.slice(0, RESOLVE_LIMIT);
    }
  }
  const day = (field: "from" | "to") => {
    const v = values[field];
    if (!v || !DAY.test(v)) return v;
    const at = field === "from" ? parisDayStart(v) : parisDayEnd(v);
    if (!at) errors[field] = "Date inexistante.";
    return at?.toISOString();
  };
  const input = {
    ...values,
    ...resolved,
    from: day("from"),
    to: day("to"),
    cursor: params.get("cursor") || undefined,
    limit: params.get("limit") || defaults.limit,
  };
  const parsed = parseWith(auditQuerySchema, input);
  if (!parsed.ok || Object.keys(errors).length > 0) {
    // The schema's messages follow the API's "field: message" form; next to a form field they start a sentence.
    const fromSchema = Object.entries(parsed.ok ? {} : parsed.errors).map(([k, m]) => [k, m.charAt(0).toUpperCase() + m.slice(1)]);
    return { ok: false, errors: { ...Object.fromEntries(fromSchema), ...errors }, values, matches };
  }
  return { ok: true, query: parsed.data, values };
}

/** The filters of a query as a short query string (kept in the audit event of the search itself). */
export function filterSummary(q: AuditFilters): string {
  const params = new URLSearchParams();
  for (const field of FILTER_FIELDS) {
    const v = q[field];
    if (v !== undefined) params.set(field, v instanceof Date ? v.toISOString() : String(v));
  }
  return params.toString().slice(0, 500);
}

/** Only the filter fields of a query (no paging). */
export function filtersOf(q: AuditQuery): AuditFilters {
  const { cursor: _c, limit: _l, ...filters } = q;
  return filters;
}
