/** Patients and their care teams. Intake consents are recorded with the doctor as recorder. */
import { and, desc, eq, or, sql, type Placeholder, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { Actor } from "../accounts/actor";
import { createUser, EmailTakenError, temporaryPassword } from "../accounts/users.server";
import { recordConsentChange } from "../consent/consent.server";
import { db } from "../db/db.server";
import { careTeam, patients, PURPOSES, type Purpose } from "../db/schema";
import { normaliseDate, validateIns } from "../exams/identity.server";
import { HttpError } from "../http/context.server";
import type { ListScope } from "../policy/policy.server";
import { hasControlCharacter } from "../http/validation.server";

export const newPatientSchema = z.object({
  displayName: z
    .string()
    .trim()
    .min(2, "Le nom doit comporter au moins 2 caractères.")
    .max(200)
    .refine((v) => !hasControlCharacter(v), "Le nom contient un caractère de contrôle interdit."),
  email: z.email("Adresse e-mail invalide.").max(320).optional(),
  consents: z
    .object({ care: z.boolean().optional(), ai_analysis: z.boolean().optional(), research: z.boolean().optional() })
    .strict()
    .optional(),
  /** Hospital id (IPP): the PatientID this site's modalities write. */
  ipp: z
    .string()
    .trim()
    .min(1)
    .max(64, "IPP trop long (64 caractères au plus).")
    .regex(/^[\x21-\x7e]+$/, "L'IPP ne peut contenir que des caractères visibles sans espace.")
    .optional(),
  /** INS (NIR with its key): 15 characters, spaces allowed, key checked. */
  ins: z
    .string()
    .transform((value, ctx) => {
      const check = validateIns(value);
      if (check.ok) return check.ins;
      ctx.addIssue({ code: "custom", message: INS_MESSAGES[check.reason] });
      return z.NEVER;
    })
    .optional(),
  birthDate: z
    .string()
    .refine((v) => /^\d{4}-\d{2}-\d{2}$/.test(v) && normaliseDate(v) !== null, "Date de naissance invalide (AAAA-MM-JJ).")
    .refine((v) => v <= new Date().toISOString().slice(0, 10) && v >= "1880-01-01", "Date de naissance invraisemblable.")
    .optional(),
  sex: z.enum(["F", "M", "U"], "Sexe : F, M ou U.").optional(),
});
export type NewPatient = z.infer<typeof newPatientSchema>;

const INS_MESSAGES = {
  length: "INS invalide : 15 caractères attendus (13 chiffres et une clé de 2 chiffres).",
  format: "INS invalide : seuls des chiffres (et 2A/2B pour la Corse) sont permis.",
  key: "INS invalide : la clé de contrôle ne correspond pas au numéro.",
} as const;

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
        .values({
          displayName: input.displayName,
          userId: account?.id ?? null,
          createdBy: doctor.id,
          ipp: input.ipp ?? null,
          ins: input.ins ?? null,
          birthDate: input.birthDate ?? null,
          sex: input.sex ?? null,
        })
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
    const constraint = uniqueViolation(err);
    if (constraint === "patients_ipp_key") {
      const message = "Cet IPP est déjà attribué à un autre patient.";
      throw new HttpError(409, "ipp_taken", message, { ipp: message });
    }
    if (constraint === "patients_ins_key") {
      const message = "Cet INS est déjà attribué à un autre patient.";
      throw new HttpError(409, "ins_taken", message, { ins: message });
    }
    throw err;
  }
}

/** The unique index a PostgreSQL (or PGlite) unique violation names, if that is what `err` is. */
function uniqueViolation(err: unknown): string | null {
  for (let e: unknown = err; e && typeof e === "object"; e = (e as { cause?: unknown }).cause) {
    const { code, constraint } = e as { code?: string; constraint?: string };
    if (code === "23505") return constraint ?? null;
  }
  return null;
}

export interface PatientSummary {
  id: string;
  displayName: string;
  createdAt: Date;
  ipp: string | null;
  ins: string | null;
  birthDate: string | null;
  sex: string | null;
}

const summaryColumns = {
  id: patients.id,
  displayName: patients.displayName,
  createdAt: patients.createdAt,
  ipp: patients.ipp,
  ins: patients.ins,
  birthDate: patients.birthDate,
  sex: patients.sex,
};

/**
 * The condition of a search: an INS (15 characters, spaces allowed), a birth date (`YYYY-MM-DD`, `DD/MM/YYYY`,
 * `YYYYMMDD`), an IPP (exact, case-insensitive) or words of the name (each must appear, accents ignored by the
 * unaccented copy of the words typed and stored alike).
 */
