/**
 * Patient identity: INS validation and the identity check every arriving DICOM goes through (upload form and API
 * today, DICOMweb and DIMSE later). Pure functions, no I/O: the callers decide what a mismatch costs.
 *
 *   checkIdentity(headers, patient) → { result: "ok" } | { result: "mismatch", fields, missing } | { result: "missing", fields }
 *
 * Compared, when both the header and the record carry a value: PatientID (against the IPP, or the INS when the
 * issuer names the INS authority or the id is the INS), PatientName, PatientBirthDate, PatientSex. Names and dates
 * are normalised first (case, accents, `^` and punctuation, date formats), so "DUPONT^MARIE" matches "Marie Dupont".
 */

export const IDENTITY_FIELDS = ["PatientID", "PatientName", "PatientBirthDate", "PatientSex"] as const;
export type IdentityField = (typeof IDENTITY_FIELDS)[number];

/** What a DICOM header says about whose image it is (raw strings as read; any may be absent). */
export interface IdentityHeaders {
  patientId?: string;
  issuerOfPatientId?: string;
  patientName?: string;
  patientBirthDate?: string;
  patientSex?: string;
}

/** What the record says. */
export interface IdentityRecord {
  displayName: string;
  ipp?: string | null;
  ins?: string | null;
  birthDate?: string | null;
  sex?: string | null;
}

export type IdentityCheck =
  | { result: "ok" }
  | { result: "mismatch"; fields: IdentityField[]; missing: IdentityField[] }
  | { result: "missing"; fields: IdentityField[] };

/** French labels of the fields, for messages ("nom (PatientName)"). */
export const IDENTITY_FIELD_LABELS: Record<IdentityField, { fr: string; en: string }> = {
  PatientID: { fr: "identifiant patient", en: "patient id" },
  PatientName: { fr: "nom", en: "name" },
  PatientBirthDate: { fr: "date de naissance", en: "birth date" },
  PatientSex: { fr: "sexe", en: "sex" },
};

// ---- normalisation ----------------------------------------------------------------------------------------------

