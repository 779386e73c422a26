/**
 * OpenID Connect sign-in for professionals (Pro Santé Connect) with openid-client: authorization code + PKCE (S256),
 * `state` and `nonce`, and ID tokens validated for issuer, audience, expiry, nonce and **signature** against the
 * provider's published keys (enableNonRepudiationChecks: an unsigned `alg: none` token or a key the provider does
 * not publish is refused). RP-initiated logout ends the provider's session too.
 *
 * Accounts are linked by the configured claim (OIDC_ID_CLAIM: `sub`, or the RPPS claim of Pro Santé Connect) that an
 * admin recorded on the account — never by e-mail. A subject without an account is refused (and audited).
 */
import { createCookie } from "@remix-run/node";
import { and, eq, isNull } from "drizzle-orm";
import * as client from "openid-client";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { users } from "../db/schema";
import { safeRedirectTarget } from "./redirects";
import { isHttps, sessionSecret } from "./session.server";

export const oidcEnabled = () => Boolean(config.OIDC_ISSUER && config.OIDC_CLIENT_ID);
export const oidcLabel = () => (oidcEnabled() ? config.OIDC_LABEL : null);

let discovered: Promise<client.Configuration> | null = null;

/** The provider's configuration, discovered once (and again after a failure). */
function configuration(): Promise<client.Configuration> {
  discovered ??= client
    .discovery(new URL(config.OIDC_ISSUER!), config.OIDC_CLIENT_ID!, config.OIDC_CLIENT_SECRET, undefined, {
      execute: [client.enableNonRepudiationChecks, ...(config.OIDC_ALLOW_HTTP ? [client.allowInsecureRequests] : [])],
    })
    .catch((err: unknown) => {
      discovered = null;
      throw err;
    });
  return discovered;
}

const flowCookie = (secure: boolean) =>
  createCookie("nexus_oidc", { httpOnly: true, sameSite: "lax", secure, path: "/connexion", secrets: [sessionSecret], maxAge: 600 });
const secureFlow = flowCookie(true);
const plainFlow = flowCookie(false);
const flowOf = (request: Request) => (isHttps(request) ? secureFlow : plainFlow);

interface Flow {
  state: string;
  nonce: string;
  verifier: string;
  redirectTo: string;
}

const callbackUrl = (request: Request) => new URL("/connexion/oidc/retour", new URL(request.url).origin).toString();

/** Where to send the browser to sign in at the provider, and the cookie that remembers this attempt's secrets. */
export async function beginOidc(request: Request, redirectTo: string | null): Promise<{ url: string; cookie: string }> {
  const cfg = await configuration();
  const flow: Flow = {
    state: client.randomState(),
    nonce: client.randomNonce(),
    verifier: client.randomPKCECodeVerifier(),
    redirectTo: safeRedirectTarget(redirectTo),
  };
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: callbackUrl(request),
    scope: config.OIDC_SCOPES,
    response_type: "code",
    code_challenge: await client.calculatePKCECodeChallenge(flow.verifier),
    code_challenge_method: "S256",
    state: flow.state,
    nonce: flow.nonce,
  });
  return { url: url.toString(), cookie: await flowOf(request).serialize(flow) };
}

export class OidcError extends Error {
  constructor(
    readonly reason: string,
    readonly subject: string | null = null,
  ) {
    super(reason);
  }
}

export interface OidcSignIn {
  userId: string;
  idToken: string | undefined;
  redirectTo: string;
  clearCookie: string;
}

/** Validates the provider's answer (state, code, PKCE, ID token) and finds the linked account; throws OidcError. */
export async function finishOidc(request: Request): Promise<OidcSignIn> {
  const flow = (await flowOf(request).parse(request.headers.get("Cookie"))) as Flow | null;
  if (!flow?.state || !flow.nonce || !flow.verifier) throw new OidcError("no sign-in in progress (missing or expired cookie)");
  const cfg = await configuration();
  const current = new URL(callbackUrl(request));
  current.search = new URL(request.url).search;
  let claims: client.IDToken | undefined;
  let idToken: string | undefined;
  try {
    const tokens = await client.authorizationCodeGrant(cfg, current, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    claims = tokens.claims();
    idToken = tokens.id_token;
  } catch (err) {
    // The library's message names the check that failed (state, nonce, audience, signature…); never a stack.
    // openid-client wraps oauth4webapi's error, whose own message says which claim or check failed.
    const e = err as { name?: string; message?: string; code?: string; cause?: { message?: string } };
    const detail = `${e.code ?? e.name ?? "error"}: ${e.cause?.message ?? e.message ?? ""}`.slice(0, 300);
    throw new OidcError(`validation failed: ${detail}`);
  }
  const value = claims?.[config.OIDC_ID_CLAIM];
  if (typeof value !== "string" || value.length === 0) throw new OidcError(`no "${config.OIDC_ID_CLAIM}" claim in the ID token`);
  const [user] = await db
    .select({ id: users.id })
    .from(users)
    .where(and(eq(users.oidcSubject, value), isNull(users.disabledAt)));
  if (!user) throw new OidcError("no account linked to this identity", value);
  return { userId: user.id, idToken, redirectTo: flow.redirectTo, clearCookie: await flowOf(request).serialize("", { maxAge: 0 }) };
}

/** The provider's logout URL (RP-initiated logout), or null when there is none to call. */
export async function providerLogoutUrl(request: Request, idToken: string | undefined): Promise<string | null> {
  if (!oidcEnabled() || !idToken) return null;
  try {
    const cfg = await configuration();
    if (!cfg.serverMetadata().end_session_endpoint) return null;
    return client
      .buildEndSessionUrl(cfg, { id_token_hint: idToken, post_logout_redirect_uri: new URL("/connexion", new URL(request.url).origin).toString() })
      .toString();
  } catch {
    return null;
  }
}

/** An admin links an account to a professional identity (the value of OIDC_ID_CLAIM); empty unlinks it. */
export async function linkOidcSubject(userId: string, subject: string | null): Promise<void> {
  await db.update(users).set({ oidcSubject: subject, updatedAt: new Date() }).where(eq(users.id, userId));
}
