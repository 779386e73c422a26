/**
 * Multipart uploads parsed as a stream (Remix's parser, one part at a time): each file part goes straight into the
 * vault's encrypting upload, nothing is buffered whole and nothing touches the disk. Fields that precede the files
 * (the CSRF token of the browser form) are handed to `onField` before any file is read.
 */
import { unstable_parseMultipartFormData as parseMultipart } from "@remix-run/node";
import { HttpError } from "../http/context.server";
import { MAX_UPLOAD_BYTES, tooLarge, type StoredImage } from "./vault.server";

export const MAX_FILES_PER_REQUEST = 20;

export type UploadOutcome =
  | { ok: true; fileName: string | null; image: StoredImage }
  | { ok: false; fileName: string | null; error: HttpError };

export interface ReceiveOptions {
  /** Called for each plain field, in order; may throw to refuse the request before any file is read. */
  onField?: (name: string, value: string) => Promise<void> | void;
  /** Stores one file; an HttpError is kept as that file's outcome, a 413 or anything else stops the request. */
  store: (file: { fileName: string | null; data: AsyncIterable<Uint8Array> }) => Promise<StoredImage>;
}

/** Skips the rest of a refused part so the next part can be read, but never past the size limit (413). */
async function drain(data: AsyncIterable<Uint8Array>): Promise<void> {
  let seen = 0;
  for await (const chunk of data) {
    seen += chunk.length;
    if (seen > MAX_UPLOAD_BYTES) throw tooLarge();
  }
}

export async function receiveUploads(request: Request, options: ReceiveOptions): Promise<UploadOutcome[]> {
  const type = request.headers.get("Content-Type") ?? "";
  if (!type.startsWith("multipart/form-data")) {
    throw new HttpError(400, "invalid", "Envoyez le fichier en multipart/form-data (champ « file »).");
  }
  const outcomes: UploadOutcome[] = [];
  try {
    await parseMultipart(request, async (part) => {
      if (part.filename === undefined) {
        const chunks: Uint8Array[] = [];
        let size = 0;
        for await (const chunk of part.data) {
          size += chunk.length;
          if (size > 64 * 1024) throw new HttpError(400, "invalid", `Champ « ${part.name} » trop long.`);
          chunks.push(chunk);
        }
        await options.onField?.(part.name, Buffer.concat(chunks).toString("utf8"));
        return undefined;
      }
      if (part.name !== "file") {
        await drain(part.data);
        return undefined;
      }
      if (outcomes.length >= MAX_FILES_PER_REQUEST) {
        throw new HttpError(400, "invalid", `Au plus ${MAX_FILES_PER_REQUEST} fichiers par envoi.`);
      }
      const fileName = part.filename || null;
      try {
        const image = await options.store({ fileName, data: part.data });
        outcomes.push({ ok: true, fileName, image });
      } catch (err) {
        if (!(err instanceof HttpError) || err.status === 413 || err.status >= 500) throw err;
        outcomes.push({ ok: false, fileName, error: err });
        await drain(part.data);
      }
      return undefined;
    });
  } catch (err) {
    if (err instanceof TypeError && /FormData/.test(err.message)) {
      throw new HttpError(400, "invalid", "Corps multipart illisible.");
    }
    throw err;
  }
  return outcomes;
}
