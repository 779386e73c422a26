/** User accounts: creation, lookup, enabling and disabling. */
import { randomInt } from "node:crypto";
import { and, asc, eq, isNull, ne, sql } from "drizzle-orm";
import { batchedReads } from "../db/batched-reads.server";
import { db } from "../db/db.server";
import { type Role, patients, sessions, apiTokens, users } from "../db/schema";
import type { Actor } from "./actor";
import { mfaRequiredFor } from "./mfa-policy.server";
import { hashPassword, verifyPassword } from "./password.server";

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class SubjectTakenError extends Error {
  constructor() {
    super("Cet identifiant professionnel est déjà lié à un autre compte.");
  }
}

export class EmailTakenError extends Error {
  constructor() {
    super("Un compte existe déjà avec cette adresse e-mail.");
  }
}

type Executor = Pick<typeof db, "insert" | "select">;

export async function createUser(
  input: { email: string; name: string; role: Role; password: string; temporary?: boolean },
  tx: Executor = db,
): Promise<{ id: string }> {
  const email = normaliseEmail(input.email);
  const [existing] = await tx.select({ id: users.id }).from(users).where(eq(users.email, email));
  if (existing) throw new EmailTakenError();
  const passwordHash = await hashPassword(input.password);
  const [row] = await tx
    .insert(users)
    .values({ email, name: input.name.trim(), role: input.role, passwordHash, mustChangePassword: input.temporary ?? false })
    .returning({ id: users.id });
  return row!;
}

export async function findUserByEmail(email: string) {
  const [row] = await db.select().from(users).where(eq(users.email, normaliseEmail(email)));
  return row ?? null;
}

/** The columns an actor is built from (with `users` left-joined to `patients`): one list for every reader. */
export const ACTOR_COLUMNS = {
  id: users.id,
  email: users.email,
  name: users.name,
  role: users.role,
  scopes: users.scopes,
  totpEnabledAt: users.totpEnabledAt,
  patientId: patients.id,
};

type ActorRow = { [K in keyof typeof ACTOR_COLUMNS]: (typeof ACTOR_COLUMNS)[K]["_"]["data"] | null };

/** The one way an actor is built from its row, for sessions (loadActor) and bearer tokens (actorFromToken). */
export function actorOf(row: ActorRow): Actor {
  const actor: Actor = { id: row.id!, email: row.email!, name: row.name!, role: row.role!, patientId: row.patientId ?? null };
  if (row.role === "system") actor.scopes = row.scopes ?? [];
  // Machine accounts sign in with tokens only (no password, no second factor).
  if (!row.totpEnabledAt && row.role !== "system" && mfaRequiredFor(row.role!)) actor.secondFactorMissing = true;
  return actor;
}

/**
 * Read on every page request: built and planned once (a prepared statement), for all the accounts asked for in one
 * turn of the event loop (app/db/batched-reads.server.ts).
 */
const actorsByUserIds = db
  .select({ ...ACTOR_COLUMNS, disabledAt: users.disabledAt })
  .from(users)
  .leftJoin(patients, eq(patients.userId, users.id))
  .where(sql`${users.id} = any(${sql.placeholder("userIds")}::uuid[])`)
  .prepare("nexus_actors_by_user_ids");
const actorRow = batchedReads(async (userIds: string[]) =>
  (await actorsByUserIds.execute({ userIds })).map((row) => [row.id!, row] as const),
);

/** The actor behind a user id, or null when the account is unknown or disabled. */
export async function loadActor(userId: string): Promise<Actor | null> {
  const row = await actorRow(userId);
  if (!row || row.disabledAt) return null;
  return actorOf(row);
}

export function listUsers() {
  return db
    .select({
      id: users.id,
      email: users.email,
      name: users.name,
      role: users.role,
      disabledAt: users.disabledAt,
      createdAt: users.createdAt,
      oidcSubject: users.oidcSubject,
    })
    .from(users)
    .orderBy(asc(users.role), asc(users.email));
}

export async function getUser(id: string) {
  const [row] = await db.select().from(users).where(eq(users.id, id));
  return row ?? null;
}

/** Disabling an account also ends its sessions and API tokens at once. */
export async function setUserDisabled(id: string, disabled: boolean): Promise<boolean> {
  return db.transaction(async (tx) => {
    const updated = await tx
      .update(users)
      .set({ disabledAt: disabled ? new Date() : null, updatedAt: new Date() })
      .where(eq(users.id, id))
      .returning({ id: users.id });
    if (updated.length === 0) return false;
    if (disabled) {
      await tx.delete(sessions).where(eq(sessions.userId, id));
      await tx.update(apiTokens).set({ revokedAt: new Date() }).where(eq(apiTokens.userId, id));
    }
    return true;
  });
}

/** A readable one-time password: 4 groups of 4 characters from an unambiguous alphabet (≈ 80 bits). */
export function temporaryPassword(): string {
  const alphabet = "ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789";
  return Array.from({ length: 4 }, () => Array.from({ length: 4 }, () => alphabet[randomInt(alphabet.length)]).join("")).join("-");
}

