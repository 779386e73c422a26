/**
 * Readings of screening exams: recording one (the state machine of ./workflow.ts applied in one transaction), what a
 * viewer may see of them, and the first- and second-reading worklists. Routes reach this only through perform().
 */
import { and, asc, eq, inArray, isNull, ne, or, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import type { Actor } from "../accounts/actor";
import { db } from "../db/db.server";
import { careTeam, consents, exams, images, patients, readings, users, type ExamStatus as DbExamStatus } from "../db/schema";
import { HttpError } from "../http/errors.server";
import { queueResults } from "../results/queue.server";
import type { Finding, ReadingInput } from "./reading-schema";
import type { WorklistName } from "./worklist-nav";
import {
  FIRST_READING_STATUSES,
  isFinal,
  SECOND_READING_STATUSES,
  transition,
  type DisagreementPolicy,
  type ExamStatus,
  type ReadingKind,
} from "./workflow";

// The database enum and the state machine must name the same statuses (a compile-time check, both ways).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const statusesMatch: Same<ExamStatus, DbExamStatus> = true;
void statusesMatch;

/** The facts about an exam that the policy and the workflow need, or null when there is no such exam. */
export interface ExamRef {
  id: string;
  patientId: string;
  status: ExamStatus;
  date: string;
  accessionNumber: string | null;
}

export async function examRef(examId: string): Promise<ExamRef | null> {
  const [row] = await db
    .select({ id: exams.id, patientId: exams.patientId, status: exams.status, date: exams.date, accessionNumber: exams.accessionNumber })
    .from(exams)
    .where(eq(exams.id, examId));
  return row ?? null;
}

export interface RecordedReading {
  id: string;
  kind: ReadingKind;
  examStatus: ExamStatus;
}

/**
 * Records `input` as `reader`'s reading of `examId`: locks the exam row, applies the state machine to its status and
 * earlier readings, stores the reading and the new status together. Refusals are HttpErrors (409 wrong_state,
 * same_reader, not_first_reader) and leave nothing written.
 */
export async function recordReading(
  examId: string,
  reader: Actor,
  input: ReadingInput,
  policy: DisagreementPolicy,
): Promise<RecordedReading> {
  return db.transaction(async (tx) => {
    const [exam] = await tx
      .select({ id: exams.id, patientId: exams.patientId, status: exams.status })
      .from(exams)
      .where(eq(exams.id, examId))
      .for("update");
    if (!exam) throw new HttpError(404, "not_found", "Examen introuvable.");
    const earlier = await tx.select({ kind: readings.kind, readerId: readings.readerId }).from(readings).where(eq(readings.examId, examId));
    const firstReaderId = earlier.find((r) => r.kind === "first")?.readerId ?? null;
    const secondReaderId = earlier.find((r) => r.kind === "second")?.readerId ?? null;
    const outcome = {
      technicallyInadequate: input.technicallyInadequate,
      ...(input.breasts ? { breasts: input.breasts } : {}),
    };
    const step = transition({ status: exam.status, firstReaderId, secondReaderId }, reader.id, outcome, policy);
    if (!step.ok) throw new HttpError(step.status, step.code, step.message);
    const [row] = await tx
      .insert(readings)
      .values({
        examId,
        patientId: exam.patientId,
        kind: step.kind,
        readerId: reader.id,
        acrRight: input.breasts?.R.acr ?? null,
        acrLeft: input.breasts?.L.acr ?? null,
        densityRight: input.breasts?.R.density ?? null,
        densityLeft: input.breasts?.L.density ?? null,
        technicallyInadequate: input.technicallyInadequate,
        findings: input.findings,
        conclusion: input.conclusion || null,
        examStatus: step.next,
      })
      .returning({ id: readings.id });
    await tx.update(exams).set({ status: step.next, statusSince: new Date() }).where(eq(exams.id, examId));
    // A final result goes to the PACS (PACS_PUSH): queued with it, in this transaction, or not at all.
    if (isFinal(step.next)) await queueResults(tx, examId, exam.patientId);
    return { id: row!.id, kind: step.kind, examStatus: step.next };
  });
}

export interface ReadingView {
  id: string;
  kind: ReadingKind;
  reader: { id: string; name: string };
  createdAt: string;
  technicallyInadequate: boolean;
  breasts: { R: { acr: number; density: string }; L: { acr: number; density: string } } | null;
  findings: Finding[];
  conclusion: string | null;
  examStatus: ExamStatus;
}

type ReadingRow = typeof readings.$inferSelect & { readerName: string };

function view(r: ReadingRow): ReadingView {
  const breasts =
    r.acrRight !== null && r.acrLeft !== null && r.densityRight && r.densityLeft
      ? { R: { acr: r.acrRight, density: r.densityRight }, L: { acr: r.acrLeft, density: r.densityLeft } }
      : null;
  return {
    id: r.id,
    kind: r.kind,
    reader: { id: r.readerId, name: r.readerName },
    createdAt: r.createdAt.toISOString(),
    technicallyInadequate: r.technicallyInadequate,
    breasts,
    findings: r.findings,
    conclusion: r.conclusion,
    examStatus: r.examStatus,
  };
}

/** Every reading of an exam, in order (for letters, statistics and the final view). */
export async function allReadings(examId: string): Promise<ReadingView[]> {
  const rows = await db
    .select({ reading: readings, readerName: users.name })
    .from(readings)
    .innerJoin(users, eq(users.id, readings.readerId))
    .where(eq(readings.examId, examId))
    .orderBy(asc(readings.createdAt));
  return rows.map((r) => view({ ...r.reading, readerName: r.readerName }));
}

/**
 * What `viewer` may see of an exam's readings (API.md): all of them once the result is final; before that, only the
 * viewer's own — so the second reader reads blind to the first.
 */
export async function visibleReadings(examId: string, status: string, viewerId: string): Promise<ReadingView[]> {
  const list = await allReadings(examId);
  return isFinal(status) ? list : list.filter((r) => r.reader.id === viewerId);
}

/** Whether `userId` has recorded a reading of the exam (AI_DISPLAY=after_reading shows her the AI only then). */
export async function hasRead(examId: string, userId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: readings.id })
    .from(readings)
    .where(and(eq(readings.examId, examId), eq(readings.readerId, userId)))
    .limit(1);
  return Boolean(row);
}

