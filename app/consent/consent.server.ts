/** Consent per purpose: the current state and its append-only history. */
import { and, asc, eq, sql } from "drizzle-orm";
import type { Actor } from "../accounts/actor";
import { db } from "../db/db.server";
import { consentHistory, consents, PURPOSES, type Purpose } from "../db/schema";

type Tx = Parameters<Parameters<typeof db.transaction>[0]>[0];

export interface ConsentState {
  granted: boolean;
  /** null: never recorded. */
  updatedAt: Date | null;
}

/** Sets one purpose's state and appends the change to the history, in the caller's transaction. */
export async function recordConsentChange(
  tx: Tx,
  change: { patientId: string; purpose: Purpose; granted: boolean; by: Actor; source: "patient" | "intake" },
): Promise<void> {
  const [before] = await tx
    .select({ granted: consents.granted })
    .from(consents)
    .where(sql`${consents.patientId} = ${change.patientId} and ${consents.purpose} = ${change.purpose}`)
    .for("update");
  await tx
    .insert(consents)
    .values({ patientId: change.patientId, purpose: change.purpose, granted: change.granted, updatedBy: change.by.id })
    .onConflictDoUpdate({
      target: [consents.patientId, consents.purpose],
      set: { granted: change.granted, updatedAt: new Date(), updatedBy: change.by.id },
    });
  await tx.insert(consentHistory).values({
    patientId: change.patientId,
    purpose: change.purpose,
    fromGranted: before?.granted ?? null,
    toGranted: change.granted,
    changedBy: change.by.id,
    changedByRole: change.by.role,
    source: change.source,
  });
}

/**
 * A patient (or, for paper consent, a doctor) sets one purpose. Committed before this resolves: every request that
 * starts afterwards sees the new state, since the policy reads consent live (no cache).
 */
export async function setConsent(
  patientId: string,
  purpose: Purpose,
  granted: boolean,
  by: Actor,
): Promise<ConsentState> {
  await db.transaction((tx) =>
    recordConsentChange(tx, { patientId, purpose, granted, by, source: by.role === "patient" ? "patient" : "intake" }),
  );
  return consentOf(patientId, purpose);
}

function emptyState(): Record<Purpose, ConsentState> {
  return Object.fromEntries(PURPOSES.map((p) => [p, { granted: false, updatedAt: null }])) as Record<Purpose, ConsentState>;
}

/** The live state of every purpose for one patient (never-given purposes are not granted). */
export async function consentState(patientId: string): Promise<Record<Purpose, ConsentState>> {
  return (await consentStates([patientId])).get(patientId)!;
}

/** Asked by the policy on most requests: built and planned once (a prepared statement). */
const consentRow = db
  .select({ granted: consents.granted, updatedAt: consents.updatedAt })
  .from(consents)
  .where(and(eq(consents.patientId, sql.placeholder("patientId")), eq(consents.purpose, sql.placeholder("purpose"))))
  .prepare("nexus_consent_row");

/** One purpose's live state, read in the caller's request: no cache can outlive a revocation. */
export async function consentOf(patientId: string, purpose: Purpose): Promise<ConsentState> {
  const [row] = await consentRow.execute({ patientId, purpose });
  return row ?? { granted: false, updatedAt: null };
}

/**
 * Read on every page of a doctor's patient list: one prepared statement whatever the number of patients (the ids go
 * as one array parameter, where an IN list made a new statement to parse and plan for every page).
 */
const consentRowsOf = db
  .select({ patientId: consents.patientId, purpose: consents.purpose, granted: consents.granted, updatedAt: consents.updatedAt })
  .from(consents)
  .where(sql`${consents.patientId} = any(${sql.placeholder("patientIds")}::uuid[])`)
  .prepare("nexus_consent_rows_of");

/** Live states for several patients at once (the doctor's patient list). */
export async function consentStates(patientIds: string[]): Promise<Map<string, Record<Purpose, ConsentState>>> {
  const result = new Map(patientIds.map((id) => [id, emptyState()]));
  if (patientIds.length === 0) return result;
  const rows = await consentRowsOf.execute({ patientIds });
  for (const row of rows) result.get(row.patientId)![row.purpose] = { granted: row.granted, updatedAt: row.updatedAt };
  return result;
}

export function consentHistoryOf(patientId: string) {
  return db
    .select()
    .from(consentHistory)
    .where(eq(consentHistory.patientId, patientId))
    .orderBy(asc(consentHistory.id));
}
