/**
 * Credential checks with throttling. After LOGIN_MAX_FAILURES failures for one e-mail address the address is locked
 * for LOGIN_LOCK_MINUTES. Unknown addresses are counted and locked exactly like real ones, and the same message is
 * given for a wrong password and an unknown e-mail, so nothing reveals whether an account exists.
 */
import { eq, sql } from "drizzle-orm";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { loginThrottle } from "../db/schema";
import type { Actor } from "./actor";
import { verifyPassword } from "./password.server";
import { findUserByEmail, loadActor, normaliseEmail } from "./users.server";

export type LoginResult =
  | { ok: true; actor: Actor }
  | { ok: false; reason: "invalid_credentials"; email: string }
  | { ok: false; reason: "locked"; email: string; retryAfterSeconds: number };

export const LOGIN_MESSAGES = {
  invalid_credentials: "Adresse e-mail ou mot de passe incorrect.",
  locked: "Trop de tentatives. Réessayez dans quelques minutes.",
} as const;

async function lockedFor(email: string): Promise<number> {
  const [row] = await db.select().from(loginThrottle).where(eq(loginThrottle.email, email));
  if (!row?.lockedUntil) return 0;
  const ms = row.lockedUntil.getTime() - Date.now();
  return ms > 0 ? Math.ceil(ms / 1000) : 0;
}

/** Counts one failure atomically; returns the lock duration in seconds if this failure locked the address. */
async function registerFailure(email: string): Promise<number> {
  const lockMs = config.LOGIN_LOCK_MINUTES * 60_000;
  const [row] = await db
    .insert(loginThrottle)
    .values({ email, failures: 1, lastFailureAt: new Date() })
    .onConflictDoUpdate({
      target: loginThrottle.email,
      // A lock that has expired starts a fresh count.
      set: {
        failures: sql`case when ${loginThrottle.lockedUntil} is not null and ${loginThrottle.lockedUntil} <= now() then 1 else ${loginThrottle.failures} + 1 end`,
        lockedUntil: sql`case when ${loginThrottle.lockedUntil} is not null and ${loginThrottle.lockedUntil} <= now() then null else ${loginThrottle.lockedUntil} end`,
        lastFailureAt: new Date(),
      },
    })
    .returning();
  if (row && row.failures >= config.LOGIN_MAX_FAILURES) {
    await db
      .update(loginThrottle)
      .set({ lockedUntil: new Date(Date.now() + lockMs) })
      .where(eq(loginThrottle.email, email));
    return Math.ceil(lockMs / 1000);
  }
  return 0;
}

async function clearFailures(email: string): Promise<void> {
  await db.delete(loginThrottle).where(eq(loginThrottle.email, email));
}

export async function verifyCredentials(rawEmail: string, password: string): Promise<LoginResult> {
  const email = normaliseEmail(rawEmail);
  const locked = await lockedFor(email);
  if (locked > 0) return { ok: false, reason: "locked", email, retryAfterSeconds: locked };

  const user = await findUserByEmail(email);
  const passwordOk = await verifyPassword(user?.passwordHash ?? null, password);
  const actor = passwordOk && user && !user.disabledAt ? await loadActor(user.id) : null;
  if (!actor) {
    const lock = await registerFailure(email);
    if (lock > 0) return { ok: false, reason: "locked", email, retryAfterSeconds: lock };
    return { ok: false, reason: "invalid_credentials", email };
  }
  await clearFailures(email);
  return { ok: true, actor };
}

export function retryAfterMessage(seconds: number): string {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  return `Trop de tentatives : compte verrouillé. Réessayez dans ${minutes} minute${minutes > 1 ? "s" : ""}.`;
}