/** Under AI_DISPLAY=after_reading a reader sees the AI once she has read the exam or once the result is final. */
export async function aiVisibleTo(exam: { id: string; status: string }, userId: string, display: "after_reading" | "concurrent"): Promise<boolean> {
  if (display === "concurrent" || isFinal(exam.status)) return true;
  return hasRead(exam.id, userId);
}

// ---- worklists -------------------------------------------------------------------------------------------------

export const WORKLIST_LIMIT = 100;

export interface WorklistEntry {
  id: string;
  patientId: string;
  patientName: string;
  birthDate: string | null;
  ipp: string | null;
  date: string;
  accessionNumber: string | null;
  status: ExamStatus;
  waitingSince: string;
  /** The standard views present, as `R-CC`, `L-MLO`…; `complete` when all four are. */
  views: string[];
  complete: boolean;
}

const STANDARD = ["R-CC", "L-CC", "R-MLO", "L-MLO"];

const firstReading = alias(readings, "first_reading");

/**
 * Exams of the doctor's care teams (care consent live, record not erased) in the given statuses, oldest first.
 * Plans (npm run bench:worklists): an ordered scan of the partial index of the list's statuses
 * (drizzle/0010_worklist_indexes.sql), then one index lookup per row for the care team, consent, patient, the first
 * reading and the views, stopping at the limit.
 */
/** Extra conditions of a worklist query: one exam only, the exams after one (in the list's order), all but one. */
interface WorklistScope {
  only?: string;
  after?: string;
  except?: string;
  limit?: number;
}

async function worklist(doctorId: string, list: WorklistName, scope: WorklistScope = {}) {
  const columns = {
    id: exams.id,
    patientId: exams.patientId,
    patientName: patients.displayName,
    birthDate: patients.birthDate,
    ipp: patients.ipp,
    date: exams.date,
    accessionNumber: exams.accessionNumber,
    status: exams.status,
    waitingSince: exams.statusSince,
    views: sql<string | null>`(select string_agg(distinct i.laterality || '-' || i.view, ',') from images i
      where i.exam_id = ${exams.id} and i.erased_at is null and i.laterality is not null and i.view is not null)`,
  };
  const base = db
    .select(columns)
    .from(exams)
    .innerJoin(careTeam, and(eq(careTeam.patientId, exams.patientId), eq(careTeam.doctorId, doctorId)))
    .innerJoin(patients, and(eq(patients.id, exams.patientId), isNull(patients.erasedAt)))
    .innerJoin(consents, and(eq(consents.patientId, exams.patientId), eq(consents.purpose, "care"), eq(consents.granted, true)));
  const scoped = [
    scope.only ? eq(exams.id, scope.only) : undefined,
    scope.except ? ne(exams.id, scope.except) : undefined,
    // The list's order is (status_since, id): "after" compares in SQL, at the database's own timestamp precision.
    scope.after
      ? sql`(${exams.statusSince}, ${exams.id}) > (select e.status_since, e.id from exams e where e.id = ${scope.after})`
      : undefined,
  ];
  const limit = scope.limit ?? WORKLIST_LIMIT;
  const query =
    list === "first"
      ? // Awaiting L1, or a work-up this doctor opened as first reader (she records its conclusion).
        base
          .leftJoin(firstReading, and(eq(firstReading.examId, exams.id), eq(firstReading.kind, "first")))
          .where(
            and(
              inArray(exams.status, [...FIRST_READING_STATUSES]),
              or(eq(exams.status, "awaiting_first_reading"), eq(firstReading.readerId, doctorId)),
              ...scoped,
            ),
          )
      : // Awaiting L2 or arbitration, and not read by this doctor.
        base.where(
          and(
            inArray(exams.status, [...SECOND_READING_STATUSES]),
            sql`not exists (select 1 from readings r where r.exam_id = ${exams.id} and r.reader_id = ${doctorId})`,
            ...scoped,
          ),
        );
  const rows = await query.orderBy(asc(exams.statusSince), asc(exams.id)).limit(limit + 1);
  const more = rows.length > limit;
  const entries: WorklistEntry[] = rows.slice(0, limit).map((r) => {
    const views = (r.views ?? "").split(",").filter(Boolean);
    return { ...r, waitingSince: r.waitingSince.toISOString(), views, complete: STANDARD.every((v) => views.includes(v)) };
  });
  return { exams: entries, more };
}

