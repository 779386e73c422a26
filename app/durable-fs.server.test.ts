/**
 * A stored object, and an audit archive, are durable under their names before the code goes on: after the rename
 * (or the creation) comes an `fsync` of the directory that holds the new name. What the process asks of the kernel
 * is read with Debian's strace (a crash cannot be caused here); "skipped: no strace" where it is absent.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const STRACE = "/usr/bin/strace";
const hasStrace = existsSync(STRACE);
if (!hasStrace) console.log("skipped: no strace at /usr/bin/strace (apt-get install strace): directory flushes unchecked");

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), "nexus-durable-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Call = { call: "openat"; path: string; fd: number } | { call: "fsync"; fd: number } | { call: "rename"; from: string; to: string } | { call: "mkdir"; path: string };

/**
 * Runs the TypeScript that `source(dir)` returns (through tsx) under strace, `dir` being a fresh path of its own; the
 * file calls it made under `dir`, in order.
 */
function traced(name: string, source: (dir: string) => string): { dir: string; calls: Call[] } {
  const dir = path.join(root, name);
  const file = path.join(root, `${name}.mts`);
  const log = path.join(root, `${name}.strace`);
  writeFileSync(file, source(dir));
  const run = spawnSync(
    STRACE,
    ["-f", "-qq", "-s", "4096", "-e", "trace=openat,fsync,rename,renameat,renameat2,mkdir,mkdirat", "-o", log, process.execPath, "--import", "tsx", file],
    { encoding: "utf8", timeout: 60_000 },
  );
  expect(run.status, run.stderr).toBe(0);
  // strace splits a call that another thread interrupts into "<unfinished ...>" and "<... resumed>" lines: join them.
  const pending = new Map<string, string>();
  const lines: string[] = [];
  for (const raw of readFileSync(log, "utf8").split("\n")) {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) continue;
    const [, pid, rest] = m as unknown as [string, string, string];
    if (rest.endsWith("<unfinished ...>")) pending.set(pid, rest.slice(0, -"<unfinished ...>".length));
    else if (/^<\.\.\. \w+ resumed>/.test(rest)) {
      lines.push((pending.get(pid) ?? "") + rest.replace(/^<\.\.\. \w+ resumed>/, ""));
      pending.delete(pid);
    } else lines.push(rest);
  }
  const calls: Call[] = [];
  const inside = (p: string) => p.startsWith(dir);
  for (const line of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^openat\(AT_FDCWD, "([^"]+)", [^)]*\)\s*= (\d+)/.exec(line)) && inside(m[1]!)) calls.push({ call: "openat", path: m[1]!, fd: Number(m[2]) });
    else if ((m = /^fsync\((\d+)\)\s*= 0/.exec(line))) calls.push({ call: "fsync", fd: Number(m[1]) });
    else if ((m = /^rename(?:at2?)?\((?:AT_FDCWD, )?"([^"]+)", (?:AT_FDCWD, )?"([^"]+)"[^)]*\)\s*= 0/.exec(line)) && inside(m[2]!)) calls.push({ call: "rename", from: m[1]!, to: m[2]! });
    else if ((m = /^mkdir(?:at)?\((?:AT_FDCWD, )?"([^"]+)", [^)]*\)\s*= 0/.exec(line)) && inside(m[1]!)) calls.push({ call: "mkdir", path: m[1]! });
  }
  return { dir, calls };
}

/** The paths whose descriptor was fsynced, in order (directories and files alike). */
function synced(calls: Call[]): { path: string; index: number }[] {
  const open = new Map<number, string>();
  const out: { path: string; index: number }[] = [];
  calls.forEach((c, index) => {
    if (c.call === "openat") open.set(c.fd, c.path);
    else if (c.call === "fsync" && open.has(c.fd)) out.push({ path: open.get(c.fd)!, index });
  });
  return out;
}

const app = JSON.stringify(path.resolve("app"));

describe.skipIf(!hasStrace)("durable names", () => {
  it("the local store flushes the object, renames it into place, then flushes its directory (and the new directories), small or large", () => {
    const { dir, calls } = traced(
      "store",
      (dir) => `import path from "node:path";
const { LocalStore } = await import(path.join(${app}, "vault", "local-store.server.ts"));
const store = new LocalStore(${JSON.stringify(path.join(dir, "objects"))});
await store.put("images/first", [new Uint8Array(1000)]);
await store.put("images/second", [new Uint8Array(1000)]);
await store.put("images/third", [new Uint8Array(1024 * 1024), new Uint8Array(1000)]);
`,
    );
    const flushes = synced(calls);
    const renames = calls.flatMap((c, index) => (c.call === "rename" ? [{ ...c, index }] : []));
    // Two small objects (written whole, synchronous calls around the flushes) and one over the first batch (streamed).
    expect(renames.map((r) => path.relative(dir, r.to))).toEqual(["objects/images/first", "objects/images/second", "objects/images/third"]);
    for (const r of renames) {
      // The object's bytes before its name, its name (the directory) after.
      expect(flushes.some((f) => f.path === r.from && f.index < r.index)).toBe(true);
      expect(flushes.some((f) => f.path === path.dirname(r.to) && f.index > r.index)).toBe(true);
    }
    // The first put created objects/ and objects/images/: their entries in their parents are flushed too.
    const created = calls.flatMap((c) => (c.call === "mkdir" ? [path.relative(dir, c.path)] : []));
    expect(created).toEqual(expect.arrayContaining(["objects/images"]));
    expect(flushes.map((f) => path.relative(dir, f.path))).toEqual(expect.arrayContaining(["", "objects"]));
  });

  it("the helpers the audit archive writes with flush new directories, a renamed file and a written file", () => {
    const { dir, calls } = traced(
      "archive",
      (dir) => `import path from "node:path";
const { makeDirectoryDurably, renameDurably, writeFileDurably } = await import(path.join(${app}, "durable-fs.server.ts"));
const { open } = await import("node:fs/promises");
const dir = ${JSON.stringify(path.join(dir, "a", "b"))};
await makeDirectoryDurably(dir);
const handle = await open(path.join(dir, "events.partial"), "w");
await handle.writeFile("{}\\n");
await handle.sync();
await handle.close();
await renameDurably(path.join(dir, "events.partial"), path.join(dir, "events.ndjson"));
await writeFileDurably(path.join(dir, "events.seal.json"), "{}\\n");
`,
    );
    const flushes = synced(calls).map((f) => ({ ...f, path: path.relative(dir, f.path) }));
    const at = (name: string) => calls.findIndex((c) => (c.call === "rename" && c.to.endsWith(name)) || (c.call === "openat" && c.path.endsWith(name)));
    // a/ and a/b/ were created: their entries flushed in archive/ and archive/a/.
    expect(flushes.map((f) => f.path)).toEqual(expect.arrayContaining(["", "a"]));
    // After the rename, and after the seal is written, archive/a/b/ is flushed.
    expect(flushes.some((f) => f.path === "a/b" && f.index > at("events.ndjson"))).toBe(true);
    expect(flushes.some((f) => f.path === "a/b/events.seal.json")).toBe(true);
    const lastDirFlush = Math.max(...flushes.filter((f) => f.path === "a/b").map((f) => f.index));
    expect(lastDirFlush).toBeGreaterThan(at("events.seal.json"));
  });
});
