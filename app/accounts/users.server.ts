/** User accounts: creation, lookup, enabling and disabling. */
import { asc, eq } from "drizzle-orm";
import { db } from "../db/db.server";
import { type Role, patients, sessions, apiTokens, users } from "../db/schema";
import type { Actor } from "./actor";
import { hashPassword, verifyPassword } from "./password.server";

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class EmailTakenError extends Error {
  constructor() {
    super("Un compte existe déjà avec cette adresse e-mail.");
  }
}

type Executor = Pick<typeof db, "insert" | "select">;

export async function createUser(
  input: { email: string; name: string; role: Role; password: string },
  tx: Executor = db,
): Promise<{ id: string }> {
  const email = normaliseEmail(input.email);
  const [existing] = await tx.select({ id: users.id }).from(users).where(eq(users.email, email));
  if (existing) throw new EmailTakenError();
  const passwordHash = await hashPassword(input.password);
  const [row] = await tx
    .insert(users)
    .values({ email, name: input.name.trim(), role: input.role, passwordHash })
    .returning({ id: users.id });
  return row!;
}

export async function findUserByEmail(email: string) {
  const [row] = await db.select().from(users).where(eq(users.email, normaliseEmail(email)));
  return row ?? null;
}

/** The actor behind a user id, or null when the account is unknown or disabled. */
export async function loadActor(userId: string): Promise<Actor | null> {
  const [row] = await db
    .select({
      id: users.id,
      email: users.email,
      name: users.name,
      role: users.role,
      disabledAt: users.disabledAt,
      scopes: users.scopes,
      patientId: patients.id,
    })
    .from(users)
    .leftJoin(patients, eq(patients.userId, users.id))
    .where(eq(users.id, userId));
  if (!row || row.disabledAt) return null;
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    patientId: row.patientId ?? null,
    ...(row.role === "system" ? { scopes: row.scopes ?? [] } : {}),
  };
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

/** Changes a password after checking the current one; ends the user's other sessions. */
export async function changePassword(userId: string, current: string, next: string): Promise<boolean> {
  const user = await getUser(userId);
  if (!user || !(await verifyPassword(user.passwordHash, current))) return false;
  await db
    .update(users)
    .set({ passwordHash: await hashPassword(next), updatedAt: new Date() })
    .where(eq(users.id, userId));
  return true;
}
