/** Facts the policy needs about patients: who treats them, which account is theirs. */
import { and, eq, sql } from "drizzle-orm";
import { db } from "../db/db.server";
import { careTeam, consents, type Purpose } from "../db/schema";
import type { ConsentState } from "../consent/consent.server";

/** Asked by the policy on most requests: built and planned once (a prepared statement). */
const careTeamMember = db
  .select({ doctorId: careTeam.doctorId })
  .from(careTeam)
  .where(and(eq(careTeam.doctorId, sql.placeholder("doctorId")), eq(careTeam.patientId, sql.placeholder("patientId"))))
  .prepare("nexus_care_team_member");

export async function isInCareTeam(doctorId: string, patientId: string): Promise<boolean> {
  const [row] = await careTeamMember.execute({ doctorId, patientId });
  return Boolean(row);
}

/**
 * Whether the doctor is in the patient's care team, and the live state of one of the patient's consents: both rules
 * of a care-team action under consent (an image viewed, an AI reading), read in one round trip, never cached.
 */
const memberAndConsent = db
  .select({ doctorId: careTeam.doctorId, granted: consents.granted, updatedAt: consents.updatedAt })
  .from(sql`(select 1) as one`)
  .leftJoin(careTeam, and(eq(careTeam.doctorId, sql.placeholder("doctorId")), eq(careTeam.patientId, sql.placeholder("patientId"))))
  .leftJoin(consents, and(eq(consents.patientId, sql.placeholder("patientId")), eq(consents.purpose, sql.placeholder("purpose"))))
  .prepare("nexus_care_team_member_consent");

export async function careTeamConsent(doctorId: string, patientId: string, purpose: Purpose): Promise<{ member: boolean; consent: ConsentState }> {
  const [row] = await memberAndConsent.execute({ doctorId, patientId, purpose });
  return { member: Boolean(row?.doctorId), consent: { granted: row?.granted ?? false, updatedAt: row?.updatedAt ?? null } };
}
