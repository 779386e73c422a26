/**
 * What an admin types in the audit filters → the ids the trail holds. The trail stores ids only; names are looked
 * up here, on the server, at search time: a patient by display name or IPP (the hospital's id, exact, any case), an
 * actor by name or e-mail, an action by its label in either language.
 */
import { asc, eq, ilike, inArray, or } from "drizzle-orm";
import { db } from "../db/db.server";
import { patients, users } from "../db/schema";
import { actionLabel } from "../i18n/actions";
import { KNOWN_ACTIONS } from "./fields";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_MATCHES = 10;

export interface Match {
  id: string;
  label: string;
}

/** `%text%` for ILIKE, with the pattern characters of the text itself escaped. */
function contains(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Patients whose IPP is the text or whose display name contains it (case-insensitive); an id is taken as it is. */
export async function resolvePatient(text: string): Promise<Match[]> {
  const value = text.trim();
  if (UUID.test(value)) return [{ id: value.toLowerCase(), label: value }];
  const byIpp = await db
    .select({ id: patients.id, name: patients.displayName, ipp: patients.ipp })
    .from(patients)
    .where(ilike(patients.ipp, value.replace(/[\\%_]/g, (c) => `\\${c}`)));
  const rows = byIpp.length
    ? byIpp
    : await db
        .select({ id: patients.id, name: patients.displayName, ipp: patients.ipp })
        .from(patients)
        .where(ilike(patients.displayName, contains(value)))
        .orderBy(asc(patients.displayName))
        .limit(MAX_MATCHES + 1);
  return rows.map((r) => ({ id: r.id, label: r.ipp ? `${r.name} (IPP ${r.ipp})` : r.name }));
}

/** Accounts by id, exact e-mail, or name or e-mail containing the text. */
export async function resolveActor(text: string): Promise<Match[]> {
  const value = text.trim();
  if (UUID.test(value)) return [{ id: value.toLowerCase(), label: value }];
  const exact = await db.select({ id: users.id, name: users.name, email: users.email }).from(users).where(eq(users.email, value.toLowerCase()));
  const rows = exact.length
    ? exact
    : await db
        .select({ id: users.id, name: users.name, email: users.email })
        .from(users)
        .where(or(ilike(users.name, contains(value)), ilike(users.email, contains(value))))
        .orderBy(asc(users.name))
        .limit(MAX_MATCHES + 1);
  return rows.map((r) => ({ id: r.id, label: `${r.name} <${r.email}>` }));
}

/** Lower case, without accents or apostrophe variants: "Consultation d’une" = "consultation d'une". */
function fold(text: string): string {
  return text.normalize("NFD").replace(/\p{M}/gu, "").replace(/[’`]/g, "'").toLowerCase().trim();
}

/** Actions by code, or by label (French or English): an exact label first, else every label containing the text. */
export function resolveAction(text: string): Match[] {
  const value = text.trim();
  if ((KNOWN_ACTIONS as readonly string[]).includes(value) || /^[a-z]+\.[a-zA-Z]+$/.test(value)) return [{ id: value, label: value }];
  const wanted = fold(value);
  const labelled = KNOWN_ACTIONS.map((a) => ({ id: a as string, fr: actionLabel(a, "fr"), en: actionLabel(a, "en") }));
  const exact = labelled.filter((a) => fold(a.fr) === wanted || fold(a.en) === wanted);
  const found = exact.length ? exact : labelled.filter((a) => fold(a.fr).includes(wanted) || fold(a.en).includes(wanted));
  return found.map((a) => ({ id: a.id, label: a.fr }));
}

/** Display names of patients by id, for the audit tables (one query per page). */
export async function patientNames(ids: (string | null)[]): Promise<Record<string, string>> {
  const wanted = [...new Set(ids.filter((id): id is string => Boolean(id)))];
  if (wanted.length === 0) return {};
  const rows = await db.select({ id: patients.id, name: patients.displayName }).from(patients).where(inArray(patients.id, wanted));
  return Object.fromEntries(rows.map((r) => [r.id, r.name]));
}

export const RESOLVE_LIMIT = MAX_MATCHES;
