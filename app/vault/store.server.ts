/**
 * Where ciphertext lives: one small interface with two implementations, a local directory
 * (local-store.server.ts) and S3/MinIO (s3-store.server.ts). `storeFromEnv` (in s3-store.server.ts) picks one.
 * Stores see only ciphertext and never interpret it.
 */
import type { Readable } from "node:stream";

/** Bytes per read: the first read, then every later one. */
export interface ReadSizes {
  first: number;
  next: number;
  /**
   * The caller is done with a chunk when it asks for the next one: the store may read the next chunk into the same
   * memory (one buffer per object instead of one per read, which spares the garbage collector).
   */
  reuse?: boolean;
}

export interface ObjectStore {
  /** "local" or "s3", for logs and readiness output. */
  readonly kind: "local" | "s3";
  /** Human-readable location (directory, or endpoint and bucket); never contains credentials. */
  readonly location: string;
  /** Creates the directory or bucket if missing. Call once at start-up. */
  ensureReady(): Promise<void>;
  /** Resolves when the store is reachable and usable; throws {@link StorageUnavailableError} otherwise. */
  ping(): Promise<void>;
  /**
   * Stores `body` under `key`, replacing any previous object, without holding the whole body in memory. The object
   * becomes visible only once complete.
   */
  put(key: string, body: AsyncIterable<Uint8Array> | Readable): Promise<{ size: number }>;
  /**
   * The object's bytes; throws {@link NotFoundError} if there is no such object. `reads` says how the caller would
   * like the bytes cut (the vault: along its segments, so that nothing is copied to reassemble one); a store that
   * does not choose its reads (S3: the network does) ignores it.
   */
  get(key: string, reads?: ReadSizes): Promise<AsyncIterable<Uint8Array>>;
  /** Removes the object; succeeds if it does not exist. */
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix` (all keys when omitted), in no guaranteed order. */
  list(prefix?: string): AsyncIterable<string>;
}

/** No object under this key. */
export class NotFoundError extends Error {
  readonly key: string;
  constructor(key: string) {
    super(`no stored object under key "${key}"`);
    this.name = "NotFoundError";
    this.key = key;
  }
}

/** The store cannot be reached or refuses service (connection refused, timeout, 5xx, credentials rejected…). */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageUnavailableError";
  }
}

/** A key or prefix outside the allowed alphabet or shape. */
export class InvalidKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidKeyError";
  }
}

const KEY_ALPHABET = /^[A-Za-z0-9/_.-]+$/;
const MAX_KEY_LENGTH = 1024;
/** Suffix of the local store's in-flight files; no key may end with it. */
export const PARTIAL_SUFFIX = ".partial";

/**
 * Checks an object key: 1–1024 characters of `A-Z a-z 0-9 / _ . -`, relative (no leading `/`), no empty, `.` or
 * `..` path segment, no trailing `/`, not ending in `.partial`. Keys are rejected, never rewritten, so two different
 * keys can never land on the same object.
 * @returns the key itself.
 * @throws InvalidKeyError naming the rule broken.
 */
export function checkObjectKey(key: string): string {
  checkPath(key, "key");
  if (key.length === 0) throw new InvalidKeyError("object key must not be empty");
  if (key.endsWith("/")) throw new InvalidKeyError(`object key "${key}" must not end with "/"`);
  if (key.endsWith(PARTIAL_SUFFIX))
    throw new InvalidKeyError(`object key "${key}" must not end with "${PARTIAL_SUFFIX}"`);
  return key;
}

/** Checks a listing prefix: empty, or a key-like string that may end with `/`. */
export function checkPrefix(prefix: string): string {
  if (prefix === "") return prefix;
  const body = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  if (body === "") throw new InvalidKeyError('object prefix must not start with "/"');
  checkPath(body, "prefix");
  return prefix;
}

function checkPath(value: string, what: string): void {
  if (typeof value !== "string" || value.length > MAX_KEY_LENGTH) {
    throw new InvalidKeyError(`object ${what} must be a string of at most ${MAX_KEY_LENGTH} characters`);
  }
  if (value === "") return;
  if (!KEY_ALPHABET.test(value)) {
    throw new InvalidKeyError(`object ${what} "${value}" may only contain A-Z a-z 0-9 / _ . -`);
  }
  if (value.split("/").some((segment) => segment === "" || segment === "." || segment === "..")) {
    throw new InvalidKeyError(`object ${what} "${value}" has an empty, "." or ".." path segment`);
  }
}
