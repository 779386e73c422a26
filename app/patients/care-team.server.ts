/** Facts the policy needs about patients: who treats them, which account is theirs. */
import { and, eq } from "drizzle-orm";
import { db } from "../db/db.server";
import { careTeam } from "../db/schema";

export async function isInCareTeam(doctorId: string, patientId: string): Promise<boolean> {
  const [row] = await db
    .select({ doctorId: careTeam.doctorId })
    .from(careTeam)
    .where(and(eq(careTeam.doctorId, doctorId), eq(careTeam.patientId, patientId)));
  return Boolean(row);
}
