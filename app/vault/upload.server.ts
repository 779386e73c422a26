/**
 * Multipart uploads, parsed as a stream by busboy: each file part goes straight into the vault's encrypting upload,
 * nothing is buffered whole and nothing touches the disk. Plain fields (the CSRF token of the browser form, and any
 * field a form adds) are handed to `onField` in order, before any later part is read.
 *
 * A request either succeeds as a whole or stores nothing: a malformed body (cut short, a part header over the
 * limit, too many parts or files, a field too long), a file over the size limit, or a storage failure takes back
 * every image this request had already stored before the error is answered (docs/decisions). A file refused on its
 * own merits (type, emptiness, pixel count) is only that file's outcome: the others are stored and listed.
 */
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import busboy from "busboy";
import { HttpError } from "../http/errors.server";
import { MAX_UPLOAD_BYTES, VAULT_MESSAGES } from "./messages";
import type { StoredImage } from "./vault.server";

// The rest of the body is not read for the app: the HTTP edge discards a bounded part of it, then closes the
// connection (http-edge.mjs, lingerThenClose).
const tooLarge = () => new HttpError(413, "too_large", VAULT_MESSAGES.too_large);

export const MAX_FILES_PER_REQUEST = 20;
/** Limits of the parser itself (anything over them is a 400 that stores nothing). */
export const UPLOAD_LIMITS = {
  /** Plain fields: a CSRF token, a few short form values. */
  fields: 20,
  fieldSize: 64 * 1024,
  fieldNameSize: 200,
  /** All parts, files and fields together. */
  parts: MAX_FILES_PER_REQUEST + 20,
  /** Header lines per part. */
  headerPairs: 20,
} as const;

export type UploadOutcome =
  | { ok: true; fileName: string | null; image: StoredImage }
  | { ok: false; fileName: string | null; error: HttpError };

export interface ReceiveOptions {
  /** Called for each plain field, in order; may throw to refuse the request before any later part is read. */
  onField?: (name: string, value: string) => Promise<void> | void;
  /** Stores one file; an HttpError is kept as that file's outcome, a 413 or anything else stops the request. */
  store: (file: { fileName: string | null; data: AsyncIterable<Uint8Array> }) => Promise<StoredImage>;
  /** Takes back images already stored when the request fails as a whole. */
  discard: (imageIds: string[]) => Promise<void>;
}

const invalid = (message: string) => new HttpError(400, "invalid", message);

/**
 * Counts the parts of a multipart body as it streams (delimiters `CRLF--boundary`; the body's first one may lack
 * the CRLF), so a part busboy skipped without a word — no `Content-Disposition: form-data; name=…` — is noticed.
 */
function partCounter(boundary: string) {
  const needle = Buffer.from(`\r\n--${boundary}`);
  let tail: Buffer = Buffer.from("\r\n");
  let delimiters = 0;
  return {
    push(chunk: Buffer) {
      const buf = Buffer.concat([tail, chunk]);
      for (let i = buf.indexOf(needle); i !== -1; i = buf.indexOf(needle, i + needle.length)) delimiters++;
      tail = buf.subarray(Math.max(0, buf.length - needle.length + 1));
    },
    /** Parts seen so far: every delimiter but the closing one. */
    get parts() {
      return Math.max(0, delimiters - 1);
    },
  };
}

/** What busboy's errors mean for the sender, in French (the API's language). */
function parserError(err: Error): HttpError {
  const message = err.message ?? "";
  if (/Unexpected end of form/i.test(message)) return invalid("Corps multipart incomplet : l'envoi a été interrompu. Rien n'a été enregistré.");
  if (/Malformed part header/i.test(message)) return invalid("En-tête de partie multipart invalide ou trop long (16 Ko au plus). Rien n'a été enregistré.");
  if (/boundary/i.test(message)) return invalid("Content-Type multipart/form-data sans « boundary » valide.");
  return invalid(`Corps multipart illisible (${message.slice(0, 100)}). Rien n'a été enregistré.`);
}

/** Skips the rest of a refused part so the next part can be read. */
async function drain(stream: Readable): Promise<void> {
  stream.resume();
  await finished(stream);
}

/**
 * A file name as the browser meant it: HTML's multipart encoding escapes `"` as %22 (and CR, LF as %0D, %0A) in
 * the quoted filename; busboy hands it over as sent.
 */
function fileNameOf(raw: string | undefined): string | null {
  if (!raw) return null;
  return raw.replace(/%22/g, '"').replace(/%0D|%0A/gi, " ");
}

