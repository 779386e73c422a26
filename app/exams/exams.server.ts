/**
 * Screening exams: where an arriving image is filed (identity check, exam by StudyInstanceUID or chosen, laterality
 * and view), and what an exam holds (its views, completeness, duplicates). See docs/decisions/2026-11-30-exam-model.md.
 *
 * Every arrival path (upload form, API; DICOMweb and DIMSE later) builds its vault admission with
 * {@link examAdmission}, so the identity check and the placement rules live here only.
 */
import { randomUUID } from "node:crypto";
import { and, asc, desc, eq, inArray, isNull, sql, type Placeholder } from "drizzle-orm";
import type { Actor } from "../accounts/actor";
import { db } from "../db/db.server";
import { exams, images, patients, type ExamStatus } from "../db/schema";
import { HttpError } from "../http/errors.server";
import type { Admission, ExamFiling, NewImageRow, Placement, Tx } from "../vault/vault.server";
import { readDicomHeaders, type DicomHeaders } from "./dicom-header.server";
import { checkIdentity, describeFields, normaliseDate, type IdentityField, type IdentityRecord } from "./identity.server";
import { isLaterality, isView, STANDARD_VIEWS, type Laterality, type View } from "./views";

export type ExamRow = typeof exams.$inferSelect;

// ---- upload fields ---------------------------------------------------------------------------------------------

/** The plain fields an upload may carry beside its files (multipart, before the files). */
export interface UploadFields {
  laterality?: string;
  view?: string;
  examId?: string;
  /** A doctor's typed reason to file a DICOM despite an identity mismatch (browser form only). */
  identityOverride?: string;
}

const UPLOAD_FIELD_NAMES = new Set<keyof UploadFields>(["laterality", "view", "examId", "identityOverride"]);

/**
 * Collects one multipart field into `fields` when it is an upload field (the parser calls it for each field, in
 * order); returns false for any other name. Kept apart from the parser so that it ports to any parser.
 */
export function collectUploadField(fields: UploadFields, name: string, value: string): boolean {
  if (!UPLOAD_FIELD_NAMES.has(name as keyof UploadFields)) return false;
  const trimmed = value.trim();
  if (trimmed !== "") fields[name as keyof UploadFields] = trimmed.slice(0, 500);
  return true;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MIN_OVERRIDE_REASON = 10;

function fieldError(field: string, message: string): HttpError {
  return new HttpError(400, "invalid", message, { [field]: message });
}

/** Validates the fields that do not depend on the file: 400 naming the field. */
function checkFields(fields: UploadFields): { laterality?: Laterality; view?: View; examId?: string } {
  if (fields.laterality !== undefined && !isLaterality(fields.laterality.toUpperCase())) {
    throw fieldError("laterality", "Latéralité invalide : R (droite) ou L (gauche).");
  }
  if (fields.view !== undefined && !isView(fields.view.toUpperCase())) {
    throw fieldError("view", "Incidence invalide : CC, MLO, ML, LM, XCCL, SPOT ou MAG.");
  }
  if (fields.examId !== undefined && !UUID.test(fields.examId)) throw fieldError("examId", "Examen inconnu.");
  return {
    laterality: fields.laterality?.toUpperCase() as Laterality | undefined,
    view: fields.view?.toUpperCase() as View | undefined,
    examId: fields.examId?.toLowerCase(),
  };
}

// ---- admission --------------------------------------------------------------------------------------------------

/** The record's identity, as the identity check compares it. */
export async function identityRecord(patientId: string): Promise<IdentityRecord | null> {
  const [row] = await identityById.execute({ patientId });
  return row ?? null;
}
/** Read on every arrival: prepared once (planned once per connection). */
const identityById = db
  .select({ displayName: patients.displayName, ipp: patients.ipp, ins: patients.ins, birthDate: patients.birthDate, sex: patients.sex })
  .from(patients)
  .where(eq(patients.id, sql.placeholder("patientId")))
  .prepare("nexus_identity_by_patient");

/** 409 `identity_mismatch`, naming the fields; audited as a denial (nothing is stored). */
export function identityMismatch(fields: readonly IdentityField[]): HttpError {
  const message = `Identité discordante : l'en-tête DICOM ne correspond pas au dossier de la patiente (${describeFields(fields)}). Rien n'a été enregistré.`;
  return new HttpError(409, "identity_mismatch", message, { identity: fields.join(",") }, undefined, true);
}

/** A StudyInstanceUID for an exam started by a JPEG/PNG upload: `2.25.` + a random UUID as an integer (PS3.5 B.2). */
export function generatedStudyUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, "")}`).toString()}`;
}

