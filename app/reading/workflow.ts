/**
 * The double-reading state machine of the French screening programme (shared/SCREENING.md), as pure code: given an
 * exam's status, who already read it and a new reading, it says which kind of reading this is and where the exam
 * goes next — or why the reading is refused. No database, no clock: app/reading/readings.server.ts applies it.
 *
 *   awaiting_first_reading ─L1 normal/benign─────────────────────────────▶ awaiting_second_reading
 *        │  └─L1 any ACR 0/3/4/5─▶ immediate_workup ─same reader, normal─▶ awaiting_second_reading
 *        │                               └─same reader, abnormal─▶ recall
 *   awaiting_second_reading ─L2 (another reader) normal─▶ final_normal
 *        └─L2 abnormal─▶ recall   (READING_DISAGREEMENT=arbitration: ─▶ awaiting_arbitration ─third reader─▶ final)
 *   any reading that declares the images technically inadequate ─▶ technical_recall
 */

import { EXAM_STATUSES, type ExamStatus } from "../vocabulary";

export { EXAM_STATUSES, type ExamStatus };

/** The results a woman and her doctor receive a letter for. */
export const FINAL_STATUSES = ["final_normal", "recall", "technical_recall"] as const satisfies readonly ExamStatus[];
export type FinalStatus = (typeof FINAL_STATUSES)[number];

export function isFinal(status: string): status is FinalStatus {
  return (FINAL_STATUSES as readonly string[]).includes(status);
}

export const READING_KINDS = ["first", "workup", "second", "arbitration"] as const;
export type ReadingKind = (typeof READING_KINDS)[number];

export const DISAGREEMENT_POLICIES = ["recall", "arbitration"] as const;
export type DisagreementPolicy = (typeof DISAGREEMENT_POLICIES)[number];

export const ACR_CATEGORIES = [0, 1, 2, 3, 4, 5] as const;
export type Acr = (typeof ACR_CATEGORIES)[number];

/** ACR 1 (normal) and 2 (benign) close a breast; 0 (incomplete), 3, 4 and 5 call for a work-up. */
export function isAbnormalAcr(acr: number): boolean {
  return acr !== 1 && acr !== 2;
}

/** What the state machine needs to know about a reading: per-breast ACR and the inadequacy flag. */
export interface ReadingOutcome {
  technicallyInadequate: boolean;
  /** Absent only when the images were declared inadequate. */
  breasts?: { R: { acr: number }; L: { acr: number } };
}

/** Normal or benign on both breasts (and the images readable). */
export function isNormal(reading: ReadingOutcome): boolean {
  if (reading.technicallyInadequate || !reading.breasts) return false;
  return !isAbnormalAcr(reading.breasts.R.acr) && !isAbnormalAcr(reading.breasts.L.acr);
}

export interface ExamState {
  status: ExamStatus;
  /** Who recorded the first reading (and so must record the work-up conclusion). */
  firstReaderId?: string | null;
  secondReaderId?: string | null;
}

export type Transition =
  | { ok: true; kind: ReadingKind; next: ExamStatus }
  | { ok: false; status: 409; code: "wrong_state" | "same_reader" | "not_first_reader"; message: string };

const refuse = (code: "wrong_state" | "same_reader" | "not_first_reader", message: string): Transition => ({
  ok: false,
  status: 409,
  code,
  message,
});

export const WORKFLOW_MESSAGES = {
  final: "Le résultat de cet examen est déjà définitif : aucune lecture ne peut plus être enregistrée.",
  sameReader: "Vous avez déjà lu cet examen : la seconde lecture doit être faite par un autre radiologue.",
  sameReaderArbitration: "L'arbitrage doit être fait par un radiologue qui n'a pas encore lu cet examen.",
  notFirstReader: "Seul le premier lecteur enregistre la conclusion du bilan de diagnostic immédiat.",
} as const;

/**
 * The transition a reading by `readerId` causes on an exam in `state`, under the programme's disagreement policy.
 * Pure: the caller stores the reading and the new status in one transaction, guarded on the status it read.
 */
export function transition(
  state: ExamState,
  readerId: string,
  reading: ReadingOutcome,
  policy: DisagreementPolicy = "recall",
): Transition {
  const normal = isNormal(reading);
  const inadequate = reading.technicallyInadequate;
  switch (state.status) {
    case "awaiting_first_reading":
      return {
        ok: true,
        kind: "first",
        next: inadequate ? "technical_recall" : normal ? "awaiting_second_reading" : "immediate_workup",
      };
    case "immediate_workup":
      if (state.firstReaderId && state.firstReaderId !== readerId) return refuse("not_first_reader", WORKFLOW_MESSAGES.notFirstReader);
      return { ok: true, kind: "workup", next: inadequate ? "technical_recall" : normal ? "awaiting_second_reading" : "recall" };
    case "awaiting_second_reading":
      if (state.firstReaderId === readerId) return refuse("same_reader", WORKFLOW_MESSAGES.sameReader);
      if (inadequate) return { ok: true, kind: "second", next: "technical_recall" };
      if (normal) return { ok: true, kind: "second", next: "final_normal" };
      // L1 concluded normal/benign (that is how the exam got here): an abnormal L2 is a disagreement.
      return { ok: true, kind: "second", next: policy === "arbitration" ? "awaiting_arbitration" : "recall" };
    case "awaiting_arbitration":
      if (state.firstReaderId === readerId || state.secondReaderId === readerId) {
        return refuse("same_reader", WORKFLOW_MESSAGES.sameReaderArbitration);
      }
      return { ok: true, kind: "arbitration", next: inadequate ? "technical_recall" : normal ? "final_normal" : "recall" };
    default:
      return refuse("wrong_state", WORKFLOW_MESSAGES.final);
  }
}

/** The statuses whose exams wait in the first-reading worklist (the L1 reader also finds her work-ups there). */
export const FIRST_READING_STATUSES = ["awaiting_first_reading", "immediate_workup"] as const satisfies readonly ExamStatus[];
/** The statuses whose exams wait in the second-reading worklist (arbitration is a second look by a third reader). */
export const SECOND_READING_STATUSES = ["awaiting_second_reading", "awaiting_arbitration"] as const satisfies readonly ExamStatus[];

/** Whether the L1 and L2 conclusions disagree (one normal/benign, the other abnormal or inadequate). */
export function discordant(first: ReadingOutcome, second: ReadingOutcome): boolean {
  return isNormal(first) !== isNormal(second);
}

/** The French programme's target: a second reading within about 15 days (SCREENING.md). */
export const L2_TARGET_DAYS = 15;
