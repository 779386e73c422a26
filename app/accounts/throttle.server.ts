/**
 * Failed-attempt counters with lock-outs, one row per key in `login_throttle` (see the schema for the keys used).
 * Counting is atomic (one upsert), so concurrent guesses cannot slip past the limit.
 */
import { eq, sql } from "drizzle-orm";
import { db } from "../db/db.server";
import { loginThrottle } from "../db/schema";

/** Seconds the key stays locked (0: not locked). */
export async function lockedFor(key: string): Promise<number> {
  const [row] = await db.select({ lockedUntil: loginThrottle.lockedUntil }).from(loginThrottle).where(eq(loginThrottle.email, key));
  if (!row?.lockedUntil) return 0;
  const ms = row.lockedUntil.getTime() - Date.now();
  return ms > 0 ? Math.ceil(ms / 1000) : 0;
}

/** Counts one failure; returns the lock duration in seconds if this failure reached `max` and locked the key. */
export async function registerFailure(key: string, max: number, lockMinutes: number): Promise<number> {
  const lockMs = lockMinutes * 60_000;
  const [row] = await db
    .insert(loginThrottle)
    .values({ email: key, failures: 1, lastFailureAt: new Date() })
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
  if (row && row.failures >= max) {
    await db.update(loginThrottle).set({ lockedUntil: new Date(Date.now() + lockMs) }).where(eq(loginThrottle.email, key));
    return Math.ceil(lockMs / 1000);
  }
  return 0;
}

export async function clearFailures(key: string): Promise<void> {
  await db.delete(loginThrottle).where(eq(loginThrottle.email, key));
}
