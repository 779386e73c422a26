/**
 * Machine accounts: a modality or a PACS that sends images (DICOMweb STOW-RS with a bearer token, or DIMSE C-STORE
 * by its AE title) and, with the `query` scope, searches and reads studies. Role `system`; no password anyone knows
 * (a random one, hashed, never shown): it authenticates with its tokens only. The audit trail names it as such.
 */
import { randomBytes } from "node:crypto";
import { and, asc, desc, eq, inArray, isNull } from "drizzle-orm";
import { z } from "zod";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { apiTokens, auditEvents, users } from "../db/schema";
import { HttpError } from "../http/errors.server";
import { MACHINE_SCOPES } from "../vocabulary";
import { hashPassword } from "./password.server";
import { issueToken } from "./tokens.server";
import { loadActor, setUserDisabled } from "./users.server";
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

export const MACHINE_DISABLED = "Compte machine désactivé : réactivez-le avant de lui délivrer un jeton.";

/** The form's message for a taken AE title (the API's message names the title). */
export const AE_TITLE_TAKEN = "Ce titre AE est déjà celui d'un autre compte machine.";

const tokenTtlHours = () => config.MACHINE_TOKEN_TTL_DAYS * 24;

export async function createMachine(input: NewMachine): Promise<{ id: string; token: string; expiresAt: Date }> {
  const email = `machine-${randomBytes(6).toString("hex")}@machines.nexus`;
  if (input.aeTitle && (await machineByAeTitle(input.aeTitle))) {
    throw new HttpError(409, "ae_title_taken", `Le titre AE « ${input.aeTitle} » est déjà celui d'un autre compte machine.`, {
      aeTitle: AE_TITLE_TAKEN,
    });
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
export async function newMachineToken(machineId: string): Promise<{ name: string; token: string; expiresAt: Date }> {
  const [row] = await db
    .select({ id: users.id, name: users.name, disabledAt: users.disabledAt })
    .from(users)
    .where(and(eq(users.id, machineId), eq(users.role, "system")));
  if (!row) throw new HttpError(404, "not_found", "Compte machine inconnu.");
  // A disabled account's tokens never authenticate: issuing one would hand out a token that does not work.
  if (row.disabledAt) throw new HttpError(409, "machine_disabled", MACHINE_DISABLED);
  const token = await issueToken(machineId, tokenTtlHours());
  return { name: row.name, token: token.token, expiresAt: token.expiresAt };
}

export interface MachineToken {
  id: string;
  createdAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
}

export interface MachineAccount {
  id: string;
  name: string;
  scopes: string[] | null;
  aeTitle: string | null;
  createdAt: Date;
  disabledAt: Date | null;
  /** Its tokens, newest first (the tokens themselves are never stored: only when they were issued and end). */
  tokens: MachineToken[];
  /** Its latest audited request (the audit trail is where a machine's activity is recorded), or null. */
  lastActivityAt: Date | null;
}

/** The machine accounts, their tokens and their latest activity (what an admin manages; no medical content). */
export async function listMachines(): Promise<MachineAccount[]> {
  const rows = await db
    .select({ id: users.id, name: users.name, scopes: users.scopes, aeTitle: users.aeTitle, createdAt: users.createdAt, disabledAt: users.disabledAt })
    .from(users)
    .where(eq(users.role, "system"))
    .orderBy(asc(users.name));
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const [tokens, latest] = await Promise.all([
    db
      .select({ id: apiTokens.id, userId: apiTokens.userId, createdAt: apiTokens.createdAt, expiresAt: apiTokens.expiresAt, revokedAt: apiTokens.revokedAt })
      .from(apiTokens)
      .where(inArray(apiTokens.userId, ids))
      .orderBy(desc(apiTokens.createdAt)),
    // One indexed look-up per machine (audit_events_actor_idx: actor, id), newest event first.
    Promise.all(
      ids.map(async (id) => {
        const [row] = await db.select({ at: auditEvents.at }).from(auditEvents).where(eq(auditEvents.actorId, id)).orderBy(desc(auditEvents.id)).limit(1);
        return row?.at ?? null;
      }),
    ),
  ]);
  return rows.map((r, i) => ({
    ...r,
    tokens: tokens.filter((t) => t.userId === r.id).map((t) => ({ id: t.id, createdAt: t.createdAt, expiresAt: t.expiresAt, revokedAt: t.revokedAt })),
    lastActivityAt: latest[i] ?? null,
  }));
}

/** Whether `id` names a machine account (not a person's account, not nothing). */
async function isMachine(id: string): Promise<boolean> {
  const [row] = await db.select({ id: users.id }).from(users).where(and(eq(users.id, id), eq(users.role, "system")));
  return Boolean(row);
}

/** Revokes one token of a machine account; false when the token is not that machine's or was already revoked. */
export async function revokeMachineToken(machine: string, tokenId: string): Promise<boolean> {
  if (!(await isMachine(machine))) return false;
  const revoked = await db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiTokens.id, tokenId), eq(apiTokens.userId, machine), isNull(apiTokens.revokedAt)))
    .returning({ id: apiTokens.id });
  return revoked.length === 1;
}

/**
 * Disables a machine account (every token revoked, its AE title no longer maps to it: DIMSE associations fall back
 * to the allowed-AE rule) or enables it again (it then needs a new token); false when `id` is no machine account.
 */
export async function setMachineDisabled(id: string, disabled: boolean): Promise<boolean> {
  if (!(await isMachine(id))) return false;
  return setUserDisabled(id, disabled);
}

/**
 * How the DIMSE receiver treats an AE title (the addresses it accepts are the server's configuration,
 * DICOM_ALLOWED_AETS, not the account's): `listed` from any address, `loopback` only (no list configured), or
 * `refused` (a list that does not name it).
 */
export function dimseAcceptance(aeTitle: string | null): "listed" | "loopback" | "refused" | null {
  if (!aeTitle) return null;
  const allowed = config.DICOM_ALLOWED_AETS?.split(",").map((s) => s.trim()).filter(Boolean) ?? [];
  if (allowed.length === 0) return "loopback";
  return allowed.includes(aeTitle) ? "listed" : "refused";
}

/** The enabled machine account calling with this AE title (DIMSE), as an actor. */
export async function machineByAeTitle(aeTitle: string): Promise<Actor | null> {
  const [row] = await db
    .select({ id: users.id })
    .from(users)
    .where(and(eq(users.role, "system"), eq(users.aeTitle, aeTitle.trim()), isNull(users.disabledAt)));
  return row ? loadActor(row.id) : null;
}
