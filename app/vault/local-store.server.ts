/**
 * Object store on the local file system (`<dataDir>/objects`): the zero-configuration default. Each object is one
 * file (mode 0600, directories 0700), written to a temporary `….partial` file, flushed, then renamed into place, so
 * a reader never sees a half-written object; the directory is flushed after the rename, so that the object is
 * durable under its name when `put` returns (app/durable-fs.server.ts).
 */
import { randomBytes } from "node:crypto";
import { closeSync, constants, open as openCallback, renameSync, rmSync, writevSync, type Dirent } from "node:fs";
import { access, mkdir, open, readdir, rm, type FileHandle } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import { fsyncFd, makeDirectoryDurably, renameDurably, syncPath } from "../durable-fs.server";
import { BufferPool } from "./buffer-pool.server";
import {
  checkObjectKey,
  checkPrefix,
  NotFoundError,
  PARTIAL_SUFFIX,
  StorageUnavailableError,
  type ObjectStore,
  type ReadSizes,
} from "./store.server";

/** Reads when the caller gives no sizes (see {@link ObjectStore.get}). */
const DEFAULT_READS: ReadSizes = { first: 64 * 1024, next: 64 * 1024 };
/**
 * Writes gather the body's chunks up to this many bytes into one `writev`: one call to the thread pool per MiB, not
 * one per chunk (an encrypted body comes as a segment's pieces, ≈ 64 KiB each).
 */
const WRITE_BATCH = 1024 * 1024;
/** A body that ends within this many bytes is written whole, with synchronous calls around its flushes (`putSmall`). */
const SMALL_OBJECT = 256 * 1024;
/** `open(2)` in the thread pool, giving a plain descriptor (see `putSmall`). */
const openFd = promisify(openCallback);
const MISSING = new Set(["ENOENT", "ENOTDIR", "EISDIR"]);

export class LocalStore implements ObjectStore {
  readonly kind = "local" as const;
  readonly location: string;

  /** Directories this store made or found (a put into one of them skips the `mkdir`). */
  private readonly directories = new Set<string>();

  /** @param root the objects directory, e.g. `<dataDir>/objects`. */
  constructor(private readonly root: string) {
    this.location = root;
  }