export function searchCondition(q: string): SQL | undefined {
  const query = q.trim().slice(0, 100);
  if (!query) return undefined;
  const ins = validateIns(query);
  if (ins.ok) return eq(patients.ins, ins.ins);
  const date = normaliseDate(query);
  if (date) return eq(patients.birthDate, date);
  const words = query
    .normalize("NFD")
    .replace(/\p{M}/gu, "")
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => w.replace(/[\\%_]/g, (c) => `\\${c}`));
  const unaccented = sql`translate(lower(${patients.displayName}), 'àâäáãåçéèêëíìîïñóòôöõúùûüýÿ', 'aaaaaaceeeeiiiinooooouuuuyy')`;
  const byName = and(...words.map((w) => sql`${unaccented} like ${"%" + w.toLowerCase() + "%"}`));
  return or(sql`upper(${patients.ipp}) = ${query.toUpperCase()}`, byName);
}

/** The most a list answers at once (the API's default); the page shows {@link PAGE_SIZE}. */
export const MAX_LIST = 500;
export const PAGE_SIZE = 50;

/** Where a list goes on: the last patient of the page before (keyset paging, no OFFSET: stable as patients arrive). */
export type PatientCursor = string;
/** The query of a list through the API: `q`, `cursor` (the `nextCursor` of the page before), `limit`. */
export const patientListQuerySchema = z.object({
  q: z.string().optional(),
  cursor: z.uuid({ message: "identifiant de patient (UUID) attendu." }).optional(),
  limit: z.coerce.number({ message: `entier de 1 à ${MAX_LIST} attendu.` }).int().min(1).max(MAX_LIST).optional(),
});

/** Rows after the cursor's patient in the list's order (newest first, the id breaking ties). */
function after(cursor: PatientCursor): SQL {
  return sql`(${patients.createdAt}, ${patients.id}) < (select c.created_at, c.id from patients c where c.id = ${cursor})`;
}

const newestFirst = [desc(patients.createdAt), desc(patients.id)];

/** A doctor's care-team patients, newest first, those `search` matches when it is given. */
function careTeamList(doctorId: string | Placeholder, limit: number | Placeholder, ...conditions: (SQL | undefined)[]) {
  return db
    .select(summaryColumns)
    .from(patients)
    .innerJoin(careTeam, eq(careTeam.patientId, patients.id))
    .where(and(eq(careTeam.doctorId, doctorId), ...conditions))
    .orderBy(...newestFirst)
    .limit(limit);
}

/** A doctor's first page without a search, the most asked (every visit of /patients): a prepared statement. */
const careTeamFirstPage = careTeamList(sql.placeholder("doctorId"), sql.placeholder("limit")).prepare("nexus_care_team_patients");

export interface PatientPage {
  patients: PatientSummary[];
  /** The cursor of the next page, or null on the last one. */
  nextCursor: PatientCursor | null;
}

/**
 * The patients a list may show, in the scope the policy gives (`listScope`): a doctor's care team, or the
 * directory (admins: identity only, no medical data is stored on this row), newest first, `limit` at a time
 * (at most {@link MAX_LIST}) from `cursor`. `q` searches (see {@link searchCondition}).
 */
export async function listPatients(
  scope: ListScope,
  options: { q?: string; cursor?: PatientCursor; limit?: number } = {},
): Promise<PatientPage> {
  const limit = Math.min(Math.max(1, Math.floor(options.limit ?? MAX_LIST)), MAX_LIST);
  const search = options.q ? searchCondition(options.q) : undefined;
  const from = options.cursor ? after(options.cursor) : undefined;
  let rows: PatientSummary[];
  if (scope.kind === "careTeam") {
    rows =
      search || from
        ? await careTeamList(scope.doctorId, limit + 1, search, from)
        : await careTeamFirstPage.execute({ doctorId: scope.doctorId, limit: limit + 1 });
  } else if (scope.kind === "directory") {
    rows = await db.select(summaryColumns).from(patients).where(and(search, from)).orderBy(...newestFirst).limit(limit + 1);
  } else rows = [];
  const page = rows.slice(0, limit);
  return { patients: page, nextCursor: rows.length > limit ? page[page.length - 1]!.id : null };
}

export async function getPatient(id: string) {
  const [row] = await db
    .select({ ...summaryColumns, userId: patients.userId, erasedAt: patients.erasedAt })
    .from(patients)
    .where(eq(patients.id, id));
  return row ?? null;
}

/** The identity a page header and an API answer show: name, birth date, IPP (and INS, sex). */
export function identityOf(p: Pick<PatientSummary, "id" | "displayName" | "ipp" | "ins" | "birthDate" | "sex"> & { createdAt: Date }) {
  return {
    id: p.id,
    displayName: p.displayName,
    ...(p.ipp ? { ipp: p.ipp } : {}),
    ...(p.ins ? { ins: p.ins } : {}),
    ...(p.birthDate ? { birthDate: p.birthDate } : {}),
    ...(p.sex ? { sex: p.sex } : {}),
    createdAt: p.createdAt.toISOString(),
  };
}

export type { Purpose };
