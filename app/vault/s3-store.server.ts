/**
 * Object store on S3 / MinIO (any S3 server that speaks SigV4 and multipart uploads), through the `minio` client,
 * and `storeFromEnv`, which picks S3 or the local directory from the environment.
 *
 * Memory stays flat: an upload of at most one part (8 MiB) is sent in one PUT; anything longer goes to the client
 * as a stream of unknown size, which it cuts into 8 MiB multipart parts (the client would otherwise buffer a
 * known-size body of up to 64 MiB whole).
 */
import { join } from "node:path";
import { Readable } from "node:stream";
import { Client } from "minio";
import { LocalStore } from "./local-store.server";
import { checkObjectKey, checkPrefix, NotFoundError, StorageUnavailableError, type ObjectStore } from "./store.server";

export const DEFAULT_BUCKET = "sante-data";
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const REGION = "us-east-1";
const PING_TIMEOUT_MS = 5_000;
const NETWORK_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
]);
/** S3 error codes that mean "the service cannot serve us now", not "this request is wrong". */
const UNAVAILABLE_S3_CODES = new Set([
  "InternalError",
  "ServiceUnavailable",
  "SlowDown",
  "RequestTimeout",
  "NoSuchBucket",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "AccessDenied",
]);
/** minio 8 reports 5xx after its retry as a plain Error with this text. */
const UNAVAILABLE_MESSAGE = /socket hang up|Retryable HTTP status: 5\d\d|Request failed after \d+ retries/i;

type Env = Readonly<Record<string, string | undefined>>;

export interface S3StoreOptions {
  endPoint: string;
  /** Default: 443 with SSL, 80 without. */
  port?: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  /** Default {@link DEFAULT_BUCKET}. */
  bucket?: string;
  /** Multipart part size in bytes (≥ 5 MiB); default {@link DEFAULT_PART_SIZE}. */
  partSize?: number;
}

/** A minio client for these settings (path-style requests, the fixed region): the store's, and the tools' and tests'. */
export function s3Client(options: S3StoreOptions): Client {
  return new Client({
    endPoint: options.endPoint,
    ...(options.port ? { port: options.port } : {}),
    useSSL: options.useSSL,
    accessKey: options.accessKey,
    secretKey: options.secretKey,
    pathStyle: true,
    region: REGION,
    ...(options.partSize ? { partSize: options.partSize } : {}),
  });
}

export class S3Store implements ObjectStore {
  readonly kind = "s3" as const;
  readonly location: string;
  readonly bucket: string;
  private readonly client: Client;
  private readonly partSize: number;

  constructor(options: S3StoreOptions) {
    this.bucket = options.bucket ?? DEFAULT_BUCKET;
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
    const scheme = options.useSSL ? "https" : "http";
    this.location = `${scheme}://${options.endPoint}${options.port ? `:${options.port}` : ""}/${this.bucket}`;
    this.client = s3Client({ ...options, partSize: this.partSize });
  }

  async ensureReady(): Promise<void> {
    await this.call("create bucket", async () => {
      if (await this.client.bucketExists(this.bucket)) return;
      try {
        await this.client.makeBucket(this.bucket, REGION);
      } catch (error) {
        if ((error as { code?: unknown }).code !== "BucketAlreadyOwnedByYou") throw error;
      }
    });
  }

  async ping(): Promise<void> {
    let exists: boolean;
    try {
      exists = await withTimeout(this.client.bucketExists(this.bucket), PING_TIMEOUT_MS);
    } catch (error) {
      throw new StorageUnavailableError(`object storage at ${this.location} is unreachable: ${describe(error)}`, {
        cause: error,
      });
    }
    if (!exists) throw new StorageUnavailableError(`bucket "${this.bucket}" does not exist at ${this.location}`);
  }

