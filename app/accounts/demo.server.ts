/**
 * Demo accounts, seeded on the embedded default (or with NEXUS_DEMO=1): one account per role, and a demo patient
 * linked to the patient account and placed in the demo doctor's care team. Idempotent.
 */
import { eq } from "drizzle-orm";
import { db } from "../db/db.server";
import { careTeam, patients, type Role } from "../db/schema";
import { recordConsentChange } from "../consent/consent.server";
import { createUser, findUserByEmail, loadActor } from "./users.server";

export interface DemoAccount {
  email: string;
  role: Role;
  name: string;
}

export const DEMO_ACCOUNTS: DemoAccount[] = [
  { email: "admin@demo.nexus", role: "admin", name: "Alice Admin" },
  { email: "doctor@demo.nexus", role: "doctor", name: "Dr Claire Martin" },
  { email: "patient@demo.nexus", role: "patient", name: "Camille Dupont" },
  { email: "researcher@demo.nexus", role: "researcher", name: "Romain Chercheur" },
];

async function ensureUser(account: DemoAccount, password: string): Promise<string> {
  const existing = await findUserByEmail(account.email);
  if (existing) return existing.id;
  return (await createUser({ ...account, password })).id;
}

export async function seedDemo(password: string): Promise<DemoAccount[]> {
  const ids = new Map<Role, string>();
  for (const account of DEMO_ACCOUNTS) ids.set(account.role, await ensureUser(account, password));
  const doctorId = ids.get("doctor")!;
  const patientUserId = ids.get("patient")!;

  const [linked] = await db.select({ id: patients.id }).from(patients).where(eq(patients.userId, patientUserId));
  if (!linked) {
    const doctor = (await loadActor(doctorId))!;
    await db.transaction(async (tx) => {
      const [row] = await tx
        .insert(patients)
        .values({ displayName: "Camille Dupont", userId: patientUserId, createdBy: doctorId })
        .returning({ id: patients.id });
      await tx.insert(careTeam).values({ doctorId, patientId: row!.id });
      for (const purpose of ["care", "ai_analysis"] as const) {
        await recordConsentChange(tx, { patientId: row!.id, purpose, granted: true, by: doctor, source: "intake" });
      }
    });
  }
  return DEMO_ACCOUNTS;
}