const today = () => new Date().toISOString().slice(0, 10);

export interface AdmissionOptions {
  patientId: string;
  actor: Actor;
  fields: UploadFields;
  /** Whether this channel offers the doctor's override (the browser form); the API never does. */
  allowOverride: boolean;
  /** Called for each file filed through an override, with its fields and the typed reason (for the audit event). */
  onOverride?: (fields: IdentityField[], reason: string) => void;
  /** The record as this request already read it (DICOMweb and DIMSE find the patient first); read here otherwise. */
  record?: IdentityRecord;
}

/** The vault admission of an upload: identity check, then exam/laterality/view placement (see module comment). */
export function examAdmission(options: AdmissionOptions): Admission {
  // The record is read while the body's first bytes arrive (the request is authorised by now), not after them: one
  // round trip less on the path of every upload. Later files of the same request read it again.
  let prefetched: Promise<IdentityRecord | null> | undefined = options.record ? undefined : identityRecord(options.patientId);
  prefetched?.catch(() => {}); // awaited by the first file; a request that ends before it must not leave a rejection unhandled
  return async (kind, head) => {
    const fields = checkFields(options.fields);
    const record = options.record ?? (await (prefetched ?? identityRecord(options.patientId)));
    prefetched = undefined;
    if (!record) throw new HttpError(404, "not_found", "Patient introuvable.");
    let headers: DicomHeaders = { identity: {}, exam: {} };
    let identityNotice: string | null = null;
    if (kind.contentType === "application/dicom") {
      headers = readDicomHeaders(head);
      const check = checkIdentity(headers.identity, record);
      if (check.result === "mismatch") {
        const reason = options.allowOverride ? (options.fields.identityOverride ?? "") : "";
        if (reason.length < MIN_OVERRIDE_REASON) {
          if (options.allowOverride && reason.length > 0) {
            throw fieldError("identityOverride", `Motif trop court : au moins ${MIN_OVERRIDE_REASON} caractères.`);
          }
          throw identityMismatch(check.fields);
        }
        options.onOverride?.(check.fields, reason);
        identityNotice = `override:${check.fields.join(",")}`;
      } else if (check.result === "missing") identityNotice = `missing:${check.fields.join(",")}`;
    }
    const exam = headers.exam;
    const laterality = exam.laterality ?? fields.laterality;
    const view = exam.view ?? fields.view;
    // A JPEG/PNG without laterality or view (older API clients, several files at once) is still filed in the exam,
    // unplaced: the exam page lists it apart and the exam AI skips it with the reason ("no_view").
    // A chosen exam must be this patient's: checked before any byte is stored.
    if (fields.examId && !exam.studyInstanceUid) {
      const [found] = await db
        .select({ id: exams.id })
        .from(exams)
        .where(and(eq(exams.id, fields.examId), eq(exams.patientId, options.patientId)));
      if (!found) throw new HttpError(404, "exam_not_found", "Cet examen n'existe pas dans le dossier de cette patiente.", { examId: "Examen inconnu." });
    }
    const placement: Placement = {
      laterality: laterality ?? null,
      view: view ?? null,
      studyInstanceUid: exam.studyInstanceUid ?? null,
      seriesInstanceUid: exam.seriesInstanceUid ?? null,
      sopInstanceUid: exam.sopInstanceUid ?? null,
      sopClassUid: exam.sopClassUid ?? null,
      modality: exam.modality ?? null,
      presentationIntent: exam.presentationIntent ?? null,
      identityNotice,
    };
    if (exam.studyInstanceUid) {
      return { placement, exam: examOfStudy(options, exam.studyInstanceUid, normaliseDate(exam.studyDate) ?? today(), exam.accessionNumber) };
    }
    if (fields.examId) return { placement: { ...placement, examId: fields.examId } };
    return async (tx) => ({ ...placement, examId: await todaysExam(tx, options) });
  };
}