/** Lower case, accents removed, `^`, commas, hyphens, apostrophes and dots as spaces; the words of a name. */
export function nameTokens(name: string): string[] {
  return name
    .replace(/[\^,.\-'’_=]/g, " ")
    .normalize("NFD")
    // Combining marks only (the "^" separator is itself a Unicode diacritic, so it went first).
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean);
}

/**
 * Two names agree when the words of one are all among the words of the other, in any order (DICOM puts the family
 * name first; a header may carry a middle or birth name the record lacks, or the other way round).
 */
export function namesAgree(a: string, b: string): boolean {
  const ta = nameTokens(a.split("=", 1)[0]!);
  const tb = nameTokens(b.split("=", 1)[0]!);
  if (ta.length === 0 || tb.length === 0) return true;
  const [small, large] = ta.length <= tb.length ? [ta, tb] : [tb, ta];
  const pool = [...large];
  for (const word of small) {
    const i = pool.indexOf(word);
    if (i < 0) return false;
    pool.splice(i, 1);
  }
  return true;
}

/**
 * A date as `YYYY-MM-DD`, from DICOM DA (`YYYYMMDD`), ISO (`YYYY-MM-DD`), ACR-NEMA (`YYYY.MM.DD`) or French
 * (`DD/MM/YYYY`); null when it is none of them or not a real calendar date.
 */
export function normaliseDate(value: string | null | undefined): string | null {
  const s = (value ?? "").trim();
  let m = /^(\d{4})[-.]?(\d{2})[-.]?(\d{2})$/.exec(s);
  let y: string, mo: string, d: string;
  if (m) [, y, mo, d] = m as unknown as [string, string, string, string];
  else if ((m = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(s))) [, d, mo, y] = m as unknown as [string, string, string, string];
  else return null;
  const date = new Date(`${y}-${mo}-${d}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== `${y}-${mo}-${d}`) return null;
  return `${y}-${mo}-${d}`;
}

/** `F`, `M`, or null for unknown/other/absent (DICOM `O`, record `U`). */
export function normaliseSex(value: string | null | undefined): "F" | "M" | null {
  const s = (value ?? "").trim().toUpperCase();
  return s === "F" || s === "M" ? s : null;
}

/** An identifier compared without case, spaces or leading/trailing padding. */
const normaliseId = (value: string) => value.replace(/\s+/g, "").toUpperCase();

// ---- INS (NIR with its key) ------------------------------------------------------------------------------------

export type InsCheck = { ok: true; ins: string } | { ok: false; reason: "length" | "format" | "key" };

/**
 * Validates an INS/NIR: 15 characters once spaces are removed (13 + a 2-digit key), the key being
 * 97 − (number mod 97), where Corsica's department codes 2A and 2B count as 19 and 18.
 */
export function validateIns(input: string): InsCheck {
  const ins = input.replace(/[\s.]/g, "").toUpperCase();
  if (ins.length !== 15) return { ok: false, reason: "length" };
  if (!/^[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}$/.test(ins)) return { ok: false, reason: "format" };
  const body = ins.slice(0, 13);
  const numeric = body.slice(5, 7) === "2A" ? `${body.slice(0, 5)}19${body.slice(7)}` : body.slice(5, 7) === "2B" ? `${body.slice(0, 5)}18${body.slice(7)}` : body;
  const key = 97 - (Number(numeric) % 97);
  return key === Number(ins.slice(13)) ? { ok: true, ins } : { ok: false, reason: "key" };
}

/** OID of the INS-NIR authority (ASIP/ANS), as it appears in IssuerOfPatientID or its qualifiers. */
export const INS_NIR_OID = "1.2.250.1.213.1.4.8";

function idAgrees(headers: IdentityHeaders, record: IdentityRecord): boolean | null {
  const id = normaliseId(headers.patientId!);
  const issuer = (headers.issuerOfPatientId ?? "").trim().toUpperCase();
  const ins = record.ins ? normaliseId(record.ins) : null;
  const ipp = record.ipp ? normaliseId(record.ipp) : null;
  if (ins && (issuer.includes(INS_NIR_OID) || issuer.startsWith("INS"))) return id === ins;
  if (ipp === null && ins === null) return null;
  return id === ipp || id === ins;
}

/** Compares the header's identity with the record; see the module comment. */
export function checkIdentity(headers: IdentityHeaders, record: IdentityRecord): IdentityCheck {
  const mismatch: IdentityField[] = [];
  const missing: IdentityField[] = [];
  const present = (v: string | undefined) => (v ?? "").replace(/\^/g, "").trim() !== "";

  if (!present(headers.patientId)) missing.push("PatientID");
  else if (idAgrees(headers, record) === false) mismatch.push("PatientID");

  if (!present(headers.patientName)) missing.push("PatientName");
  else if (!namesAgree(headers.patientName!, record.displayName)) mismatch.push("PatientName");

  if (!present(headers.patientBirthDate)) missing.push("PatientBirthDate");
  else if (record.birthDate) {
    const header = normaliseDate(headers.patientBirthDate);
    // An unreadable date in the header cannot vouch for the patient: it counts as a contradiction.
    if (header !== normaliseDate(record.birthDate)) mismatch.push("PatientBirthDate");
  }

  const headerSex = normaliseSex(headers.patientSex);
  if (!present(headers.patientSex)) missing.push("PatientSex");
  else if (headerSex && normaliseSex(record.sex) && headerSex !== normaliseSex(record.sex)) mismatch.push("PatientSex");

  if (mismatch.length) return { result: "mismatch", fields: mismatch, missing };
  if (missing.length) return { result: "missing", fields: missing };
  return { result: "ok" };
}

/** "nom (PatientName), date de naissance (PatientBirthDate)". */
export function describeFields(fields: readonly IdentityField[], lang: "fr" | "en" = "fr"): string {
  return fields.map((f) => `${IDENTITY_FIELD_LABELS[f][lang]} (${f})`).join(", ");
}
