/**
 * Files that must survive a crash once the code goes on (a stored object before its row points to it, an audit
 * archive before its events leave the database). `fsync` of a file makes its bytes durable, not its name: a file's
 * entry lives in its directory, which needs an `fsync` of its own after the file is created or renamed into it
 * (fsync(2): "Calling fsync() does not necessarily ensure that the entry in the directory containing the file has
 * also reached disk. For that an explicit fsync() on a file descriptor for the directory is also needed."). On ext4 a
 * rename otherwise waits for the journal's next commit, up to 5 s later, whatever PostgreSQL commits meanwhile.
 */
import { closeSync, fsync, openSync } from "node:fs";
import { mkdir, open, rename } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

/** `fsync` of an open descriptor, in the thread pool (one round trip; the promise API would need a FileHandle). */
export const fsyncFd: (fd: number) => Promise<void> = promisify(fsync);

/**
 * `fsync` of the file or directory at `target`: a file's bytes, or a directory's entries (files created, renamed or
 * removed in it). One round trip to the thread pool: the open and the close of an existing path are synchronous
 * calls of a few µs, only the flush waits in the pool (each round trip cost ≈ 0.3 ms of CPU on the virtual machines
 * of bench:http; docs/decisions/2026-12-02-durable-names.md).
 */
export async function syncPath(target: string): Promise<void> {
  const fd = openSync(target, "r");
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * `mkdir -p` whose new directories are durable: each directory it created is synced into its parent. Nothing more
 * than the `mkdir` when the directory already exists.
 */
export async function makeDirectoryDurably(directory: string, mode = 0o700): Promise<void> {
  const first = await mkdir(directory, { recursive: true, mode });
  if (first === undefined) return;
  // `first` is the outermost directory created: it and every directory below it down to `directory` are new entries
  // in their parents.
  for (let d = path.resolve(directory); ; d = path.dirname(d)) {
    await syncPath(path.dirname(d));
    if (d === path.resolve(first) || d === path.dirname(d)) break;
  }
}

/**
 * Renames a finished, already synced file into place and makes the new name durable: the rename, then an `fsync` of
 * the target's directory (and of the source's, when it differs, for the removed name).
 */
export async function renameDurably(from: string, to: string): Promise<void> {
  await rename(from, to);
  await syncPath(path.dirname(to));
  if (path.dirname(path.resolve(from)) !== path.dirname(path.resolve(to))) await syncPath(path.dirname(from));
}

/** Writes `data` to a file (created with `mode`) and flushes its bytes; its name is the caller's (see renameDurably). */
export async function writeFileSynced(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const handle = await open(file, "w", mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `data` to a file (created with `mode`), flushes it and its directory entry: durable when this returns. */
export async function writeFileDurably(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await writeFileSynced(file, data, mode);
  await syncPath(path.dirname(file));
}
