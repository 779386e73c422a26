/**
 * QIDO-RS (PS3.18 10.6): studies, series and instances searched in PostgreSQL metadata only (no object is opened,
 * nothing decrypted). Every study listed has passed the same policy as reading it (`dicom.retrieve`: care team and
 * live care consent, the patient themself, or a `query` machine under live care consent): a search never reveals a
 * study its caller could not open.
 */
import { and, eq, inArray, isNotNull, isNull, or, type SQL } from "drizzle-orm";
import type { Actor } from "../accounts/actor";
import { db } from "../db/db.server";
import { exams, images, patients } from "../db/schema";
import { nameTokens } from "../exams/identity.server";
import { HttpError } from "../http/errors.server";
import { authorize } from "../policy/policy.server";
import { attr, personName, type DicomJson } from "./dicom-json.server";

export type Level = "study" | "series" | "instance";

/** Matching keys: keyword → tag (PS3.18 Table 10.6.1-5 and the attributes Nexus keeps). */
const KEYS: Record<string, string> = {
  StudyInstanceUID: "0020000D",
  PatientID: "00100020",
  PatientName: "00100010",
  StudyDate: "00080020",
  AccessionNumber: "00080050",
  ModalitiesInStudy: "00080061",
  Modality: "00080060",
  SeriesInstanceUID: "0020000E",
  SOPInstanceUID: "00080018",
  SOPClassUID: "00080016",
};
const TAG_TO_KEY = Object.fromEntries(Object.entries(KEYS).map(([k, t]) => [t, k]));
const CONTROL = new Set(["limit", "offset", "includefield", "fuzzymatching"]);
export const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 200;

export interface Query {
  filters: Partial<Record<keyof typeof KEYS, string>>;
  limit: number;
  offset: number;
  /** Keys the standard lets us ignore (fuzzymatching, unknown attributes): named in a Warning header. */
  ignored: string[];
}

const bad = (message: string) => new HttpError(400, "invalid", message);

export function parseQuery(params: URLSearchParams): Query {
  const filters: Query["filters"] = {};
  const ignored: string[] = [];
  let limit = DEFAULT_LIMIT;
  let offset = 0;
  for (const [rawKey, value] of params) {
    if (CONTROL.has(rawKey)) {
      if (rawKey === "limit") {
        limit = Number(value);
        if (!Number.isInteger(limit) || limit < 1) throw bad("limit doit être un entier positif.");
        limit = Math.min(limit, MAX_LIMIT);
      } else if (rawKey === "offset") {
        offset = Number(value);
        if (!Number.isInteger(offset) || offset < 0) throw bad("offset doit être un entier positif ou nul.");
      } else if (rawKey === "fuzzymatching" && value === "true") ignored.push("fuzzymatching");
      continue;
    }
    const key = KEYS[rawKey] ? rawKey : TAG_TO_KEY[rawKey.toUpperCase()];
    if (!key) {
      ignored.push(rawKey);
      continue;
    }
    if (value !== "") filters[key as keyof typeof KEYS] = value;
  }
  if (filters.StudyDate) dateRange(filters.StudyDate); // validates
  return { filters, limit, offset, ignored };
}