  async ensureReady(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  async ping(): Promise<void> {
    try {
      await access(this.root, constants.R_OK | constants.W_OK);
    } catch (error) {
      throw new StorageUnavailableError(`object directory ${this.root} is not readable and writable`, { cause: error });
    }
  }

  async put(key: string, body: AsyncIterable<Uint8Array> | Readable): Promise<{ size: number }> {
    const path = this.pathOf(key);
    const directory = dirname(path);
    const temporary = `${path}.${randomBytes(6).toString("hex")}${PARTIAL_SUFFIX}`;
    // The body's first bytes are gathered before the file is opened: a small body that ends within them (a DICOM
    // instance of a CT or an MR, a structured report, a JPEG of a few hundred KiB) is written whole (`putSmall`).
    const chunks = iterate(body);
    const first = await gather(chunks, SMALL_OBJECT);
    if (first.done) {
      await this.putSmall(directory, temporary, path, first.batch);
      return { size: first.bytes };
    }
    let handle: FileHandle | undefined;
    try {
      handle = await this.inDirectory(directory, () => open(temporary, "wx", 0o600));
      const size = await writeAll(handle, first.batch, chunks);
      await handle.sync();
      await handle.close();
      // Durable under its name before this returns: the caller then commits a row that points to it.
      await renameDurably(temporary, path);
      return { size };
    } catch (error) {
      await chunks.return?.().catch(() => {}); // a Readable body is destroyed, as a for-await loop would
      if (handle) {
        await handle.close().catch(() => {});
        await rm(temporary, { force: true });
      }
      throw error;
    }
  }

  /**
   * A body already whole in memory (at most {@link SMALL_OBJECT} bytes), made durable under its name in the order
   * `put` keeps — bytes flushed, renamed into place, directory flushed — with three round trips to the thread pool
   * (the file's creation and the two flushes) instead of nine: the write, the closes, the rename and the directory's
   * open are synchronous calls. On the 2-core virtual machines of bench:http a round trip through the pool cost
   * ≈ 0.3 ms of CPU and these calls ≈ 65 µs of the event loop all together; the creation, ≈ 0.3 ms there, stays in the
   * pool (docs/decisions/2026-12-02-durable-names.md, last addendum).
   */
  private async putSmall(directory: string, temporary: string, path: string, batch: Uint8Array[]): Promise<void> {
    const fd = await this.inDirectory(directory, () => openFd(temporary, "wx", 0o600));
    try {
      try {
        writeAllSync(fd, batch);
        await fsyncFd(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temporary, path);
    } catch (error) {
      rmSync(temporary, { force: true });
      throw error;
    }
    await syncPath(directory);
  }

  /**
   * Creates a file in `directory` with `create`: the directory is made (durably) on its first use by this store, and
   * made again, once, when it was removed behind the store's back since.
   */
  private async inDirectory<T>(directory: string, create: () => T | Promise<T>): Promise<T> {
    if (!this.directories.has(directory)) {
      await makeDirectoryDurably(directory);
      this.directories.add(directory);
      return create();
    }
    try {
      return await create();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      this.directories.delete(directory);
      return this.inDirectory(directory, create);
    }
  }

  async get(key: string, reads: ReadSizes = DEFAULT_READS): Promise<AsyncIterable<Uint8Array>> {
    // The first read happens here, so that a missing object fails the call (NotFoundError) without a separate
    // existence check: one thread-pool operation less per read of an object.
    return readAndClose(this.pathOf(key), key, reads);
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async *list(prefix = ""): AsyncGenerator<string, void, undefined> {
    checkPrefix(prefix);
    const lastSlash = prefix.lastIndexOf("/");
    const start = lastSlash < 0 ? this.root : join(this.root, prefix.slice(0, lastSlash));
    for await (const key of this.walk(start)) {
      if (key.startsWith(prefix)) yield key;
    }
  }

  /** Keys of the finished objects under `directory`, depth first, names sorted. */
  private async *walk(directory: string): AsyncGenerator<string, void, undefined> {
    let entries: Dirent[];
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch (error) {
      if (MISSING.has((error as NodeJS.ErrnoException).code ?? "")) return;
      throw error;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) yield* this.walk(path);
      else if (entry.isFile() && !entry.name.endsWith(PARTIAL_SUFFIX))
        yield relative(this.root, path).split(sep).join("/");
    }
  }

  private pathOf(key: string): string {
    return join(this.root, ...checkObjectKey(key).split("/"));
  }
}

/**
 * The object's bytes, read by `reads` sizes into a new buffer each (the consumer may keep what it was given), or all
 * into one buffer with `reads.reuse` (the consumer is done with a chunk when it asks for the next).
 * No file handle is held while a chunk is with the consumer: each read opens the file, fills its buffer and closes
 * it before the chunk is yielded (objects are immutable once renamed into place). A consumer that stops early, or
 * simply drops the iterator (an aborted download whose stream nobody cancels), therefore leaves nothing open and
 * nothing for the garbage collector to close (DEP0137) — tests/hardening/descriptors.test.ts. Reads are large
 * (the vault asks for 48 segments, ≈ 3 MiB), so the open and close per read cost little beside the read itself.
 *
 * The first read is done before this returns (a missing object rejects it); a read that comes back short is the end
 * of the file, so an object smaller than one read costs one open, one read and one close.
 */
async function readAndClose(path: string, key: string, reads: ReadSizes): Promise<AsyncIterable<Uint8Array>> {
  const pool = reads.reuse ? readPool(Math.max(reads.first, reads.next)) : null;
  const shared = pool?.take() ?? null;
  const bufferOf = (size: number) => (shared ? shared.subarray(0, size) : Buffer.allocUnsafeSlow(size));
  let buffer = bufferOf(reads.first);
  let filled: number;
  try {
    filled = await readAt(path, key, buffer, 0);
  } catch (error) {
    if (shared) pool!.give(shared);
    throw error;
  }
  return (async function* () {
    let position = 0;
    try {
      for (;;) {
        position += filled;
        if (filled > 0) yield filled === buffer.length ? buffer : buffer.subarray(0, filled);
        if (filled < buffer.length) return;
        buffer = bufferOf(reads.next);
        filled = await readAt(path, key, buffer, position);
      }
    } finally {
      // The consumer is done with the last chunk once it ends or stops the iteration (ReadSizes.reuse): the buffer
      // serves the next read of an object. An iterator that is dropped instead leaves it to the garbage collector.
      if (shared) pool!.give(shared);
    }
  })();
}

/** Reused read buffers (ciphertext only), one pool per read size (buffer-pool.server.ts). */
const readPools = new Map<number, BufferPool>();
function readPool(size: number): BufferPool {
  let pool = readPools.get(size);
  if (!pool) readPools.set(size, (pool = new BufferPool(size, 16, false)));
  return pool;
}

/** Fills `buffer` from `position` (less only at the end of the file), between one open and one close. */
async function readAt(path: string, key: string, buffer: Buffer, position: number): Promise<number> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if (MISSING.has((error as NodeJS.ErrnoException).code ?? "")) throw new NotFoundError(key);
    throw error;
  }
  try {
    let filled = 0;
    // A short read is not the end (a regular file rarely gives one): fill the buffer up to its size or the end.
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled;
  } finally {
    await handle.close();
  }
}

