/** Patients and their care teams. Intake consents are recorded with the doctor as recorder. */
import { desc, eq } from "drizzle-orm";
import { z } from "zod";
import type { Actor } from "../accounts/actor";
import { createUser, EmailTakenError, temporaryPassword } from "../accounts/users.server";
import { recordConsentChange } from "../consent/consent.server";
import { db } from "../db/db.server";
import { careTeam, patients, PURPOSES, type Purpose } from "../db/schema";
import { HttpError } from "../http/context.server";

export const newPatientSchema = z.object({
  displayName: z.string().trim().min(2, "Le nom doit comporter au moins 2 caractères.").max(200),
  email: z.email("Adresse e-mail invalide.").max(320).optional(),
  consents: z
    .object({ care: z.boolean().optional(), ai_analysis: z.boolean().optional(), research: z.boolean().optional() })
    .strict()
    .optional(),
});
export type NewPatient = z.infer<typeof newPatientSchema>;

export interface CreatedPatient {
  id: string;
  /** When a patient account was opened: its e-mail and a one-time password to hand to the patient. */
  account?: { email: string; temporaryPassword: string };
}

/** Creates a patient in the creating doctor's care team, with an optional account and intake consents. */
export async function createPatient(doctor: Actor, input: NewPatient): Promise<CreatedPatient> {
  const password = input.email ? temporaryPassword() : null;
  try {
    return await db.transaction(async (tx) => {
      const account =
        input.email && password
          ? await createUser({ email: input.email, name: input.displayName, role: "patient", password, temporary: true }, tx)
          : null;
      const [row] = await tx
        .insert(patients)
        .values({ displayName: input.displayName, userId: account?.id ?? null, createdBy: doctor.id })
        .returning({ id: patients.id });
      const patientId = row!.id;
      await tx.insert(careTeam).values({ doctorId: doctor.id, patientId });
      for (const purpose of PURPOSES) {
        const granted = input.consents?.[purpose];
        if (granted !== undefined) {
          await recordConsentChange(tx, { patientId, purpose, granted, by: doctor, source: "intake" });
        }
      }
      return {
        id: patientId,
        ...(input.email && password ? { account: { email: input.email.toLowerCase(), temporaryPassword: password } } : {}),
      };
    });
  } catch (err) {
    if (err instanceof EmailTakenError) throw new HttpError(409, "conflict", err.message, { email: err.message });
    throw err;
  }
}

export interface PatientSummary {
  id: string;
  displayName: string;
  createdAt: Date;
}

/** Doctors see their care team; admins see the directory (no medical data is stored on this row). */
export async function listPatients(actor: Actor): Promise<PatientSummary[]> {
  const columns = { id: patients.id, displayName: patients.displayName, createdAt: patients.createdAt };
  if (actor.role === "doctor") {
    return db
      .select(columns)
      .from(patients)
      .innerJoin(careTeam, eq(careTeam.patientId, patients.id))
      .where(eq(careTeam.doctorId, actor.id))
      .orderBy(desc(patients.createdAt));
  }
  return db.select(columns).from(patients).orderBy(desc(patients.createdAt));
}

export async function getPatient(id: string) {
  const [row] = await db
    .select({ id: patients.id, displayName: patients.displayName, createdAt: patients.createdAt, userId: patients.userId })
    .from(patients)
    .where(eq(patients.id, id));
  return row ?? null;
}

export type { Purpose };