/** Placeholders of the image row's columns in {@link insertImageInStudy} (every column the vault sets). */
const IMAGE_ROW_COLUMNS = [
  "id", "patientId", "uploadedBy", "contentType", "size", "sha256", "width", "height", "bitDepth", "dicom", "storageKey",
  "ciphertextSize", "formatVersion", "keyId", "wrappedKey", "encryptedName", "laterality", "view", "studyInstanceUid",
  "seriesInstanceUid", "sopInstanceUid", "sopClassUid", "modality", "presentationIntent", "identityNotice",
] as const satisfies readonly Exclude<keyof NewImageRow, "examId">[];

/**
 * The image row, inserted in the patient's exam of its StudyInstanceUID — created on first arrival — as one
 * statement: the exam is a CTE of the row's insert. An arrival that finds the exam there updates the key to itself,
 * so that the row is returned even when a concurrent arrival created it after this statement's snapshot (`do
 * nothing` would return no row then). A named prepared statement: drizzle builds its SQL once per process and
 * PostgreSQL plans it once per connection — building and parsing a 26-column insert with its CTE on every DICOM
 * arrival cost ≈ 0.5 ms of CPU between them.
 */
const examOfStudyCte = db.$with("exam_of_study").as(
  db
    .insert(exams)
    .values({
      patientId: sql.placeholder("patientId"),
      studyInstanceUid: sql.placeholder("studyUid"),
      date: sql.placeholder("studyDate"),
      accessionNumber: sql.placeholder("accessionNumber"),
      createdBy: sql.placeholder("createdBy"),
    })
    .onConflictDoUpdate({ target: [exams.patientId, exams.studyInstanceUid], set: { studyInstanceUid: sql`excluded.study_instance_uid` } })
    .returning({ id: exams.id }),
);
const insertImageInStudy = db
  .with(examOfStudyCte)
  .insert(images)
  .values({
    ...(Object.fromEntries(IMAGE_ROW_COLUMNS.map((c) => [c, sql.placeholder(c)])) as Record<(typeof IMAGE_ROW_COLUMNS)[number], Placeholder>),
    examId: sql`(select ${examOfStudyCte.id} from ${examOfStudyCte})`,
  })
  .returning({ examId: images.examId })
  .prepare("nexus_image_in_study");

const IMAGE_ROW_COLUMN_SET: ReadonlySet<string> = new Set(IMAGE_ROW_COLUMNS);

function examOfStudy(o: AdmissionOptions, studyUid: string, date: string, accession?: string): ExamFiling {
  return {
    async insert(row) {
      // A column the vault sets but the statement lacks would be dropped without a word: refused instead.
      for (const [column, value] of Object.entries(row)) {
        if (value !== undefined && !IMAGE_ROW_COLUMN_SET.has(column)) throw new Error(`nexus_image_in_study has no placeholder for ${column}`);
      }
      const values: Record<string, unknown> = { studyUid, studyDate: date, accessionNumber: accession ?? null, createdBy: o.actor.id };
      for (const c of IMAGE_ROW_COLUMNS) values[c] = row[c] ?? null;
      const [inserted] = await insertImageInStudy.execute(values);
      return inserted!.examId!;
    },
  };
}

