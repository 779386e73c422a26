/** The words shared by the server and the interface (no server-only imports here). */
/** People who sign in. */
export const HUMAN_ROLES = ["admin", "doctor", "patient", "researcher"] as const;
/** `system`: a machine account (a modality or a PACS) sending over DICOMweb or DIMSE with a bearer token or AE title. */
export const ROLES = [...HUMAN_ROLES, "system"] as const;
export type Role = (typeof ROLES)[number];

/** Consent purposes: care (care team views images), ai_analysis (model reads them), research (pseudonymised). */
export const PURPOSES = ["care", "ai_analysis", "research"] as const;
export type Purpose = (typeof PURPOSES)[number];

export const OUTCOMES = ["allowed", "denied", "error"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** What a machine account may do: `store` (send instances), `query` (QIDO/WADO of consenting patients' studies). */
export const MACHINE_SCOPES = ["store", "query"] as const;
export type MachineScope = (typeof MACHINE_SCOPES)[number];

/** States of a report in the PACS push outbox (app/results/outbox.server.ts). */
export const OUTBOX_STATUSES = ["pending", "sent", "failed", "cancelled"] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

/** Exam status (API.md "v1 additions", SCREENING.md; the L1/L2 workflow is app/reading/workflow.ts). */
export const EXAM_STATUSES = [
  "awaiting_first_reading",
  "immediate_workup",
  "awaiting_second_reading",
  /** READING_DISAGREEMENT=arbitration: L1 and L2 disagree, a third reader decides. */
  "awaiting_arbitration",
  "final_normal",
  "recall",
  "technical_recall",
] as const;
export type ExamStatus = (typeof EXAM_STATUSES)[number];
