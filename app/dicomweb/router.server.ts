/**
 * The DICOMweb adapter at /dicomweb (PS3.18): parses the path, then performs one audited, policy-checked action per
 * request (STOW-RS: one per instance, see stow.server.ts). Errors are the API's JSON errors with their real status.
 */
import type { AppLoadContext } from "@remix-run/node";
import { config } from "../config.server";
import { apiContext, apiError, perform, type Ctx } from "../http/context.server";
import { HttpError } from "../http/errors.server";
import { parseQuery, search, type Level } from "./qido.server";
import { DICOM_JSON, stow } from "./stow.server";
import { acceptMultipart, frameList, frames, instancesOf, metadata, rendered, retrieve, type Target } from "./wado.server";

export const PREFIX = "/dicomweb";

function baseUrl(request: Request): string {
  return (config.PUBLIC_URL ? config.PUBLIC_URL.replace(/\/$/, "") : new URL(request.url).origin) + PREFIX;
}

const notFound = () => apiError(404, "not_found", "Ressource DICOMweb inconnue.");

export async function handleDicomweb(args: { request: Request; context: AppLoadContext }): Promise<Response> {
  const { request } = args;
  const ctx = await apiContext(args);
  const url = new URL(request.url);
  let segments: string[];
  try {
    segments = url.pathname.slice(PREFIX.length).split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return apiError(400, "invalid", "Chemin mal encodé.");
  }
  const base = baseUrl(request);
  try {
    if (request.method === "POST") {
      if (segments[0] !== "studies" || segments.length > 2) return notFound();
      return await stow(ctx, request, base, segments[1]);
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return apiError(405, "method_not_allowed", "Méthode non autorisée (GET, POST).", { Allow: "GET, POST" });
    }
    return await get(ctx, segments, url, base);
  } catch (err) {
    if (err instanceof HttpError) return apiError(err.status, err.code, err.message, err.headers);
    throw err;
  }
}

async function get(ctx: Ctx, s: string[], url: URL, base: string): Promise<Response> {
  const [root, study, l2, series, l4, instance, l6, frameSeg] = s;
  // QIDO-RS
  if (s.length === 1 && (root === "studies" || root === "series" || root === "instances")) {
    return qido(ctx, root === "studies" ? "study" : root === "series" ? "series" : "instance", url, {}, base);
  }
  if (root !== "studies" || !study) return notFound();
  if (s.length === 3 && l2 === "series") return qido(ctx, "series", url, { study }, base);
  if (s.length === 3 && l2 === "instances") return qido(ctx, "instance", url, { study }, base);
  if (s.length === 5 && l2 === "series" && l4 === "instances") return qido(ctx, "instance", url, { study, series }, base);
  // WADO-RS
  const target: Target = { study };
  let rest: string[];
  if (s.length >= 4 && l2 === "series") {
    target.series = series;
    if (s.length >= 6 && l4 === "instances") {
      target.instance = instance;
      rest = s.slice(6);
    } else rest = s.slice(4);
  } else rest = s.slice(2);
  const what = rest[0];
  if (rest.length > (what === "frames" ? 2 : 1)) return notFound();
  if ((what === "frames" || what === "rendered") && !target.instance) return notFound();
  if (what !== undefined && !["metadata", "frames", "rendered"].includes(what)) return notFound();
  void l6;
  void frameSeg;
  return wado(ctx, target, what as "metadata" | "frames" | "rendered" | undefined, rest[1], base);
}

async function qido(ctx: Ctx, level: Level, url: URL, scope: { study?: string; series?: string }, base: string): Promise<Response> {
  const query = parseQuery(url.searchParams);
  const found = await perform(ctx, "dicom.search", { type: "app" }, () => search(ctx.actor!, level, query, scope, base), {
    describe: (r) => ({
      resourceType: "study",
      resourceId: scope.study ?? (r.results.length === 1 ? String((r.results[0]!["0020000D"]?.Value ?? [""])[0]) : undefined),
      patientId: r.patientIds.length === 1 ? r.patientIds[0]! : null,
    }),
  });
  const headers: Record<string, string> = { "Content-Type": DICOM_JSON, "Cache-Control": "private, no-store" };
  if (query.ignored.length) headers.Warning = `299 nexus: "ignored query keys: ${query.ignored.join(", ").replace(/"/g, "")}"`;
  return new Response(JSON.stringify(found.results), { headers });
}

async function wado(
  ctx: Ctx,
  target: Target,
  what: "metadata" | "frames" | "rendered" | undefined,
  frameSegment: string | undefined,
  base: string,
): Promise<Response> {
  const accept = ctx.request.headers.get("Accept");
  if (what === undefined) acceptMultipart(accept, "application/dicom");
  const numbers = what === "frames" ? frameList(frameSegment ?? "") : [];
  const rows = await instancesOf(target);
  const patientIds = [...new Set(rows.map((r) => r.patientId))];
  // An unknown study is refused like a forbidden one (no patient to be read): refusals never reveal what exists.
  const resource = { type: "study" as const, id: target.instance ?? target.series ?? target.study };
  if (patientIds.length === 0) {
    await perform(ctx, "dicom.retrieve", resource, async () => null);
    return notFound();
  }
  // The same StudyInstanceUID filed under two patients (a misfiling): each patient's part is checked on its own.
  for (const patientId of patientIds.slice(1)) await perform(ctx, "dicom.retrieve", { ...resource, patientId }, async () => null);
  return perform(ctx, "dicom.retrieve", { ...resource, patientId: patientIds[0]! }, async () => {
    if (what === "metadata") return metadata(ctx, rows, base);
    if (what === "frames") return frames(ctx, rows[0]!, numbers);
    if (what === "rendered") return rendered(ctx, rows[0]!, accept);
    return retrieve(ctx, rows);
  });
}
