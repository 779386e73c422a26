/**
 * Demo accounts, seeded on the embedded default (or with NEXUS_DEMO=1): one account per role and a second doctor
 * (a second reader for double reading), and a demo patient linked to the patient account, with an IPP, a valid INS
 * and a birth date (so that DICOM sent for her can be matched), in both doctors' care team. Idempotent.
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
  { email: "doctor2@demo.nexus", role: "doctor", name: "Dr Paul Bernard" },
];

/** The demo patient's identity, as her record and the demo's DICOM headers carry it. */
export const DEMO_PATIENT = {
  displayName: "Camille Dupont",
  ipp: "NEX-000001",
  /** 2 68 05 75 056 123, key 97 − (2680575056123 mod 97) = 95. */
  ins: "268057505612395",
  birthDate: "1968-05-14",
  sex: "F",
} as const;

async function ensureUser(account: DemoAccount, password: string): Promise<string> {
  const existing = await findUserByEmail(account.email);
  if (existing) return existing.id;
  return (await createUser({ ...account, password })).id;
}

export async function seedDemo(password: string): Promise<DemoAccount[]> {
  const ids = new Map<string, string>();
  for (const account of DEMO_ACCOUNTS) ids.set(account.email, await ensureUser(account, password));
  const doctorId = ids.get("doctor@demo.nexus")!;
  const doctor2Id = ids.get("doctor2@demo.nexus")!;
  const patientUserId = ids.get("patient@demo.nexus")!;
  const identity = { ipp: DEMO_PATIENT.ipp, ins: DEMO_PATIENT.ins, birthDate: DEMO_PATIENT.birthDate, sex: DEMO_PATIENT.sex };

  const [linked] = await db.select({ id: patients.id }).from(patients).where(eq(patients.userId, patientUserId));
  if (!linked) {
    const doctor = (await loadActor(doctorId))!;
    await db.transaction(async (tx) => {
      const [row] = await tx
        .insert(patients)
        .values({ displayName: DEMO_PATIENT.displayName, userId: patientUserId, createdBy: doctorId, ...identity })
        .returning({ id: patients.id });
      await tx.insert(careTeam).values({ doctorId, patientId: row!.id });
      for (const purpose of ["care", "ai_analysis"] as const) {
        await recordConsentChange(tx, { patientId: row!.id, purpose, granted: true, by: doctor, source: "intake" });
      }
    });
  }
  const [patient] = await db.select({ id: patients.id, ipp: patients.ipp }).from(patients).where(eq(patients.userId, patientUserId));
  // A demo seeded before patients had an identity gets hers (unless another record took the IPP meanwhile).
  if (patient && !patient.ipp) {
    const [taken] = await db.select({ id: patients.id }).from(patients).where(eq(patients.ipp, DEMO_PATIENT.ipp));
    if (!taken) await db.update(patients).set(identity).where(eq(patients.id, patient.id));
  }
  if (patient) await db.insert(careTeam).values({ doctorId: doctor2Id, patientId: patient.id }).onConflictDoNothing();
  return DEMO_ACCOUNTS;
}
