/**
 * Exports of a filtered set of audit events, streamed: a ReadableStream that pulls one keyset page at a time, so a
 * million events never sit in memory and a slow client slows the queries down instead of filling a buffer.
 * Formats: CSV (every column, hashes included) and NDJSON of FHIR R4 AuditEvent resources (application/fhir+ndjson,
 * one resource per line, IHE BALP shape). Patients acting on their own record are not named (`forAdmins`).
 */
import { eventPages, newestEventId, type AuditEventRow, type AuditFilters } from "./audit.server";
import { toFhirAuditEvent } from "./fhir.server";
import { filterSummary } from "./filters.server";

export const EXPORT_FORMATS = ["csv", "ndjson"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const CSV_COLUMNS = [
  "id",
  "at",
  "actor_id",
  "actor_role",
  "actor_name",
  "action",
  "resource_type",
  "resource_id",
  "patient_id",
  "outcome",
  "reason",
  "purpose",
  "request_id",
  "ip",
  "user_agent",
  "prev_hash",
  "hash",
] as const;

/**
 * The CSV's dialect by language. French spreadsheet software (Excel, LibreOffice in a French locale) splits on `;`
 * (the comma is the decimal separator) and shows French headers; English keeps RFC 4180's comma and the column
 * codes. Both start with a UTF-8 BOM so accents in names survive.
 */
export type CsvLang = "fr" | "en";
export const CSV_HEADERS_FR: Record<(typeof CSV_COLUMNS)[number], string> = {
  id: "n°",
  at: "date (UTC)",
  actor_id: "identifiant de l'acteur",
  actor_role: "rôle de l'acteur",
  actor_name: "nom de l'acteur",
  action: "action",
  resource_type: "type de ressource",
  resource_id: "identifiant de la ressource",
  patient_id: "identifiant du patient",
  outcome: "résultat",
  reason: "motif",
  purpose: "finalité",
  request_id: "identifiant de requête",
  ip: "adresse IP",
  user_agent: "navigateur",
  prev_hash: "empreinte précédente",
  hash: "empreinte",
};
export const CSV_SEPARATOR: Record<CsvLang, string> = { fr: ";", en: "," };

export function csvHeader(lang: CsvLang = "en"): string {
  const names = lang === "fr" ? CSV_COLUMNS.map((c) => CSV_HEADERS_FR[c]) : [...CSV_COLUMNS];
  return `${names.map((n) => csvField(n, CSV_SEPARATOR[lang])).join(CSV_SEPARATOR[lang])}\r\n`;
}

/**
 * One CSV field (RFC 4180): quoted when it holds the separator, a quote or a line break. A text starting with = + - @ or a
 * control character is prefixed with an apostrophe so a spreadsheet never runs it as a formula (CSV injection).
 */
export function csvField(value: unknown, separator = ","): string {
  if (value === null || value === undefined) return "";
  let text = value instanceof Date ? value.toISOString() : String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",;\r\n]/.test(text) || text.includes(separator) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * The row as admins receive it: a patient acting on their own record is not named (their account id stays).
 * Such a row's hash can then not be recomputed from the export: the archive files (npm run audit:archive) and
 * the server's verification are the verifiable forms of the trail.
 */
export function forAdmins(row: AuditEventRow): AuditEventRow {
  return row.actorRole === "patient" && row.actorName !== null ? { ...row, actorName: null } : row;
}

export function csvLine(row: AuditEventRow, lang: CsvLang = "en"): string {
  const values = [
    row.id,
    row.at,
    row.actorId,
    row.actorRole,
    row.actorName,
    row.action,
    row.resourceType,
    row.resourceId,
    row.patientId,
    row.outcome,
    row.reason,
    row.purpose,
    row.requestId,
    row.ip,
    row.userAgent,
    row.prevHash,
    row.hash,
  ];
  const separator = CSV_SEPARATOR[lang];
  return `${values.map((v) => csvField(v, separator)).join(separator)}\r\n`;
}

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: "text/csv; charset=utf-8",
  ndjson: "application/fhir+ndjson",
};

export interface ExportOptions {
  /** Rows per database page. */
  pageSize?: number;
  /** The site shown as the FHIR source (PUBLIC_URL's host). */
  site?: string;
  /** Newest event included (defaults to the newest at the start: the export does not include itself). */
  upTo?: number;
  /** The CSV's dialect (separator and headers); English by default (the API's contract). */
  csvLang?: CsvLang;
}

/** The filtered events, newest first, encoded as they are pulled. */
export async function exportStream(filters: AuditFilters, format: ExportFormat, options: ExportOptions = {}): Promise<ReadableStream<Uint8Array>> {
  const upTo = options.upTo ?? (await newestEventId());
  const pages = eventPages(filters, { pageSize: options.pageSize ?? 1000, upTo });
  const encoder = new TextEncoder();
  const encode =
    format === "csv"
      ? (row: AuditEventRow) => csvLine(forAdmins(row), options.csvLang)
      : (row: AuditEventRow) => `${JSON.stringify(toFhirAuditEvent(forAdmins(row), { site: options.site }))}\n`;
  let started = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!started && format === "csv") {
          // A BOM lets spreadsheet software read the UTF-8 accents of French names correctly.
          controller.enqueue(encoder.encode(`\uFEFF${csvHeader(options.csvLang)}`));
        }
        started = true;
        const next = await pages.next();
        if (next.done) {
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(next.value.map(encode).join("")));
      },
      async cancel() {
        await pages.return(undefined);
      },
    },
    { highWaterMark: 0 },
  );
}

/** `audit-2026-11-23T10-00-00Z.csv`: the file name of an export started now. */
export function exportFileName(format: ExportFormat, now = new Date()): string {
  const stamp = now.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/:/g, "-");
  return `audit-${stamp}.${format === "csv" ? "csv" : "ndjson"}`;
}

/** What an export's audit event names: the format and the filters (and the patient, when filtered on one). */
export function describeExport({ format, filters }: { format: ExportFormat; filters: AuditFilters }) {
  const summary = filterSummary(filters);
  return { resourceType: "audit_export", resourceId: `${format}${summary ? `?${summary}` : ""}`, patientId: filters.patient ?? null };
}

/** The streamed download, for the page and the API alike. */
export function exportResponse(format: ExportFormat, body: ReadableStream<Uint8Array>): Response {
  return new Response(body, {
    headers: {
      "Content-Type": EXPORT_CONTENT_TYPES[format],
      "Content-Disposition": `attachment; filename="${exportFileName(format)}"`,
      "Cache-Control": "no-store",
    },
  });
}