/** A DICOM wildcard value (`*`, `?`) as an anchored regular expression. */
function wildcard(value: string, flags = ""): RegExp {
  const source = value.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${source}$`, flags);
}
const hasWildcard = (v: string) => /[*?]/.test(v);
/** UID list matching: `a,b` or `a\b`. */
const uidList = (v: string) => v.split(/[,\\]/).map((s) => s.trim()).filter(Boolean);

/** `YYYYMMDD`, `YYYYMMDD-YYYYMMDD`, `-YYYYMMDD`, `YYYYMMDD-` as an inclusive range of `YYYYMMDD` strings. */
export function dateRange(value: string): { from: string; to: string } {
  const m = /^(\d{8})?(-)?(\d{8})?$/.exec(value.trim());
  if (!m || (!m[1] && !m[3])) throw bad(`StudyDate « ${value} » : attendu AAAAMMJJ ou un intervalle AAAAMMJJ-AAAAMMJJ.`);
  if (!m[2]) return { from: m[1]!, to: m[1]! };
  return { from: m[1] ?? "00000000", to: m[3] ?? "99999999" };
}

/** PatientName matching: every word of the query (wildcards allowed) matches a distinct word of the name. */
export function nameMatches(query: string, name: string): boolean {
  const words = nameTokens(name);
  // nameTokens keeps `*` and `?` (it drops accents, case and the `^` separators).
  const wanted = nameTokens(query).map((w) => wildcard(w, "i"));
  const pool = [...words];
  for (const re of wanted) {
    const i = pool.findIndex((w) => re.test(w));
    if (i < 0) return false;
    pool.splice(i, 1);
  }
  return true;
}

export interface Row {
  imageId: string;
  patientId: string;
  studyInstanceUid: string;
  seriesInstanceUid: string | null;
  sopInstanceUid: string | null;
  sopClassUid: string | null;
  modality: string | null;
  rows: number | null;
  columns: number | null;
  bitsStored: number | null;
  transferSyntaxUid: string | null;
  studyDate: string | null;
  accessionNumber: string | null;
  displayName: string;
  ipp: string | null;
  ins: string | null;
  birthDate: string | null;
  sex: string | null;
  createdAt: Date;
}

/** The live (not erased) DICOM images matching the UID and SQL-expressible filters. */
export async function findRows(filters: Query["filters"] & { StudyInstanceUID?: string }): Promise<Row[]> {
  const where: (SQL | undefined)[] = [isNull(images.erasedAt), isNotNull(images.studyInstanceUid), isNull(patients.erasedAt)];
  if (filters.StudyInstanceUID) where.push(inArray(images.studyInstanceUid, uidList(filters.StudyInstanceUID)));
  if (filters.SeriesInstanceUID) where.push(inArray(images.seriesInstanceUid, uidList(filters.SeriesInstanceUID)));
  if (filters.SOPInstanceUID) where.push(inArray(images.sopInstanceUid, uidList(filters.SOPInstanceUID)));
  if (filters.SOPClassUID) where.push(inArray(images.sopClassUid, uidList(filters.SOPClassUID)));
  if (filters.AccessionNumber && !hasWildcard(filters.AccessionNumber)) where.push(eq(exams.accessionNumber, filters.AccessionNumber));
  if (filters.PatientID && !hasWildcard(filters.PatientID)) {
    where.push(or(eq(patients.ipp, filters.PatientID), eq(patients.ins, filters.PatientID.toUpperCase())));
  }
  const rows = await db
    .select({
      imageId: images.id,
      patientId: images.patientId,
      studyInstanceUid: images.studyInstanceUid,
      seriesInstanceUid: images.seriesInstanceUid,
      sopInstanceUid: images.sopInstanceUid,
      sopClassUid: images.sopClassUid,
      modality: images.modality,
      rows: images.height,
      columns: images.width,
      bitsStored: images.bitDepth,
      dicom: images.dicom,
      examDate: exams.date,
      accessionNumber: exams.accessionNumber,
      displayName: patients.displayName,
      ipp: patients.ipp,
      ins: patients.ins,
      birthDate: patients.birthDate,
      sex: patients.sex,
      createdAt: images.createdAt,
    })
    .from(images)
    .innerJoin(patients, eq(patients.id, images.patientId))
    .leftJoin(exams, eq(exams.id, images.examId))
    .where(and(...where));
  return rows.map((r) => ({
    ...r,
    studyInstanceUid: r.studyInstanceUid!,
    transferSyntaxUid: r.dicom?.transferSyntaxUid ?? null,
    studyDate: r.examDate ? r.examDate.replace(/-/g, "") : (r.dicom?.studyDate ?? null),
  }));
}

/** Filters that SQL did not apply (wildcards, names, dates, modalities) on one image row. */
function rowMatches(row: Row, f: Query["filters"]): boolean {
  if (f.PatientID && hasWildcard(f.PatientID) && ![row.ipp, row.ins].some((id) => id && wildcard(f.PatientID!).test(id))) return false;
  if (f.PatientName && !nameMatches(f.PatientName, row.displayName)) return false;
  if (f.AccessionNumber && hasWildcard(f.AccessionNumber) && !wildcard(f.AccessionNumber).test(row.accessionNumber ?? "")) return false;
  if (f.StudyDate) {
    const { from, to } = dateRange(f.StudyDate);
    if (!row.studyDate || row.studyDate < from || row.studyDate > to) return false;
  }
  if (f.Modality && !uidList(f.Modality).includes(row.modality ?? "")) return false;
  return true;
}

/** The rows whose patient the actor may read (one policy decision per patient, cached for the request). */
export async function readableRows(actor: Actor, rows: Row[]): Promise<Row[]> {
  const decisions = new Map<string, boolean>();
  for (const patientId of new Set(rows.map((r) => r.patientId))) {
    decisions.set(patientId, (await authorize(actor, "dicom.retrieve", { type: "study", patientId })).allowed);
  }
  return rows.filter((r) => decisions.get(r.patientId));
}

const key = (level: Level, r: Row) =>
  level === "study" ? r.studyInstanceUid : level === "series" ? `${r.studyInstanceUid}|${r.seriesInstanceUid}` : r.imageId;

/** Runs a search at `level` for `actor`; returns DICOM JSON objects and the patients they concern. */
export async function search(
  actor: Actor,
  level: Level,
  query: Query,
  scope: { study?: string; series?: string },
  base: string,
): Promise<{ results: DicomJson[]; patientIds: string[] }> {
  const filters = { ...query.filters };
  if (scope.study) filters.StudyInstanceUID = scope.study;
  if (scope.series) filters.SeriesInstanceUID = scope.series;
  const all = await readableRows(actor, await findRows(filters));
  const groups = new Map<string, Row[]>();
  // ModalitiesInStudy matches a study if any of its instances has one of the modalities.
  const modalities = query.filters.ModalitiesInStudy ? uidList(query.filters.ModalitiesInStudy) : null;
  const studiesWithModality = modalities ? new Set(all.filter((r) => modalities.includes(r.modality ?? "")).map((r) => r.studyInstanceUid)) : null;
  for (const r of all) {
    if (!rowMatches(r, query.filters)) continue;
    if (studiesWithModality && !studiesWithModality.has(r.studyInstanceUid)) continue;
    const k = key(level, r);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const sorted = [...groups.values()].sort(
    (a, b) => (b[0]!.studyDate ?? "").localeCompare(a[0]!.studyDate ?? "") || key(level, a[0]!).localeCompare(key(level, b[0]!)),
  );
  const page = sorted.slice(query.offset, query.offset + query.limit);
  // Counts are over everything the caller may read in the study/series, not just the matching rows.
  const results = page.map((group) => toJson(level, group, all, base));
  return { results, patientIds: [...new Set(page.map((g) => g[0]!.patientId))] };
}

function toJson(level: Level, group: Row[], all: Row[], base: string): DicomJson {
  const r = group[0]!;
  const studyUrl = `${base}/studies/${r.studyInstanceUid}`;
  const inStudy = all.filter((x) => x.studyInstanceUid === r.studyInstanceUid);
  const study: DicomJson = {
    "00080020": attr("DA", r.studyDate),
    "00080050": attr("SH", r.accessionNumber),
    "00100010": personName(r.displayName),
    "00100020": attr("LO", r.ipp ?? r.ins),
    "00100030": attr("DA", r.birthDate?.replace(/-/g, "")),
    "00100040": attr("CS", r.sex === "U" ? "O" : r.sex),
    "0020000D": attr("UI", r.studyInstanceUid),
  };
  if (level === "study") {
    return {
      ...study,
      "00080061": attr("CS", ...new Set(inStudy.map((x) => x.modality).filter((m): m is string => !!m))),
      "00081190": attr("UR", studyUrl),
      "00201206": attr("IS", new Set(inStudy.map((x) => x.seriesInstanceUid)).size),
      "00201208": attr("IS", inStudy.length),
    };
  }
  const seriesUrl = `${studyUrl}/series/${r.seriesInstanceUid}`;
  const series: DicomJson = {
    ...study,
    "00080060": attr("CS", r.modality),
    "0020000E": attr("UI", r.seriesInstanceUid),
  };
  if (level === "series") {
    return {
      ...series,
      "00081190": attr("UR", seriesUrl),
      "00201209": attr("IS", inStudy.filter((x) => x.seriesInstanceUid === r.seriesInstanceUid).length),
    };
  }
  return {
    ...series,
    "00020010": attr("UI", r.transferSyntaxUid),
    "00080016": attr("UI", r.sopClassUid),
    "00080018": attr("UI", r.sopInstanceUid),
    "00081190": attr("UR", `${seriesUrl}/instances/${r.sopInstanceUid}`),
    "00280010": attr("US", r.rows),
    "00280011": attr("US", r.columns),
    "00280101": attr("US", r.bitsStored),
  };
}
