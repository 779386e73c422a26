/**
 * The one way an image-bytes route (preview, heatmap, research rendering, download) answers a refusal: the real
 * status and code, the reason in French and English (`message` in the reader's language, from the nexus_lang
 * cookie or the API's Accept-Language), `Retry-After` when the decode pool is full, `Cache-Control: no-store` —
 * and one JSON line in the operational log (status, code, what; never the image id; the stack only with
 * LOG_LEVEL=debug). Never "Unexpected Server Error".
 */
import type { Ctx } from "../http/context.server";
import { errorPageResponse } from "../http/error-page.server";
import { HttpError } from "../http/errors.server";
import { requestLog } from "../log.server";
import { REASONS } from "../policy/policy.server";
import { ImageError } from "./image-error";

export type ImageRoute = "preview" | "heatmap" | "rendering" | "download";

/** English for the non-decoding codes these routes can meet (decoding errors carry their own). */
const ENGLISH: Record<string, string> = {
  erased: "This image was erased (right to erasure).",
  integrity_failure: "Integrity check failed: the stored image was altered. No unauthenticated byte is sent.",
  storage_unavailable: "Image storage unavailable: retry in a few moments.",
  not_found: "Not found.",
  forbidden: "Your role does not allow this action.",
  unsupported_type: "Unsupported image type.",
};

/** The policy's refusal reasons (French, app/policy/policy.server.ts) in English. */
const REASONS_EN: Record<string, string> = {
  [REASONS.role]: "Your role does not allow this action.",
  [REASONS.adminOnly]: "Action reserved for administrators.",
  [REASONS.careTeam]: "This patient is not in your care team.",
  [REASONS.otherPatient]: "You can only see your own record.",
  [REASONS.anonymous]: "Sign-in required.",
  [REASONS.careRevoked]: "Care consent withdrawn by the patient: images cannot be viewed.",
  [REASONS.careNeverGiven]: "The patient has not consented to care: images cannot be viewed.",
  [REASONS.researchRevoked]: "Consent to research withdrawn.",
  [REASONS.researchNeverGiven]: "No consent to research.",
  [REASONS.aiRevoked]: "Consent to AI analysis withdrawn.",
};

/** A refusal thrown by perform() for the page channel: Remix's `data({ code, message }, { status })`. */
function pageRefusal(err: unknown): { status: number; code: string; message: string } | null {
  if (typeof err !== "object" || err === null || (err as { type?: string }).type !== "DataWithResponseInit") return null;
  const { data, init } = err as { data?: { code?: string; message?: string }; init?: { status?: number } | null };
  if (!init?.status || !data?.code) return null;
  return { status: init.status, code: data.code, message: data.message ?? "" };
}

export function readerLang(request: Request): "fr" | "en" {
  const cookie = /(?:^|;\s*)nexus_lang=(\w+)/.exec(request.headers.get("Cookie") ?? "")?.[1];
  if (cookie) return cookie === "en" ? "en" : "fr";
  const accept = (request.headers.get("Accept-Language") ?? "").trim().toLowerCase();
  return accept.startsWith("en") ? "en" : "fr";
}

/** A JSON error response for `err` (an HttpError, a policy refusal, anything else), logged as one line. */
export function imageFailure(ctx: Pick<Ctx, "request" | "info">, err: unknown, route: ImageRoute): Response {
  if (err instanceof Response) return err; // a redirect to the login page
  const refusal = pageRefusal(err);
  const log = requestLog(ctx.info.requestId);
  const debug = log.isLevelEnabled("debug");
  let status = 500;
  let code = "internal_error";
  let fr = "Erreur interne lors de la préparation de l'image : réessayez ; si cela persiste, prévenez l'exploitant.";
  let en = "Internal error while preparing the image: retry; if it persists, tell the operator.";
  let headers: Record<string, string> = {};
  if (refusal) {
    ({ status, code } = refusal);
    fr = refusal.message;
    en = REASONS_EN[refusal.message] ?? ENGLISH[refusal.code] ?? refusal.message;
  } else if (err instanceof HttpError) {
    status = err.status;
    code = err.code;
    fr = err.message;
    en = err instanceof ImageError ? err.messageEn : (ENGLISH[err.code] ?? err.message);
    headers = err.headers ?? {};
  }
  const line = { event: "image.refused", route, status, code, ...(debug && err instanceof Error ? { stack: err.stack } : {}) };
  if (status >= 500) log.error(line, "image request failed");
  else log.warn(line, "image request refused");
  const lang = readerLang(ctx.request);
  // An <img> (it asks for image/*) and a script or client that asks for JSON get the JSON with both languages;
  // anything else — a person who followed a link — gets the app's error page.
  const accept = ctx.request.headers.get("Accept") ?? "";
  if (!/application\/json|^image\//.test(accept)) {
    const page = errorPageResponse(ctx.request, { status, code, message: lang === "en" ? en : fr }, ctx.info.requestId);
    for (const [k, v] of Object.entries(headers)) page.headers.set(k, v);
    return page;
  }
  return Response.json(
    { error: { code, message: lang === "en" ? en : fr, fr, en } },
    { status, headers: { ...headers, "Cache-Control": "private, no-store", "Content-Language": lang } },
  );
}
