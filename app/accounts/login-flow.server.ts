/**
 * What happens after the credentials are checked, for every way of signing in (password form, OpenID Connect):
 *   second factor on → the code page (a short signed "pending" cookie, no session yet);
 *   temporary password → consumed now, a session restricted to choosing a new password;
 *   second factor required but not enrolled (MFA_REQUIRED) → a session restricted to enrolling;
 *   otherwise → a full session.
 * Every answer also rotates the CSRF token (a token seen before signing in is never valid after).
 */
import { createCookie, redirect } from "@remix-run/node";
import type { Actor } from "./actor";
import { rotateCsrf } from "./csrf.server";
import { isHttps, sessionSecret, startSession, STAGE_PAGES } from "./session.server";
import { consumeTemporaryPassword } from "./users.server";
import { safeRedirectTarget } from "./redirects";

const PENDING_SECONDS = 300;
const pendingCookie = (secure: boolean) =>
  createCookie("nexus_2fa", { httpOnly: true, sameSite: "lax", secure, path: "/connexion", secrets: [sessionSecret], maxAge: PENDING_SECONDS });
const securePending = pendingCookie(true);
const plainPending = pendingCookie(false);
const pendingOf = (request: Request) => (isHttps(request) ? securePending : plainPending);

interface Pending {
  userId: string;
  mustChangePassword: boolean;
  redirectTo: string;
  expiresAt: number;
}

export interface SignedIn {
  actor: Actor;
  mustChangePassword: boolean;
  totpEnabled: boolean;
  /** A second factor was checked (a local code, or the provider's own strong authentication). */
  strongAuthentication?: boolean;
  /** The provider's ID token, kept in the session for its logout. */
  idToken?: string;
  /** Extra cookies of this answer (e.g. clearing the OpenID Connect flow cookie). */
  cookies?: string[];
}

async function answer(request: Request, location: string, cookies: string[]): Promise<Response> {
  const headers = new Headers();
  for (const c of [...cookies, await rotateCsrf(request)]) headers.append("Set-Cookie", c);
  return redirect(location, { headers });
}

/** The answer to a successful sign-in (a redirect with its cookies). */
export async function afterSignIn(request: Request, who: SignedIn, redirectTo: string | null, ip: string | null): Promise<Response> {
  const target = safeRedirectTarget(redirectTo);
  if (who.totpEnabled && !who.strongAuthentication) {
    const pending: Pending = {
      userId: who.actor.id,
      mustChangePassword: who.mustChangePassword,
      redirectTo: target,
      expiresAt: Date.now() + PENDING_SECONDS * 1000,
    };
    return answer(request, "/connexion/code", [await pendingOf(request).serialize(pending)]);
  }
  return finish(request, who.actor, who.mustChangePassword, target, ip, Boolean(who.strongAuthentication), who.cookies ?? [], who.idToken);
}

async function finish(
  request: Request,
  actor: Actor,
  mustChangePassword: boolean,
  target: string,
  ip: string | null,
  strong: boolean,
  extraCookies: string[],
  idToken?: string,
): Promise<Response> {
  if (mustChangePassword) {
    await consumeTemporaryPassword(actor.id);
    const cookie = await startSession(request, actor.id, { stage: "password_change", ip });
    return answer(request, STAGE_PAGES.password_change, [cookie, ...extraCookies]);
  }
  // Without a second factor where one is required, the session starts restricted to enrolling (derived per request).
  const cookie = await startSession(request, actor.id, { ip, idToken, strong });
  const enrol = !strong && actor.secondFactorMissing;
  return answer(request, enrol ? STAGE_PAGES.mfa_enrol : target, [cookie, ...extraCookies]);
}

/** The pending sign-in waiting for a second-factor code, or null (none, tampered or expired). */
export async function pendingSignIn(request: Request): Promise<Pending | null> {
  const value = (await pendingOf(request).parse(request.headers.get("Cookie"))) as Pending | null;
  if (!value || typeof value.userId !== "string" || typeof value.expiresAt !== "number" || value.expiresAt < Date.now()) return null;
  return value;
}

/** After a valid code: the pending cookie is cleared and the sign-in goes on (new password if temporary). */
export async function completeSecondFactor(request: Request, pending: Pending, actor: Actor, ip: string | null): Promise<Response> {
  const clear = await pendingOf(request).serialize("", { maxAge: 0 });
  return finish(request, actor, pending.mustChangePassword, safeRedirectTarget(pending.redirectTo), ip, true, [clear]);
}

/** After the new password (or the enrolment) of a restricted session: what comes next. */
export async function afterStage(request: Request, actor: Actor, ip: string | null, hasSecondFactor: boolean): Promise<Response> {
  return finish(request, actor, false, "/", ip, hasSecondFactor, []);
}
