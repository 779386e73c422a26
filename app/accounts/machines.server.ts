/**
 * Machine accounts: a modality or a PACS that sends images (DICOMweb STOW-RS with a bearer token, or DIMSE C-STORE
 * by its AE title) and, with the `query` scope, searches and reads studies. Role `system`; no password anyone knows
 * (a random one, hashed, never shown): it authenticates with its tokens only. The audit trail names it as such.
 */
import { randomBytes } from "node:crypto";
import { and, asc, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { users } from "../db/schema";
import { HttpError } from "../http/errors.server";
import { MACHINE_SCOPES } from "../vocabulary";
import { hashPassword } from "./password.server";
import { issueToken } from "./tokens.server";
import { loadActor } from "./users.server";
import type { Actor } from "./actor";

/** DICOM AE titles: 1–16 characters of the default repertoire, no backslash, not only spaces (PS3.5 6.2). */
export const AE_TITLE = /^(?=.*[^ ])[\x20-\x5b\x5d-\x7e]{1,16}$/;

export const newMachineSchema = z.object({
  name: z.string().trim().min(2, "Le nom doit comporter au moins 2 caractères.").max(200),
  scopes: z
    .array(z.enum(MACHINE_SCOPES, { message: "Portée inconnue (store, query)." }))
    .min(1, "Au moins une portée : store, ou store et query.")
    .transform((s) => [...new Set(s)].sort()),
  aeTitle: z
    .string()
    .trim()
    .regex(AE_TITLE, "Titre AE invalide : 1 à 16 caractères ASCII, sans barre oblique inverse.")
    .optional(),
});
export type NewMachine = z.infer<typeof newMachineSchema>;

const tokenTtlHours = () => config.MACHINE_TOKEN_TTL_DAYS * 24;

export async function createMachine(input: NewMachine): Promise<{ id: string; token: string; expiresAt: Date }> {
  const email = `machine-${randomBytes(6).toString("hex")}@machines.nexus`;
  if (input.aeTitle && (await machineByAeTitle(input.aeTitle))) {
    throw new HttpError(409, "ae_title_taken", `Le titre AE « ${input.aeTitle} » est déjà celui d'un autre compte machine.`);
  }
  const passwordHash = await hashPassword(randomBytes(32).toString("base64url"));
  const [row] = await db
    .insert(users)
    .values({ email, name: input.name, role: "system", passwordHash, scopes: input.scopes, aeTitle: input.aeTitle ?? null })
    .returning({ id: users.id });
  const token = await issueToken(row!.id, tokenTtlHours());
  return { id: row!.id, token: token.token, expiresAt: token.expiresAt };
}

/** A new token for an existing machine account (the old ones stay valid until revoked or expired). */
export async function newMachineToken(machineId: string): Promise<{ token: string; expiresAt: Date }> {
  const [row] = await db.select({ id: users.id }).from(users).where(and(eq(users.id, machineId), eq(users.role, "system")));
  if (!row) throw new HttpError(404, "not_found", "Compte machine inconnu.");
  const token = await issueToken(machineId, tokenTtlHours());
  return { token: token.token, expiresAt: token.expiresAt };
}

export function listMachines() {
  return db
    .select({ id: users.id, name: users.name, scopes: users.scopes, aeTitle: users.aeTitle, createdAt: users.createdAt, disabledAt: users.disabledAt })
    .from(users)
    .where(eq(users.role, "system"))
    .orderBy(asc(users.name));
}

/** The enabled machine account calling with this AE title (DIMSE), as an actor. */
export async function machineByAeTitle(aeTitle: string): Promise<Actor | null> {
  const [row] = await db
    .select({ id: users.id })
    .from(users)
    .where(and(eq(users.role, "system"), eq(users.aeTitle, aeTitle.trim()), isNull(users.disabledAt)));
  return row ? loadActor(row.id) : null;
}
