/**
 * The request pipeline shared by every loader, action and API route:
 *   context (who, from where) → authorize() → domain call → audit.record() → response.
 * `perform()` is the only way a route reaches domain code, so every request is authorised by the one policy and
 * leaves exactly one audit event, allowed, denied or error.
 */
import { randomUUID } from "node:crypto";
import { data, redirect, type AppLoadContext } from "@remix-run/node";
import type { Actor } from "../accounts/actor";
import { CSRF_FIELD, CsrfError, verifyCsrf } from "../accounts/csrf.server";
import { sessionState, STAGE_PAGES, type SessionStage } from "../accounts/session.server";
import { actorFromToken, bearerToken } from "../accounts/tokens.server";
import { record, type RequestInfo } from "../audit/audit.server";
import { authorize, patientOf, purposeOfUse, REASONS, type Action, type Resource } from "../policy/policy.server";
import { busyError, isDatabaseBusy } from "./busy.server";
import { reasonCode } from "../i18n/reasons";
import { HttpError } from "./errors.server";
import { safeRedirectPath } from "./redirect.server";
import { timed, type Timing } from "./timing.server";

export { HttpError };

export type Channel = "page" | "api";

export interface Ctx {
  request: Request;
  channel: Channel;
  info: RequestInfo;
  actor: Actor | null;
  /** Set when the API caller authenticated with a bearer token. */
  tokenId: string | null;
  /** A browser session in a restricted stage (new password or second-factor enrolment still to do). */
  stage?: SessionStage | null;
  /** The session's key (SHA-256 of its id), to tell "this session" from the user's others. */
  sessionIdHash?: string | null;
}

/** What an API token may still do while its owner must enrol a second factor (MFA_REQUIRED). */
const ENROLMENT_ACTIONS = new Set<Action>(["account.self", "account.totp", "token.revoke"]);

/** Pages a session in a restricted stage may still reach besides its stage's own page. */
const OPEN_IN_STAGE = new Set(["/deconnexion", "/langue"]);

/** The load context given by server.mjs: the request id and the client address (forwarded only by the proxy). */
export interface NexusLoadContext {
  requestId?: string;
  clientIp?: string | null;
  /** The request's stage timings, only with NEXUS_TIMING=1 (app/http/timing.server.ts). */
  timing?: Timing;
}

export function requestInfo(request: Request, context: AppLoadContext | undefined): RequestInfo {
  const ctx = (context ?? {}) as NexusLoadContext;
  return {
    requestId: ctx.requestId ?? randomUUID(),
    ip: ctx.clientIp ?? null,
    userAgent: request.headers.get("User-Agent"),
    ...(ctx.timing ? { timing: ctx.timing } : {}),
  };
}

/** Builds the context of a browser page request (session cookie) or an API request (bearer token only). */
export async function context(request: Request, loadContext: AppLoadContext | undefined, channel: Channel): Promise<Ctx> {
  try {
    const timing = (loadContext as NexusLoadContext | undefined)?.timing;
    return await timed(timing, "auth", () => authenticate(request, loadContext, channel));
  } catch (err) {
    if (isDatabaseBusy(err)) throw busy({ channel });
    throw err;
  }
}

/** A 503 with Retry-After in the channel's shape (a database lock or statement timeout). */
function busy(ctx: Pick<Ctx, "channel">) {
  const e = busyError();
  return failure(ctx, e.status, e.code, e.message, e.headers);
}

async function authenticate(request: Request, loadContext: AppLoadContext | undefined, channel: Channel): Promise<Ctx> {
  const info = requestInfo(request, loadContext);
  if (channel === "page") {
    const state = await sessionState(request);
    if (state?.stage) {
      const path = new URL(request.url).pathname;
      if (path !== STAGE_PAGES[state.stage] && !OPEN_IN_STAGE.has(path)) throw redirect(STAGE_PAGES[state.stage]);
    }
    return {
      request,
      channel,
      info,
      actor: state?.actor ?? null,
      tokenId: null,
      stage: state?.stage ?? null,
      sessionIdHash: state?.idHash ?? null,
    };
  }
  const token = bearerToken(request);
  const found = token ? await actorFromToken(token) : null;
  return { request, channel, info, actor: found?.actor ?? null, tokenId: found?.tokenId ?? null };
}

export const pageContext = (args: { request: Request; context: AppLoadContext }) => context(args.request, args.context, "page");
export const apiContext = (args: { request: Request; context: AppLoadContext }) => context(args.request, args.context, "api");

// ---- errors, shaped for the channel ----------------------------------------------------------------------------

export function apiError(status: number, code: string, message: string, headers?: HeadersInit): Response {
  return Response.json({ error: { code, message } }, { status, headers });
}

/** What a route throws to stop: a JSON error on the API, an error page (root ErrorBoundary) in the browser. */
export function failure(ctx: Pick<Ctx, "channel">, status: number, code: string, message: string, headers?: HeadersInit) {
  if (ctx.channel === "api") return apiError(status, code, message, headers);
  return data({ code, message }, { status, headers });
}

function loginRedirect(request: Request) {
  const url = new URL(request.url);
  const back = safeRedirectPath(url.pathname + url.search);
  // A session cookie that no longer opens a session: it expired (or was ended). Otherwise a first visit.
  const expired = /(?:^|;\s*)nexus_session=[^;]/.test(request.headers.get("Cookie") ?? "");
  return redirect(`/connexion?redirectTo=${encodeURIComponent(back)}${expired ? "&expiree=1" : ""}`);
}

// ---- the pipeline -----------------------------------------------------------------------------------------------

