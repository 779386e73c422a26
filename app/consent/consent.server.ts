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

/** The live state of every purpose for one patient (never-given purposes are not granted). */
export async function consentState(patientId: string): Promise<Record<Purpose, ConsentState>> {
  const rows = await db.select().from(consents).where(eq(consents.patientId, patientId));
  const state = Object.fromEntries(PURPOSES.map((p) => [p, { granted: false, updatedAt: null }])) as Record<
    Purpose,
    ConsentState
  >;
  for (const row of rows) state[row.purpose] = { granted: row.granted, updatedAt: row.updatedAt };
  return state;
}

/** One purpose's live state, read in the caller's request: no cache can outlive a revocation. */
export async function consentOf(patientId: string, purpose: Purpose): Promise<ConsentState> {
  const [row] = await db
    .select({ granted: consents.granted, updatedAt: consents.updatedAt })
    .from(consents)
    .where(and(eq(consents.patientId, patientId), eq(consents.purpose, purpose)));
  return row ?? { granted: false, updatedAt: null };
}

export function consentHistoryOf(patientId: string) {
  return db
    .select()
    .from(consentHistory)
    .where(eq(consentHistory.patientId, patientId))
    .orderBy(asc(consentHistory.id));
}
