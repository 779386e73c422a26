/** Turning a vault image into an HTTP response, shared by the API and the browser's file route. */
import { record } from "../audit/audit.server";
import type { Ctx } from "../http/context.server";
import { HttpError } from "../http/errors.server";
import { vault } from "./instance.server";
import { getImageRow, type ImageRow } from "./vault.server";

/** The image row for an id, or null; the policy refuses a missing one like a forbidden one. */
export const loadImage = getImageRow;

/** Records an integrity failure found while reading (an event of its own: the read was allowed, the bytes were not). */
export function integrityRecorder(ctx: Ctx, row: ImageRow) {
  return (err: Error) => {
    void record({
      actor: ctx.actor,
      action: "image.integrity",
      outcome: "error",
      reason: `integrity failure: ${err.message}`,
      resource: { type: "image", id: row.id },
      patientId: row.patientId,
      info: ctx.info,
    }).catch((e) => console.error("[audit] integrity event not recorded:", e));
  };
}

/** Content-Disposition with the original name (RFC 6266 / 5987), ASCII fallback for old clients. */
export function contentDisposition(kind: "inline" | "attachment", fileName: string | null, fallback: string): string {
  const name = fileName ?? fallback;
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export const EXTENSIONS: Record<string, string> = {
  "image/jpeg": "jpg",
  "image/png": "png",
  "application/dicom": "dcm",
};

/** Streams the decrypted original bytes; the first segment is verified before the status line is sent. */
export async function imageResponse(ctx: Ctx, row: ImageRow, download: boolean): Promise<Response> {
  const { body, fileName } = await vault.openImage(row, integrityRecorder(ctx, row), { signal: ctx.request.signal, timing: ctx.info.timing });
  return new Response(body, {
    headers: {
      "Content-Type": row.contentType,
      "Content-Length": String(row.size),
      "Cache-Control": "private, no-store",
      "Content-Disposition": contentDisposition(download ? "attachment" : "inline", fileName, `${row.id}.${EXTENSIONS[row.contentType] ?? "bin"}`),
    },
  });
}

export function missingFile(): HttpError {
  return new HttpError(400, "invalid", "Aucun fichier reçu : joignez-le dans le champ « file ».");
}