/**
 * Sets a password and ends every session and API token of the user except the session `keepSessionIdHash` (the
 * one making the change). A password change, a reset and a temporary password all go through here.
 */
async function replacePassword(
  userId: string,
  password: string,
  { temporary, keepSessionIdHash }: { temporary: boolean; keepSessionIdHash?: string | null },
): Promise<void> {
  const passwordHash = await hashPassword(password);
  await db.transaction(async (tx) => {
    await tx.update(users).set({ passwordHash, mustChangePassword: temporary, updatedAt: new Date() }).where(eq(users.id, userId));
    await tx
      .delete(sessions)
      .where(keepSessionIdHash ? and(eq(sessions.userId, userId), ne(sessions.idHash, keepSessionIdHash)) : eq(sessions.userId, userId));
    await tx
      .update(apiTokens)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)));
  });
}

/** Changes a password after checking the current one; ends the user's other sessions and all her API tokens. */
export async function changePassword(
  userId: string,
  current: string,
  next: string,
  keepSessionIdHash: string | null = null,
): Promise<boolean> {
  const user = await getUser(userId);
  if (!user || !(await verifyPassword(user.passwordHash, current))) return false;
  await replacePassword(userId, next, { temporary: false, keepSessionIdHash });
  return true;
}

/**
 * The first login with a temporary password consumed it: the user chooses her own now (no current password asked:
 * the restricted session is the proof). Also used by the API's first token request with `newPassword`.
 */
export async function setChosenPassword(userId: string, next: string, keepSessionIdHash: string | null = null): Promise<void> {
  await replacePassword(userId, next, { temporary: false, keepSessionIdHash });
}

/**
 * A temporary password works once: the login that uses it replaces it by an unusable random one, so the doctor or
 * admin who handed it out can never use it to act as the user.
 */
export async function consumeTemporaryPassword(userId: string): Promise<void> {
  const unusable = await hashPassword(`consumed-${randomInt(2 ** 47)}-${Date.now()}-${temporaryPassword()}`);
  await db.update(users).set({ passwordHash: unusable, updatedAt: new Date() }).where(eq(users.id, userId));
}

/** An admin's reset: a new temporary password (shown once), the user's sessions and tokens ended. */
export async function resetPassword(userId: string): Promise<string | null> {
  if (!(await getUser(userId))) return null;
  const password = temporaryPassword();
  await replacePassword(userId, password, { temporary: true });
  return password;
}

/** An admin edits a user's name and role; a role change ends the user's sessions and tokens (new rights, new login). */
export async function updateUser(userId: string, input: { name: string; role: Role; oidcSubject?: string | null }): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [before] = await tx.select({ role: users.role }).from(users).where(eq(users.id, userId));
    if (!before) return false;
    if (input.oidcSubject) {
      const [other] = await tx
        .select({ id: users.id })
        .from(users)
        .where(and(eq(users.oidcSubject, input.oidcSubject), ne(users.id, userId)));
      if (other) throw new SubjectTakenError();
    }
    await tx
      .update(users)
      .set({ name: input.name.trim(), role: input.role, oidcSubject: input.oidcSubject ?? null, updatedAt: new Date() })
      .where(eq(users.id, userId));
    if (before.role !== input.role) {
      await tx.delete(sessions).where(eq(sessions.userId, userId));
      await tx.update(apiTokens).set({ revokedAt: new Date() }).where(and(eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)));
    }
    return true;
  });
}

/** The user's live sessions and API tokens, for her "active sessions" page. */
export async function listCredentials(userId: string) {
  const now = new Date();
  const [live, tokens] = await Promise.all([
    db
      .select({ idHash: sessions.idHash, createdAt: sessions.createdAt, expiresAt: sessions.expiresAt, userAgent: sessions.userAgent, ip: sessions.ip })
      .from(sessions)
      .where(eq(sessions.userId, userId)),
    db
      .select({ id: apiTokens.id, createdAt: apiTokens.createdAt, expiresAt: apiTokens.expiresAt })
      .from(apiTokens)
      .where(and(eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt))),
  ]);
  return {
    sessions: live.filter((s) => s.expiresAt > now).sort((a, b) => +b.createdAt - +a.createdAt),
    tokens: tokens.filter((t) => t.expiresAt > now).sort((a, b) => +b.createdAt - +a.createdAt),
  };
}

/** Ends one of the user's own sessions (by its key) or tokens; false when it is not hers. */
export async function endCredential(userId: string, kind: "session" | "token", id: string): Promise<boolean> {
  if (kind === "session") {
    const gone = await db.delete(sessions).where(and(eq(sessions.userId, userId), eq(sessions.idHash, id))).returning({ id: sessions.idHash });
    return gone.length === 1;
  }
  const revoked = await db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiTokens.userId, userId), eq(apiTokens.id, id), isNull(apiTokens.revokedAt)))
    .returning({ id: apiTokens.id });
  return revoked.length === 1;
}
