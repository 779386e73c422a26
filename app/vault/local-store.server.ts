/**
 * Object store on the local file system (`<dataDir>/objects`): the zero-configuration default. Each object is one
 * file (mode 0600, directories 0700), written to a temporary `….partial` file, flushed, then renamed into place, so
 * a reader never sees a half-written object.
 */
import { randomBytes } from "node:crypto";
import { constants, type Dirent } from "node:fs";
import { access, mkdir, open, readdir, rename, rm, type FileHandle } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import {
  checkObjectKey,
  checkPrefix,
  NotFoundError,
  PARTIAL_SUFFIX,
  StorageUnavailableError,
  type ObjectStore,
} from "./store.server";

/**
 * Reads of 64 KiB (one vault segment). 1 MiB reads were tried for fewer writes (issue 15), but an aborted download
 * could then leave a read in flight when the handle is closed, and Node closed the descriptor on garbage collection
 * (tests/hardening/descriptors.test.ts catches it): correctness first.
 */
const READ_CHUNK = 64 * 1024;
const MISSING = new Set(["ENOENT", "ENOTDIR", "EISDIR"]);

export class LocalStore implements ObjectStore {
  readonly kind = "local" as const;
  readonly location: string;

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
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const temporary = `${path}.${randomBytes(6).toString("hex")}${PARTIAL_SUFFIX}`;
    const handle = await open(temporary, "wx", 0o600);
    try {
      const size = await writeAll(handle, body);
      await handle.sync();
      await handle.close();
      await rename(temporary, path);
      return { size };
    } catch (error) {
      await handle.close().catch(() => {});
      await rm(temporary, { force: true });
      throw error;
    }
  }

  async get(key: string): Promise<AsyncIterable<Uint8Array>> {
    const path = this.pathOf(key);
    try {
      await access(path);
    } catch (error) {
      if (MISSING.has((error as NodeJS.ErrnoException).code ?? "")) throw new NotFoundError(key);
      throw error;
    }
    return readAndClose(path, key);
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

/** Writes the body with one write in flight, so producing the next chunk (e.g. encrypting it) overlaps the I/O. */
/**
 * The object's bytes. The file is opened only when the first chunk is asked for — a consumer that gives up before
 * (an aborted download) opens nothing — and the handle is closed on every path: the end, a read error, and a
 * consumer that stops early (`return()` on this iterator, which `for await` and stream cancellation call).
 */
async function* readAndClose(path: string, key: string): AsyncGenerator<Uint8Array, void, undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if (MISSING.has((error as NodeJS.ErrnoException).code ?? "")) throw new NotFoundError(key);
    throw error;
  }
  const stream = handle.createReadStream({ highWaterMark: READ_CHUNK, autoClose: false });
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } finally {
    stream.destroy();
    await handle.close().catch(() => {});
  }
}

async function writeAll(handle: FileHandle, body: AsyncIterable<Uint8Array>): Promise<number> {
  let size = 0;
  let inFlight: Promise<void> = Promise.resolve();
  try {
    for await (const chunk of body) {
      if (!(chunk instanceof Uint8Array)) throw new TypeError("object bodies carry bytes (Uint8Array), not strings");
      await inFlight;
      inFlight = writeChunk(handle, chunk);
      size += chunk.length;
    }
  } finally {
    await inFlight.catch(() => {}); // never close the file under a pending write
  }
  await inFlight;
  return size;
}

async function writeChunk(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}