  async put(key: string, body: AsyncIterable<Uint8Array> | Readable): Promise<{ size: number }> {
    checkObjectKey(key);
    const source: AsyncIterator<Uint8Array> = body[Symbol.asyncIterator]();
    const head = await readUpTo(source, this.partSize);
    if (head.ended) {
      const bytes = Buffer.concat(head.chunks, head.size);
      await this.call("put", () => this.client.putObject(this.bucket, key, bytes, bytes.length), key);
      return { size: bytes.length };
    }
    let size = head.size;
    async function* rest(): AsyncGenerator<Buffer, void, undefined> {
      yield* head.chunks;
      for await (const chunk of { [Symbol.asyncIterator]: () => source }) {
        size += chunk.length;
        yield toBuffer(chunk);
      }
    }
    const stream = Readable.from(rest(), { objectMode: false });
    // minio 8 pipes the body without listening to its errors: a failing body (a client gone mid-upload) would be an
    // uncaught 'error' event. Listen here and fail the put instead.
    const bodyFailed = new Promise<never>((_, reject) => stream.on("error", reject));
    bodyFailed.catch(() => {});
    try {
      // No size: the client streams multipart parts of `partSize` instead of buffering the body.
      await Promise.race([this.call("put", () => this.client.putObject(this.bucket, key, stream), key), bodyFailed]);
    } catch (error) {
      stream.destroy(); // the client does not stop reading the body when a part fails; this also closes `body`
      this.client.removeIncompleteUpload(this.bucket, key).catch(() => {}); // best effort: do not wait on a sick server
      throw error;
    }
    return { size };
  }

  /** Read sizes are the network's: the hint of {@link ObjectStore.get} does not apply. */
  async get(key: string): Promise<AsyncIterable<Uint8Array>> {
    checkObjectKey(key);
    const stream = await this.call("get", () => this.client.getObject(this.bucket, key), key);
    return this.guard(stream, key);
  }

  async delete(key: string): Promise<void> {
    checkObjectKey(key);
    await this.call("delete", () => this.client.removeObject(this.bucket, key), key);
  }

  async *list(prefix = ""): AsyncGenerator<string, void, undefined> {
    checkPrefix(prefix);
    let token = "";
    do {
      const page = await this.call("list", () =>
        this.client.listObjectsV2Query(this.bucket, prefix, token, "", 1000, ""),
      );
      for (const item of page.objects) if (item.name !== undefined) yield item.name;
      token = page.isTruncated ? page.nextContinuationToken : "";
    } while (token);
  }

  /** Runs one client call, translating its failures into the store's error types. */
  private async call<T>(operation: string, run: () => Promise<T>, key?: string): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw this.translate(error, operation, key);
    }
  }

  /** Errors while the object body streams (connection lost mid-way) are translated too. */
  private async *guard(stream: Readable, key: string): AsyncGenerator<Uint8Array, void, undefined> {
    try {
      for await (const chunk of stream) yield chunk as Buffer;
    } catch (error) {
      throw this.translate(error, "get", key);
    } finally {
      // A consumer that stops early (aborted download) releases the HTTP connection to S3 now.
      stream.destroy();
    }
  }

  private translate(error: unknown, operation: string, key?: string): unknown {
    const code = errorCode(error);
    if (key !== undefined && (code === "NoSuchKey" || code === "NotFound")) return new NotFoundError(key);
    if (isUnavailable(error, code)) {
      return new StorageUnavailableError(`object storage ${operation} failed at ${this.location}: ${describe(error)}`, {
        cause: error,
      });
    }
    return error;
  }
}

/**
 * The object store the environment asks for: S3 when an endpoint is set (`S3_ENDPOINT`, `S3_HOST` or
 * `MINIO_ENDPOINT`), otherwise the local directory `<dataDir>/objects`.
 * @throws Error naming the variable at fault when the S3 configuration is incomplete or malformed.
 */
export function storeFromEnv(env: Env, dataDir: string): ObjectStore {
  const options = s3OptionsFromEnv(env);
  return options ? new S3Store(options) : new LocalStore(join(dataDir, "objects"));
}

/**
 * S3 settings from the environment, or null when no endpoint is set. Accepted names (first set wins):
 * endpoint `S3_ENDPOINT` | `S3_HOST` | `MINIO_ENDPOINT` (a host, `host:port` or a URL), port `S3_PORT` |
 * `MINIO_PORT`, TLS `S3_USE_SSL` | `MINIO_USE_SSL` ("true"/"false"), access key `S3_ACCESS_KEY` | `S3_ACCESS` |
 * `MINIO_ACCESS_KEY`, secret `S3_SECRET_KEY` | `S3_SECRET` | `MINIO_SECRET_KEY`, bucket `S3_BUCKET`.
 */
