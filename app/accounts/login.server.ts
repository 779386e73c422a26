/**
 * Credential checks with throttling that a stranger cannot turn against an account's owner:
 * - per (e-mail, client address): LOGIN_MAX_FAILURES failures lock that pair for LOGIN_LOCK_MINUTES — someone
 *   guessing from one address locks only themself;
 * - per e-mail, whatever the address: LOGIN_GLOBAL_MAX_FAILURES (a much larger number) failures lock the e-mail,
 *   which slows a guess spread over many addresses.
 * Unknown addresses are counted and locked exactly like real ones, and the same message is given for a wrong
 * password and an unknown e-mail, so nothing reveals whether an account exists.
 */
import { config } from "../config.server";
import type { Actor } from "./actor";
import { verifyPassword } from "./password.server";
import { clearFailures, lockedFor, registerFailure } from "./throttle.server";
import { findUserByEmail, loadActor, normaliseEmail } from "./users.server";

export type LoginResult =
  | {
      ok: true;
      actor: Actor;
      /** The password was temporary: it is consumed by this login and a new one must be chosen now. */
      mustChangePassword: boolean;
      /** A second factor is on: no session or token until a code is given. */
      totpEnabled: boolean;
    }
  | { ok: false; reason: "invalid_credentials"; email: string }
  | { ok: false; reason: "locked"; email: string; retryAfterSeconds: number };

export const LOGIN_MESSAGES = {
  invalid_credentials: "Adresse e-mail ou mot de passe incorrect.",
  locked: "Trop de tentatives. Réessayez dans quelques minutes.",
} as const;

const pairKey = (email: string, ip: string | null) => `${email}|${ip ?? "unknown"}`;

export async function verifyCredentials(rawEmail: string, password: string, clientIp: string | null = null): Promise<LoginResult> {
  const email = normaliseEmail(rawEmail);
  const locked = Math.max(await lockedFor(pairKey(email, clientIp)), await lockedFor(email));
  if (locked > 0) return { ok: false, reason: "locked", email, retryAfterSeconds: locked };

  const user = await findUserByEmail(email);
  const passwordOk = await verifyPassword(user?.passwordHash ?? null, password);
  const actor = passwordOk && user && !user.disabledAt ? await loadActor(user.id) : null;
  if (!actor || !user) {
    const lock = Math.max(
      await registerFailure(pairKey(email, clientIp), config.LOGIN_MAX_FAILURES, config.LOGIN_LOCK_MINUTES),
      await registerFailure(email, config.LOGIN_GLOBAL_MAX_FAILURES, config.LOGIN_LOCK_MINUTES),
    );
    if (lock > 0) return { ok: false, reason: "locked", email, retryAfterSeconds: lock };
    return { ok: false, reason: "invalid_credentials", email };
  }
  await clearFailures(pairKey(email, clientIp));
  await clearFailures(email);
  return { ok: true, actor, mustChangePassword: user.mustChangePassword, totpEnabled: Boolean(user.totpEnabledAt) };
}

export function retryAfterMessage(seconds: number): string {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  return `Trop de tentatives : compte verrouillé. Réessayez dans ${minutes} minute${minutes > 1 ? "s" : ""}.`;
}
