/**
 * multipart/related (RFC 2387 / RFC 2046) read as a stream, one part at a time: each part's body is handed on as an
 * async iterable while it arrives, so a STOW-RS study goes into the vault instance by instance without ever being
 * held whole in memory or on disk. busboy (the maintained parser) only accepts multipart/form-data, hence this small
 * boundary splitter (docs/decisions/2026-11-30-dicomweb.md).
 *
 * And the other direction: {@link multipartRelated} writes WADO-RS answers.
 */

/** A part grew past the limit given to {@link multipartParts}: the rest of the body is not read. */
export class PartTooLargeError extends Error {
  constructor(limit: number) {
    super(`a part is larger than ${limit} bytes`);
    this.name = "PartTooLargeError";
  }
}

/** The body is not well-formed multipart (no boundary, truncated, headers too long…). */
export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MultipartError";
  }
}

export interface Part {
  /** Header names lower-cased. */
  headers: Record<string, string>;
  /** The part's bytes; a part not read to the end is skipped by the parser when the next one is asked for. */
  body: AsyncIterable<Uint8Array>;
}

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_PREAMBLE_BYTES = 64 * 1024;

/** Parameters of a Content-Type header (`type`, `boundary`…), names lower-cased, quotes removed. */
export function mediaType(header: string | null): { type: string; params: Record<string, string> } {
  const [type = "", ...rest] = (header ?? "").split(";");
  const params: Record<string, string> = {};
  // Parameters may be quoted and a quoted value may contain ';'.
  const re = /\s*([^=\s;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  const tail = rest.join(";");
  for (const m of tail.matchAll(re)) params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]!;
  return { type: type.trim().toLowerCase(), params };
}

class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  private readonly it: AsyncIterator<Uint8Array>;
  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }
  get buffer() {
    return this.buf;
  }
  consume(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  unshift(bytes: Buffer) {
    this.buf = Buffer.concat([bytes, this.buf]);
  }
  /** Reads one more chunk; false at the end of the source. */
  async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.it.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    // A view when nothing is left over (the usual case inside a part's body): the chunk is not copied.
    this.buf = this.buf.length === 0 ? Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength) : Buffer.concat([this.buf, next.value]);
    return true;
  }
}

/** How many bytes at the end of `buf` could be the beginning of `delimiter` (which starts with CR); 0 when none. */
function partialDelimiter(buf: Buffer, delimiter: Buffer): number {
  for (let i = buf.indexOf(0x0d, Math.max(0, buf.length - delimiter.length + 1)); i >= 0; i = buf.indexOf(0x0d, i + 1)) {
    if (buf.compare(delimiter, 0, buf.length - i, i) === 0) return buf.length - i;
  }
  return 0;
}

/**
 * The parts of a multipart body with the given boundary, in order. Throws {@link MultipartError} on a malformed body;
 * the error surfaces either from the generator or from a part's body iterator, wherever it is met.
 */
export async function* multipartParts(
  source: AsyncIterable<Uint8Array>,
  boundary: string,
  options: { maxPartBytes?: number } = {},
): AsyncGenerator<Part> {
  const maxPartBytes = options.maxPartBytes ?? Infinity;
  // RFC 2046 caps a boundary at 70 characters; Orthanc's DICOMweb client writes longer ones: be lenient, not unbounded.
  if (!boundary || boundary.length > 256) throw new MultipartError("boundary missing or longer than 256 characters");
  const reader = new Reader(source);
  // A leading CRLF makes the first delimiter look like every other one.
  reader.unshift(Buffer.from("\r\n"));
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // When the consumer stops early, the source is left as it is, not cancelled: cancelling a request body resets the
  // connection before the server can answer; the HTTP edge reads and discards a bounded rest after the answer instead.
  {
    // Preamble: everything before the first delimiter is ignored.
    for (;;) {
      const at = reader.buffer.indexOf(delimiter);
      if (at >= 0) {
        reader.consume(at + delimiter.length);
        break;
      }
      if (reader.buffer.length > MAX_PREAMBLE_BYTES) throw new MultipartError("no multipart boundary found in the body");
      if (!(await reader.fill())) throw new MultipartError("no multipart boundary found in the body");
    }
    for (;;) {
      // After a delimiter: "--" closes the body; otherwise optional whitespace and CRLF, then the part's headers.
      while (reader.buffer.length < 2) if (!(await reader.fill())) throw new MultipartError("body ends after a boundary");
      if (reader.buffer[0] === 0x2d && reader.buffer[1] === 0x2d) return;
      let headerEnd: number;
      for (;;) {
        headerEnd = reader.buffer.indexOf("\r\n\r\n");
        if (headerEnd >= 0) break;
        if (reader.buffer.length > MAX_HEADER_BYTES) throw new MultipartError("part headers too long");
        if (!(await reader.fill())) throw new MultipartError("body ends inside part headers");
      }
      const rawHeaders = reader.consume(headerEnd + 4).toString("latin1");
      const lines = rawHeaders.split("\r\n");
      if (lines[0]!.trim() !== "") throw new MultipartError("malformed boundary line");
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        if (!line) continue;
        const colon = line.indexOf(":");
        if (colon <= 0) throw new MultipartError("malformed part header");
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      let finished = false;
      let partBytes = 0;
      const count = (bytes: Buffer) => {
        partBytes += bytes.length;
        if (partBytes > maxPartBytes) throw new PartTooLargeError(maxPartBytes);
        return bytes;
      };
      const body = async function* (): AsyncGenerator<Uint8Array> {
        for (;;) {
          const at = reader.buffer.indexOf(delimiter);
          // Views, not copies: the reader never writes into a buffer it handed out (it makes a new one to grow).
          if (at >= 0) {
            if (at > 0) yield count(reader.consume(at));
            reader.consume(delimiter.length);
            finished = true;
            return;
          }
          // Everything but what may be the beginning of the delimiter (usually nothing) is the part's.
          const safe = reader.buffer.length - partialDelimiter(reader.buffer, delimiter);
          if (safe > 0) yield count(reader.consume(safe));
          if (!(await reader.fill())) throw new MultipartError("body ends inside a part (no closing boundary)");
        }
      };
      const iterator = body();
      let started = false;
      yield {
        headers,
        body: {
          [Symbol.asyncIterator]() {
            if (started) throw new MultipartError("a part's body can be read once");
            started = true;
            return iterator;
          },
        },
      };
      if (!finished) {
        // The consumer stopped early (a refused part): skip to the next delimiter.
        if (started) {
          // The iterator was abandoned part-way; a new pass over the same state picks up where it stopped.
          for await (const chunk of body()) void chunk;
        } else for await (const chunk of iterator) void chunk;
      }
    }
  }
}

/** A multipart/related body made of the given parts, streamed (WADO-RS answers). */
export async function* multipartRelated(
  boundary: string,
  parts: AsyncIterable<{ contentType: string; headers?: Record<string, string>; body: AsyncIterable<Uint8Array> }>,
): AsyncGenerator<Uint8Array> {
  for await (const part of parts) {
    const extra = Object.entries(part.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("");
    yield Buffer.from(`--${boundary}\r\nContent-Type: ${part.contentType}\r\n${extra}\r\n`, "latin1");
    yield* part.body;
    yield Buffer.from("\r\n", "latin1");
  }
  yield Buffer.from(`--${boundary}--\r\n`, "latin1");
}