/**
 * First reading: exams awaiting L1, and the work-ups this doctor opened as first reader (she records their
 * conclusion). Oldest first.
 */
export function firstReadingWorklist(doctorId: string) {
  return worklist(doctorId, "first");
}

/** Second reading (and arbitration): only exams this doctor has not read. Shows no reading and no AI. */
export function secondReadingWorklist(doctorId: string) {
  return worklist(doctorId, "second");
}

/** The worklist an exam in `status` waits in, if any (the exam page's default when no list is named). */
export function worklistOfStatus(status: string): WorklistName | null {
  if ((FIRST_READING_STATUSES as readonly string[]).includes(status)) return "first";
  if ((SECOND_READING_STATUSES as readonly string[]).includes(status)) return "second";
  return null;
}

/** The worklist a reading of `kind` was taken from. */
export function worklistOfKind(kind: ReadingKind): WorklistName {
  return kind === "first" || kind === "workup" ? "first" : "second";
}

/**
 * The exam to read after `examId` in `doctorId`'s worklist: the next one in the list's order (oldest first) while
 * `examId` is in it; the list's first other exam once it has left it (just read) or when it was the last (the list
 * wraps round, so exams skipped earlier come back). Null when no other exam waits.
 */
export async function nextInWorklist(doctorId: string, list: WorklistName, examId: string): Promise<string | null> {
  const inList = (await worklist(doctorId, list, { only: examId, limit: 1 })).exams.length > 0;
  if (inList) {
    const [after] = (await worklist(doctorId, list, { after: examId, limit: 1 })).exams;
    if (after) return after.id;
  }
  const [first] = (await worklist(doctorId, list, { except: examId, limit: 1 })).exams;
  return first?.id ?? null;
}

// ---- the reading page ----------------------------------------------------------------------------------------

export interface ReadingPage {
  exam: ExamRef & { patient: { displayName: string; birthDate: string | null; ipp: string | null } };
  views: string[];
  missingViews: string[];
  /** What the viewer's reading would be now, or why she cannot read (the same rule as the action). */
  next: { ok: true; kind: ReadingKind } | { ok: false; code: string; message: string };
  readings: ReadingView[];
}

/** Everything the reading page shows: whose exam, which views are missing, which reading is due, visible readings. */
export async function readingPage(exam: ExamRef, viewer: Actor): Promise<ReadingPage> {
  const [patient] = await db
    .select({ displayName: patients.displayName, birthDate: patients.birthDate, ipp: patients.ipp })
    .from(patients)
    .where(eq(patients.id, exam.patientId));
  const viewRows = await db
    .select({ laterality: images.laterality, view: images.view })
    .from(images)
    .where(and(eq(images.examId, exam.id), isNull(images.erasedAt)));
  const views = [...new Set(viewRows.filter((v) => v.laterality && v.view).map((v) => `${v.laterality}-${v.view}`))].sort();
  const earlier = await db.select({ kind: readings.kind, readerId: readings.readerId }).from(readings).where(eq(readings.examId, exam.id));
  const state = {
    status: exam.status,
    firstReaderId: earlier.find((r) => r.kind === "first")?.readerId ?? null,
    secondReaderId: earlier.find((r) => r.kind === "second")?.readerId ?? null,
  };
  const step = transition(state, viewer.id, { technicallyInadequate: false, breasts: { R: { acr: 1 }, L: { acr: 1 } } });
  return {
    exam: { ...exam, patient: patient! },
    views,
    missingViews: STANDARD.filter((v) => !views.includes(v)),
    next: step.ok ? { ok: true, kind: step.kind } : { ok: false, code: step.code, message: step.message },
    readings: await visibleReadings(exam.id, exam.status, viewer.id),
  };
}