export function s3OptionsFromEnv(env: Env): S3StoreOptions | null {
  const pick = (...names: string[]) => names.map((name) => env[name]?.trim()).find((value) => value);
  const endpoint = pick("S3_ENDPOINT", "S3_HOST", "MINIO_ENDPOINT");
  if (!endpoint) return null;
  const parsed = parseEndpoint(endpoint);
  const portText = pick("S3_PORT", "MINIO_PORT");
  const sslText = pick("S3_USE_SSL", "MINIO_USE_SSL");
  const accessKey = pick("S3_ACCESS_KEY", "S3_ACCESS", "MINIO_ACCESS_KEY");
  const secretKey = pick("S3_SECRET_KEY", "S3_SECRET", "MINIO_SECRET_KEY");
  if (!accessKey) throw new Error("S3 endpoint is set but S3_ACCESS_KEY (or S3_ACCESS, MINIO_ACCESS_KEY) is missing");
  if (!secretKey) throw new Error("S3 endpoint is set but S3_SECRET_KEY (or S3_SECRET, MINIO_SECRET_KEY) is missing");
  const port = portText === undefined ? parsed.port : parsePort(portText, "S3_PORT");
  return {
    endPoint: parsed.host,
    ...(port === undefined ? {} : { port }),
    useSSL: sslText === undefined ? parsed.useSSL : parseBoolean(sslText, "S3_USE_SSL"),
    accessKey,
    secretKey,
    bucket: pick("S3_BUCKET") ?? DEFAULT_BUCKET,
  };
}

function parseEndpoint(value: string): { host: string; port?: number; useSSL: boolean } {
  if (value.includes("://")) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Error(`S3 endpoint "${value}" is not a valid URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(`S3 endpoint "${value}" must use http or https`);
    }
    const useSSL = url.protocol === "https:";
    return url.port
      ? { host: url.hostname, port: parsePort(url.port, "S3 endpoint"), useSSL }
      : { host: url.hostname, useSSL };
  }
  const [host, port, ...rest] = value.split(":");
  if (!host || rest.length > 0) throw new Error(`S3 endpoint "${value}" must be a host, host:port or a URL`);
  return port === undefined ? { host, useSSL: false } : { host, port: parsePort(port, "S3 endpoint"), useSSL: false };
}

function parsePort(value: string, name: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name} "${value}" is not a TCP port`);
  return port;
}

function parseBoolean(value: string, name: string): boolean {
  const lower = value.toLowerCase();
  if (lower === "true" || lower === "1") return true;
  if (lower === "false" || lower === "0") return false;
  throw new Error(`${name} must be "true" or "false", got "${value}"`);
}

/** Reads from `source` until at least `limit` bytes are in hand or it ends. */
async function readUpTo(
  source: AsyncIterator<Uint8Array>,
  limit: number,
): Promise<{ chunks: Buffer[]; size: number; ended: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  while (size < limit) {
    const next = await source.next();
    if (next.done) return { chunks, size, ended: true };
    chunks.push(toBuffer(next.value));
    size += next.value.length;
  }
  return { chunks, size, ended: false };
}

function toBuffer(chunk: Uint8Array): Buffer {
  if (!(chunk instanceof Uint8Array)) throw new TypeError("object bodies carry bytes (Uint8Array), not strings");
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function isUnavailable(error: unknown, code: string | undefined): boolean {
  if (code !== undefined && (NETWORK_ERROR_CODES.has(code) || UNAVAILABLE_S3_CODES.has(code))) return true;
  if (error instanceof AggregateError) return error.errors.some((inner) => isUnavailable(inner, errorCode(inner)));
  return error instanceof Error && UNAVAILABLE_MESSAGE.test(error.message);
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = errorCode(error);
  const text = error.message || error.name;
  return code && !text.includes(code) ? `${code} ${text}` : text;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