export async function receiveUploads(request: Request, options: ReceiveOptions): Promise<UploadOutcome[]> {
  const type = request.headers.get("Content-Type") ?? "";
  if (!type.toLowerCase().startsWith("multipart/form-data")) {
    throw invalid("Envoyez le fichier en multipart/form-data (champ « file »).");
  }
  if (!request.body) throw invalid("Corps de requête vide.");
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { "content-type": type },
      defParamCharset: "utf8",
      limits: { ...UPLOAD_LIMITS, files: MAX_FILES_PER_REQUEST, fileSize: MAX_UPLOAD_BYTES + 1 },
    });
  } catch (err) {
    throw parserError(err as Error);
  }

  const outcomes: UploadOutcome[] = [];
  const stored = () => outcomes.flatMap((o) => (o.ok ? [o.image.id] : []));
  // Parts are handled one at a time, in order: busboy holds the body back while a file stream is not read.
  let queue: Promise<void> = Promise.resolve();
  let failure: unknown = null;
  let stopParsing = () => {};
  // File streams not ended yet: once the request has failed, they are destroyed and the rest of the body is not
  // read (the answer closes the connection).
  const open = new Set<Readable>();
  const fail = (err: unknown) => {
    if (failure) return;
    failure = err;
    for (const stream of open) stream.destroy(new Error("upload refused"));
    stopParsing();
  };
  const enqueue = (work: () => Promise<void>) => {
    queue = queue.then(async () => {
      if (failure) return;
      try {
        await work();
      } catch (err) {
        fail(err);
      }
    });
  };

  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
  const counter = partCounter(boundary?.[1] ?? boundary?.[2] ?? "");
  let partsSeen = 0;
  const body = Readable.fromWeb(request.body as import("node:stream/web").ReadableStream<Uint8Array>);
  const finished = new Promise<void>((resolve) => {
    stopParsing = resolve;
    parser.on("field", (name, value, info) => {
      partsSeen++;
      if (info.nameTruncated || info.valueTruncated) {
        fail(invalid(`Champ « ${name.slice(0, 50)} » trop long.`));
        return;
      }
      enqueue(async () => {
        await options.onField?.(name, value);
      });
    });
    parser.on("file", (name, stream, info) => {
      partsSeen++;
      // A body cut short errors the part's stream; whoever reads it sees the error, the parser's own handler answers.
      stream.on("error", () => {});
      if (failure) {
        stream.destroy();
        return;
      }
      open.add(stream);
      stream.once("close", () => open.delete(stream));
      stream.once("end", () => open.delete(stream));
      if (name !== "file") {
        enqueue(() => drain(stream));
        return;
      }
      const fileName = fileNameOf(info.filename);
      let overLimit = false;
      stream.on("limit", () => {
        overLimit = true;
      });
      enqueue(async () => {
        try {
          const image = await options.store({ fileName, data: stream });
          if (overLimit) throw tooLarge();
          outcomes.push({ ok: true, fileName, image });
        } catch (err) {
          if (!(err instanceof HttpError) || err.status === 413 || err.status >= 500) throw err;
          outcomes.push({ ok: false, fileName, error: err });
          await drain(stream);
        }
      });
    });
    parser.on("filesLimit", () => fail(invalid(`Au plus ${MAX_FILES_PER_REQUEST} fichiers par envoi. Rien n'a été enregistré.`)));
    parser.on("partsLimit", () => fail(invalid("Trop de parties dans le corps multipart. Rien n'a été enregistré.")));
    parser.on("fieldsLimit", () => fail(invalid("Trop de champs dans le corps multipart. Rien n'a été enregistré.")));
    parser.on("error", (err: Error) => {
      fail(parserError(err));
      resolve();
    });
    parser.on("close", () => resolve());
    body.on("error", (err) => {
      fail(err instanceof HttpError ? err : invalid("L'envoi a été interrompu. Rien n'a été enregistré."));
      parser.destroy();
      resolve();
    });
  });
  body.on("data", (chunk: Buffer) => counter.push(chunk));
  body.pipe(parser);
  await finished;
  await queue;
  if (!failure && counter.parts > partsSeen) {
    fail(invalid("Une partie du corps multipart n'a pas d'en-tête « Content-Disposition: form-data; name=… » valide. Rien n'a été enregistré."));
  }
  if (failure) {
    body.unpipe(parser);
    parser.destroy();
    body.destroy();
    await options.discard(stored()).catch((err) => console.error("[upload] stored images not taken back:", (err as Error).message));
    throw failure;
  }
  return outcomes;
}