/** Today's exam of the patient (the latest dated today), or a new one with a generated StudyInstanceUID. */
async function todaysExam(tx: Tx, o: AdmissionOptions): Promise<string> {
  // One at a time per patient, so that two simultaneous uploads start one exam, not two.
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`exam-of-day:${o.patientId}`}))`);
  const [existing] = await tx
    .select({ id: exams.id })
    .from(exams)
    .where(and(eq(exams.patientId, o.patientId), eq(exams.date, today())))
    .orderBy(desc(exams.createdAt))
    .limit(1);
  if (existing) return existing.id;
  const [created] = await tx
    .insert(exams)
    .values({ patientId: o.patientId, studyInstanceUid: generatedStudyUid(), date: today(), createdBy: o.actor.id })
    .returning({ id: exams.id });
  return created!.id;
}

// ---- reading exams ---------------------------------------------------------------------------------------------

export interface ExamImage {
  imageId: string;
  laterality: Laterality | null;
  view: View | null;
  contentType: string;
  presentationIntent: string | null;
  identityNotice: string | null;
  createdAt: string;
  /** Another image of the exam already has this laterality and view. */
  duplicate: boolean;
}

export interface ExamDetail {
  id: string;
  patientId: string;
  date: string;
  accessionNumber: string | null;
  studyInstanceUid: string;
  status: ExamStatus;
  statusSince: string;
  createdAt: string;
  /** The four standard views (R-CC, L-CC, R-MLO, L-MLO) are all present. */
  complete: boolean;
  missing: { laterality: Laterality; view: View }[];
  images: ExamImage[];
}

/** The patient an exam belongs to (for the policy), or undefined when there is no such exam. */
export async function examPatientId(examId: string): Promise<string | undefined> {
  if (!UUID.test(examId)) return undefined;
  const [row] = await db.select({ patientId: exams.patientId }).from(exams).where(eq(exams.id, examId));
  return row?.patientId;
}

function imagesOf(rows: (typeof images.$inferSelect)[]): ExamImage[] {
  const seen = new Set<string>();
  return rows.map((r) => {
    const key = r.laterality && r.view ? `${r.laterality}-${r.view}` : null;
    const duplicate = key !== null && seen.has(key);
    if (key) seen.add(key);
    return {
      imageId: r.id,
      laterality: (r.laterality as Laterality | null) ?? null,
      view: (r.view as View | null) ?? null,
      contentType: r.contentType,
      presentationIntent: r.presentationIntent,
      identityNotice: r.identityNotice,
      createdAt: r.createdAt.toISOString(),
      duplicate,
    };
  });
}

function detail(exam: ExamRow, rows: (typeof images.$inferSelect)[]): ExamDetail {
  const list = imagesOf(rows);
  const missing = STANDARD_VIEWS.filter((s) => !list.some((i) => i.laterality === s.laterality && i.view === s.view));
  return {
    id: exam.id,
    patientId: exam.patientId,
    date: exam.date,
    accessionNumber: exam.accessionNumber,
    studyInstanceUid: exam.studyInstanceUid,
    status: exam.status,
    statusSince: exam.statusSince.toISOString(),
    createdAt: exam.createdAt.toISOString(),
    complete: missing.length === 0,
    missing: [...missing],
    images: list,
  };
}

/** An exam with its live (unerased) images, oldest first; null when there is no such exam. */
export async function getExam(examId: string): Promise<ExamDetail | null> {
  if (!UUID.test(examId)) return null;
  const [exam] = await db.select().from(exams).where(eq(exams.id, examId));
  if (!exam) return null;
  const rows = await db
    .select()
    .from(images)
    .where(and(eq(images.examId, examId), isNull(images.erasedAt)))
    .orderBy(asc(images.createdAt), asc(images.id));
  return detail(exam, rows);
}

/** A patient's exams, newest first, each with its images. */
export async function listExams(patientId: string): Promise<ExamDetail[]> {
  const list = await db.select().from(exams).where(eq(exams.patientId, patientId)).orderBy(desc(exams.date), desc(exams.createdAt));
  if (list.length === 0) return [];
  const rows = await db
    .select()
    .from(images)
    .where(and(inArray(images.examId, list.map((e) => e.id)), isNull(images.erasedAt)))
    .orderBy(asc(images.createdAt), asc(images.id));
  return list.map((e) => detail(e, rows.filter((r) => r.examId === e.id)));
}

/** Final statuses: the result the patient may know (and her letter, branch `reading`). */
export const FINAL_STATUSES: readonly ExamStatus[] = ["final_normal", "recall", "technical_recall"];

/** An exam as the patient sees it: date, status, her views — never any model output. */
export function forPatient(e: ExamDetail) {
  return {
    id: e.id,
    date: e.date,
    status: e.status,
    views: e.images.filter((i) => i.laterality && i.view).map((i) => `${i.laterality}-${i.view}`),
    // Once final, her result letter (branch `reading`: rendered on request, in French).
    ...(FINAL_STATUSES.includes(e.status) ? { result: e.status, letterUrl: `/api/v1/exams/${e.id}/letter` } : {}),
  };
}

/** An exam as the care team sees it in a list (the API's `GET /patients/:id/exams`). */
export function forCareTeam(e: ExamDetail) {
  return {
    id: e.id,
    date: e.date,
    accessionNumber: e.accessionNumber ?? undefined,
    status: e.status,
    complete: e.complete,
    views: e.images.map((i) => ({ imageId: i.imageId, laterality: i.laterality, view: i.view })),
    ...(FINAL_STATUSES.includes(e.status) ? { result: e.status } : {}),
  };
}