export interface PerformOptions<T> {
  /** The audited patient, when the action concerns one (defaults to a patient resource's id). */
  patientId?: string | null;
  /** False when the route looked the resource up and found nothing: a 404 before the policy is asked. */
  exists?: boolean;
  /** Fills in audit details from the result (e.g. the id of a created resource). */
  describe?: (result: T) => { resourceType?: string; resourceId?: string; patientId?: string | null; reason?: string | null };
}

const NOT_FOUND_MESSAGE = "Ressource introuvable.";

/** A resource named by an id that the route looked up and did not find (an image without a patient). */
function unknownResource(resource: Resource): boolean {
  return resource.type === "image" && resource.id !== undefined && resource.patientId === undefined;
}

function auditResource(resource: Resource): { type: string; id: string | null } {
  return { type: resource.type, id: "id" in resource ? (resource.id ?? null) : null };
}

/**
 * Authorises `action` on `resource` for the context's actor, runs `run` when allowed, and records one audit
 * event whatever happens. Throws a login redirect / 401 for anonymous callers and a 403 for denials.
 */
export async function perform<T>(
  ctx: Ctx,
  action: Action,
  resource: Resource,
  run: () => Promise<T>,
  options: PerformOptions<T> = {},
): Promise<T> {
  try {
    return await performAudited(ctx, action, resource, run, options);
  } catch (err) {
    // The audit chain's lock held too long, or any statement timed out: 503 with Retry-After. Its own audit event
    // was attempted (and may have timed out as well: then nothing was done that needed one).
    if (isDatabaseBusy(err)) throw busy(ctx);
    throw err;
  }
}

async function performAudited<T>(
  ctx: Ctx,
  action: Action,
  resource: Resource,
  run: () => Promise<T>,
  options: PerformOptions<T>,
): Promise<T> {
  const res = auditResource(resource);
  const patientId = options.patientId !== undefined ? options.patientId : (patientOf(resource) ?? null);
  const base = { actor: ctx.actor, action, resource: res, patientId, info: ctx.info, purpose: purposeOfUse(action, ctx.actor?.role) };

  if (!ctx.actor) {
    await record({ ...base, outcome: "denied", reason: reasonCode(REASONS.anonymous) });
    if (ctx.channel === "page") throw loginRedirect(ctx.request);
    throw apiError(401, "unauthenticated", "Jeton d'accès manquant, expiré ou invalide.");
  }
  // Erase by default is refused by default: an id that names nothing is a 404 before the policy can say "allowed"
  // (an image is looked up with its patient first; an unknown one has none).
  if (options.exists === false || unknownResource(resource)) {
    await record({ ...base, outcome: "denied", reason: `404 ${NOT_FOUND_MESSAGE}` });
    throw failure(ctx, 404, "not_found", NOT_FOUND_MESSAGE);
  }
  if (ctx.channel === "api" && ctx.actor.secondFactorMissing && !ENROLMENT_ACTIONS.has(action)) {
    const reason = "Double authentification obligatoire : activez-la d'abord (POST /api/v1/me/totp).";
    await record({ ...base, outcome: "denied", reason: "second factor required" });
    throw apiError(403, "mfa_enrolment_required", reason);
  }
  const decision = await timed(ctx.info.timing, "policy", () => authorize(ctx.actor, action, resource));
  if (!decision.allowed) {
    await record({ ...base, outcome: "denied", reason: reasonCode(decision.reason) });
    throw failure(ctx, 403, "forbidden", decision.reason);
  }
  let result: T;
  try {
    result = await timed(ctx.info.timing, "domain", run);
  } catch (err) {
    const reason =
      err instanceof HttpError
        ? `${err.status} ${err.message}`
        : err instanceof Response
          ? `${err.status}`
          : "internal error";
    // A refusal found while running (e.g. a CSRF token read from a multipart body, a DICOM of another patient) is a
    // denial, not an error.
    const refused = err instanceof HttpError && (err.status === 401 || err.status === 403 || err.denial);
    await record({ ...base, outcome: refused ? "denied" : "error", reason });
    if (err instanceof HttpError && ctx.channel === "api") throw apiError(err.status, err.code, err.message, err.headers);
    throw err;
  }
  const extra = options.describe?.(result) ?? {};
  await record({
    ...base,
    outcome: "allowed",
    resource: { type: extra.resourceType ?? res.type, id: extra.resourceId ?? res.id },
    patientId: extra.patientId !== undefined ? extra.patientId : patientId,
    ...(extra.reason ? { reason: extra.reason } : {}),
  });
  return result;
}

/**
 * For browser mutations: reads the (url-encoded) form and checks its CSRF token before anything else.
 * A bad token is audited as a denial of `action` and answered 403.
 */
export async function readMutation(ctx: Ctx, action: Action): Promise<FormData> {
  const form = await ctx.request.formData();
  try {
    await verifyCsrf(ctx.request, form.get(CSRF_FIELD));
  } catch (err) {
    if (!(err instanceof CsrfError)) throw err;
    await record({ actor: ctx.actor, action, outcome: "denied", reason: "csrf", info: ctx.info });
    throw failure(ctx, 403, "csrf", err.message);
  }
  return form;
}

/**
 * readMutation for the sign-in forms (password, second-factor code, identity provider), which run before there is
 * an actor: the form (read from a clone: the password form is read again by remix-auth) once its CSRF token is
 * checked; a bad token is audited as a denied sign-in step and answered 403.
 */
export async function readSignInForm(request: Request, info: RequestInfo, action: "auth.login" | "auth.otp", reason = "csrf"): Promise<FormData> {
  const form = await request.clone().formData();
  try {
    await verifyCsrf(request, form.get(CSRF_FIELD));
  } catch (err) {
    if (!(err instanceof CsrfError)) throw err;
    await record({ actor: null, action, outcome: "denied", reason, resource: { type: "account" }, info });
    throw failure({ channel: "page" }, 403, "csrf", err.message);
  }
  return form;
}
