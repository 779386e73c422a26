/**
 * CSRF protection for every browser mutation: a signed double-submit token. The `nexus_csrf` cookie (HttpOnly,
 * SameSite=Lax, HMAC-signed with the session secret) holds a random token that every form repeats in a hidden
 * `csrf` field; an action proceeds only when both match, and when the Origin header, if the browser sent one, is
 * our own. API routes use bearer tokens, never cookies, so they need no CSRF token.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createCookie } from "@remix-run/node";
import { HttpError } from "../http/errors.server";
import { isHttps, sessionSecret } from "./session.server";

export const CSRF_FIELD = "csrf";

const cookieFor = (secure: boolean) =>
  createCookie("nexus_csrf", { httpOnly: true, sameSite: "lax", secure, path: "/", secrets: [sessionSecret] });
const secureCookie = cookieFor(true);
const plainCookie = cookieFor(false);
const cookieOf = (request: Request) => (isHttps(request) ? secureCookie : plainCookie);

async function tokenFromCookie(request: Request): Promise<string | null> {
  const value: unknown = await cookieOf(request).parse(request.headers.get("Cookie"));
  return typeof value === "string" && value.length >= 32 ? value : null;
}

/** The token for this browser, and the Set-Cookie header when a new one had to be issued. */
export async function csrfToken(request: Request): Promise<{ token: string; setCookie: string | null }> {
  const existing = await tokenFromCookie(request);
  if (existing) return { token: existing, setCookie: null };
  const token = randomBytes(32).toString("base64url");
  return { token, setCookie: await cookieOf(request).serialize(token) };
}

export class CsrfError extends HttpError {
  constructor() {
    super(403, "csrf", "Jeton de sécurité (CSRF) manquant ou invalide : rechargez la page et réessayez.");
  }
}

/** server.mjs moves a foreign Origin to `X-Nexus-Foreign-Origin` (so Remix does not abort with a 500). */
function sameOrigin(request: Request): boolean {
  if (request.headers.has("X-Nexus-Foreign-Origin")) return false;
  const origin = request.headers.get("Origin");
  if (!origin || origin === "null") return origin === null;
  return origin === new URL(request.url).origin;
}

/** Throws CsrfError unless `submitted` matches the cookie token and the Origin (if sent) is ours. */
export async function verifyCsrf(request: Request, submitted: FormDataEntryValue | null): Promise<void> {
  const expected = await tokenFromCookie(request);
  if (!expected || typeof submitted !== "string" || !sameOrigin(request)) throw new CsrfError();
  const a = Buffer.from(expected);
  const b = Buffer.from(submitted);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new CsrfError();
}

/** A new CSRF token for this browser (at login: a token seen before signing in is never used after). */
export async function rotateCsrf(request: Request): Promise<string> {
  return cookieOf(request).serialize(randomBytes(32).toString("base64url"));
}