/** A body's chunks (an array of them too, as a `for await` loop would take it). */
function iterate(body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncIterator<Uint8Array> {
  if (Symbol.asyncIterator in body) return body[Symbol.asyncIterator]();
  return (async function* () {
    yield* body;
  })();
}

/** The body's chunks up to `limit` bytes (or to its end: `done`). */
async function gather(chunks: AsyncIterator<Uint8Array>, limit: number): Promise<{ batch: Uint8Array[]; bytes: number; done: boolean }> {
  const batch: Uint8Array[] = [];
  let bytes = 0;
  while (bytes < limit) {
    const next = await chunks.next();
    if (next.done) return { batch, bytes, done: true };
    const chunk = checkChunk(next.value);
    if (chunk.length === 0) continue;
    batch.push(chunk);
    bytes += chunk.length;
  }
  return { batch, bytes, done: false };
}

function checkChunk(chunk: unknown): Uint8Array {
  if (!(chunk instanceof Uint8Array)) throw new TypeError("object bodies carry bytes (Uint8Array), not strings");
  return chunk;
}

/**
 * Writes `first`, then the rest of the body in batches of about {@link WRITE_BATCH} bytes (one `writev` each), with
 * one batch in flight while the next is gathered, so producing the next chunks (e.g. encrypting them) overlaps the I/O.
 */
async function writeAll(handle: FileHandle, first: Uint8Array[], rest: AsyncIterator<Uint8Array>): Promise<number> {
  let size = first.reduce((n, c) => n + c.length, 0);
  let inFlight: Promise<void> = writeBatch(handle, first);
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  const flush = async () => {
    const buffers = batch;
    batch = [];
    batchBytes = 0;
    await inFlight;
    inFlight = writeBatch(handle, buffers);
  };
  try {
    for (let next = await rest.next(); !next.done; next = await rest.next()) {
      const chunk = checkChunk(next.value);
      if (chunk.length === 0) continue;
      batch.push(chunk);
      batchBytes += chunk.length;
      size += chunk.length;
      if (batchBytes >= WRITE_BATCH) await flush();
    }
    if (batchBytes > 0) await flush();
  } finally {
    await inFlight.catch(() => {}); // never close the file under a pending write
  }
  await inFlight;
  return size;
}

/** Writes all of `buffers` at the file's current position (a short write goes on with what is left). */
async function writeBatch(handle: FileHandle, buffers: Uint8Array[]): Promise<void> {
  for (let rest = buffers; rest.length > 0; ) rest = unwritten(rest, (await handle.writev(rest)).bytesWritten);
}

/** {@link writeBatch} with synchronous calls, for a small body (see `putSmall`). */
function writeAllSync(fd: number, buffers: Uint8Array[]): void {
  for (let rest = buffers; rest.length > 0; ) rest = unwritten(rest, writevSync(fd, rest));
}

/** What is left of `buffers` once their first `written` bytes are written. */
function unwritten(buffers: Uint8Array[], written: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  for (const b of buffers) {
    if (written >= b.length) written -= b.length;
    else {
      rest.push(written > 0 ? b.subarray(written) : b);
      written = 0;
    }
  }
  return rest;
}
