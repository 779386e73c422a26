/**
 * STOW-RS (PS3.18 10.5): `POST /dicomweb/studies[/{study}]`, `multipart/related; type="application/dicom"`. Parts are
 * read one after the other and each goes through {@link receiveInstance} while it streams in. The answer is the
 * Store Instances Response: 200 all stored, 202 some failed, 409 none stored; each failure with its reason.
 */
import { record } from "../audit/audit.server";
import { apiError, perform, type Ctx } from "../http/context.server";
import { authorize } from "../policy/policy.server";
import { MAX_UPLOAD_BYTES } from "../vault/messages";
import { FAILURE, storeInstancesResponse, type FailedInstance, type StoredInstance } from "./dicom-json.server";
import { receiveInstance } from "./ingest.server";
import { mediaType, MultipartError, multipartParts, PartTooLargeError } from "./multipart.server";

export const DICOM_JSON = "application/dicom+json";

/** Failures found before an instance reaches the store path (no patient known yet, so no event of their own). */
const PRE_STORE_CODES = new Set(["not_dicom", "bad_dicom", "study_mismatch"]);

/** At most this many instances per request (a four-view exam is 4; a PACS sends a study at a time). */
export const MAX_INSTANCES_PER_REQUEST = 1000;

function bodyOf(request: Request): AsyncIterable<Uint8Array> {
  return request.body as unknown as AsyncIterable<Uint8Array>;
}

export async function stow(ctx: Ctx, request: Request, base: string, studyUid?: string): Promise<Response> {
  // The whole request first: an anonymous caller (401) or a machine without the store scope (403) is refused before
  // a byte of the body is read, with one audit event.
  const pre = await authorize(ctx.actor, "dicom.store", { type: "inbox" });
  if (!pre.allowed) await perform(ctx, "dicom.store", { type: "inbox" }, async () => null);

  const { type, params } = mediaType(request.headers.get("Content-Type"));
  if (type !== "multipart/related" || (params.type && params.type.toLowerCase() !== "application/dicom")) {
    return refuse(ctx, 415, "unsupported_media_type", 'Envoyez les instances en multipart/related; type="application/dicom".');
  }
  if (!params.boundary) return refuse(ctx, 400, "invalid", "Paramètre boundary absent du Content-Type multipart/related.");
  if (!request.body) return refuse(ctx, 400, "invalid", "Corps de requête vide.");

  const stored: StoredInstance[] = [];
  const failed: FailedInstance[] = [];
  let count = 0;
  /** Instances that reached perform() (and so left their own audit event). */
  let audited = 0;
  // The parser's own limit is a little above the vault's, so that the vault's 413 is met first while storing.
  const parts = multipartParts(bodyOf(request), params.boundary, { maxPartBytes: MAX_UPLOAD_BYTES + 64 * 1024 });
  try {
    for await (const part of parts) {
      if (++count > MAX_INSTANCES_PER_REQUEST) {
        failed.push({ reason: FAILURE.processing, comment: `Au plus ${MAX_INSTANCES_PER_REQUEST} instances par requête.` });
        break;
      }
      const partType = mediaType(part.headers["content-type"] ?? "application/dicom").type;
      if (partType !== "application/dicom") {
        failed.push({ reason: FAILURE.notDicom, comment: `Type de partie non pris en charge : ${partType}` });
        continue; // the parser skips the unread part (within its limit)
      }
      const result = await receiveInstance(ctx, part.body, { source: "stow", studyInstanceUid: studyUid });
      if (result.ok || !PRE_STORE_CODES.has(result.code)) audited++;
      if (result.ok) {
        stored.push({
          sopClassUid: result.sopClassUid,
          sopInstanceUid: result.sopInstanceUid,
          retrieveUrl: `${base}/studies/${result.studyInstanceUid}/series/${result.seriesInstanceUid}/instances/${result.sopInstanceUid}`,
        });
      } else {
        failed.push({ sopClassUid: result.sopClassUid, sopInstanceUid: result.sopInstanceUid, reason: result.reason, comment: `${result.code}: ${result.message}` });
        if (result.stop) break;
      }
    }
  } catch (err) {
    if (err instanceof PartTooLargeError) {
      failed.push({ reason: FAILURE.tooLarge, comment: `too_large: partie de plus de ${MAX_UPLOAD_BYTES / 1024 / 1024} Mo, lecture arrêtée.` });
    } else if (err instanceof MultipartError) {
      failed.push({ reason: FAILURE.notDicom, comment: `bad_multipart: corps multipart illisible (${err.message}).` });
    } else throw err;
  }
  if (stored.length === 0 && failed.length === 0) {
    return refuse(ctx, 400, "invalid", "Aucune instance DICOM dans le corps multipart.");
  }
  // Parts refused before reaching the store path (not DICOM, bad multipart) leave no event of their own: one
  // event then says what the request amounted to, so that no request goes unaudited.
  if (audited === 0) {
    await record({
      actor: ctx.actor,
      action: "dicom.store",
      outcome: "error",
      reason: failed.map((f) => f.comment).join(" | ").slice(0, 500),
      resource: { type: "study", id: studyUid ?? null },
      info: ctx.info,
    });
  }
  const status = failed.length === 0 ? 200 : stored.length === 0 ? 409 : 202;
  const headers: Record<string, string> = { "Content-Type": DICOM_JSON };
  // A request not read to its end (a part over the limit, too many instances): the HTTP edge discards a bounded part
  // of the rest, then closes the connection (http-edge.mjs, lingerThenClose).
  const studyUrl = studyUid ? `${base}/studies/${studyUid}` : undefined;
  return new Response(JSON.stringify(storeInstancesResponse({ studyUrl, stored, failed })), { status, headers });
}

/** A refusal of the whole request, audited like any other (one event), as the API's JSON error. */
async function refuse(ctx: Ctx, status: number, code: string, message: string): Promise<Response> {
  await record({ actor: ctx.actor, action: "dicom.store", outcome: "error", reason: `${status} ${message}`, resource: { type: "study", id: null }, info: ctx.info });
  return apiError(status, code, message);
}
