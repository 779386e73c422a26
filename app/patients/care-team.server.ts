/** Facts the policy needs about patients: who treats them, which account is theirs. */
import { and, eq, sql } from "drizzle-orm";
import { db } from "../db/db.server";
import { careTeam } from "../db/schema";

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
