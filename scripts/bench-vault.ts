/**
 * Vault benchmark: what encryption costs on the upload and download paths, and how much memory concurrent
 * encrypted uploads take. Runs against S3 when S3_HOST / S3_ENDPOINT is set (a throwaway bucket, removed after),
 * otherwise against a local store in a temporary directory (removed after).
 *
 *   npx tsx scripts/bench-vault.ts
 *   bash shared/tools/ceph-rgw/with-ceph-rgw.sh npx tsx scripts/bench-vault.ts
 *
 * All input is generated in memory (crypto.randomBytes); nothing but the stores' own objects touches the disk.
 * Peak-RSS runs happen in child processes so that each starts from a clean heap.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { decryptStream, encryptStream, SEGMENT_SIZE } from "../app/vault/format.server";
import { generateDataKey } from "../app/vault/keys.server";
import { LocalStore } from "../app/vault/local-store.server";
import { DEFAULT_PART_SIZE, S3Store, s3Client, s3OptionsFromEnv } from "../app/vault/s3-store.server";
import type { ObjectStore } from "../app/vault/store.server";

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024; // what an HTTP request body typically delivers per read
const BLOCK = randomBytes(MiB); // random bytes, reused as views: the source costs (almost) nothing
const UPLOAD_MiB = 50;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENT = 8;

interface Target {
  /** "s3:<bucket>" or "local:<dir>", enough for a child process to reopen the same store. */
  spec: string;
  store: ObjectStore;
}

/** `total` bytes in CHUNK-sized views of BLOCK. */
async function* source(total: number): AsyncGenerator<Uint8Array> {
  for (let sent = 0; sent < total; sent += CHUNK) {
    const offset = sent % MiB;
    yield BLOCK.subarray(offset, offset + Math.min(CHUNK, total - sent));
  }
}

async function drain(stream: AsyncIterable<Uint8Array>): Promise<number> {
  let size = 0;
  for await (const chunk of stream) size += chunk.length;
  return size;
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  return (await measured(run)).seconds;
}

/** Wall-clock seconds and this process's CPU seconds (user + system) spent in `run`. */
async function measured(run: () => Promise<unknown>): Promise<{ seconds: number; cpu: number; load: number }> {
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  await run();
  const cpu = process.cpuUsage(cpuStart);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, cpu: (cpu.user + cpu.system) / 1e6, load: loadavg()[0]! };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mibps = (bytes: number, seconds: number) => bytes / MiB / seconds;

function openTarget(spec: string): Target {
  const [kind, where] = [spec.slice(0, spec.indexOf(":")), spec.slice(spec.indexOf(":") + 1)];
  if (kind === "local") return { spec, store: new LocalStore(where) };
  const options = s3OptionsFromEnv(process.env);
  if (!options) throw new Error("S3 target requested but no S3 endpoint in the environment");
  return { spec, store: new S3Store({ ...options, bucket: where }) };
}

function newTarget(): { target: Target; dispose: () => Promise<void> } {
  if (s3OptionsFromEnv(process.env)) {
    const target = openTarget(`s3:nexus-bench-${randomBytes(4).toString("hex")}`);
    return { target, dispose: () => emptyStore(target.store) };
  }
  const dir = mkdtempSync(join(tmpdir(), "nexus-bench-"));
  const target = openTarget(`local:${join(dir, "objects")}`);
  return { target, dispose: async () => rmSync(dir, { recursive: true, force: true }) };
}

async function emptyStore(store: ObjectStore): Promise<void> {
  for await (const key of store.list()) await store.delete(key);
  if (store instanceof S3Store) {
    await s3Client(s3OptionsFromEnv(process.env)!).removeBucket(store.bucket);
  }
}

async function putEncrypted(store: ObjectStore, key: string, bytes: number) {
  const dataKey = generateDataKey();
  const encrypted = encryptStream(source(bytes), { key: dataKey, objectId: key });
  await store.put(key, encrypted.stream);
  return { dataKey, result: await encrypted.result() };
}

type Run = { seconds: number; cpu: number; load: number };
interface Rate {
  mibps: number;
  /** Client CPU seconds per run (median). */
  cpu: number;
  /** 1-minute load average after the runs (lowest, highest). */
  load: [number, number];
  /** Every run's MiB/s, in order. */
  runs: number[];
}

/** Raw vs encrypted PUT and GET of the same size, alternated, median of ROUNDS. */
async function uploadAndDownload(store: ObjectStore) {
  const bytes = UPLOAD_MiB * MiB;
  await store.put("warmup", source(MiB)); // first PUT into a fresh bucket pays for pool creation
  const runs = { rawPut: [] as Run[], encPut: [] as Run[], rawGet: [] as Run[], encGet: [] as Run[] };
  for (let round = 0; round < ROUNDS; round += 1) {
    const rawKey = `raw-${round}`;
    const encKey = `enc-${round}`;
    runs.rawPut.push(await measured(() => store.put(rawKey, source(bytes))));
    let dataKey: Buffer = Buffer.alloc(0);
    runs.encPut.push(await measured(async () => ({ dataKey } = await putEncrypted(store, encKey, bytes))));
    runs.rawGet.push(await measured(async () => drain(await store.get(rawKey))));
    runs.encGet.push(
      await measured(async () => {
        const size = await drain(decryptStream(await store.get(encKey), { key: dataKey, objectId: encKey }));
        if (size !== bytes) throw new Error(`decrypted ${size} bytes, expected ${bytes}`);
      }),
    );
    await Promise.all([store.delete(rawKey), store.delete(encKey)]);
  }
  await store.delete("warmup");
  const rate = (list: Run[]): Rate => ({
    mibps: mibps(bytes, median(list.map((r) => r.seconds))),
    cpu: median(list.map((r) => r.cpu)),
    load: [Math.min(...list.map((r) => r.load)), Math.max(...list.map((r) => r.load))],
    runs: list.map((r) => mibps(bytes, r.seconds)),
  });
  return { rawPut: rate(runs.rawPut), encPut: rate(runs.encPut), rawGet: rate(runs.rawGet), encGet: rate(runs.encGet) };
}

/** In-memory throughput of the segment format on one core: best of 5 runs over 64 MiB (least disturbed by others). */
async function cipherThroughput() {
  const bytes = 64 * MiB;
  const key = generateDataKey();
  const objectId = "bench-object";
  const ciphertext: Uint8Array[] = [];
  for await (const chunk of encryptStream(source(bytes), { key, objectId }).stream) ciphertext.push(chunk);
  async function* replay(): AsyncGenerator<Uint8Array> {
    yield* ciphertext;
  }
  const encrypt: number[] = [];
  const decrypt: number[] = [];
  for (let run = 0; run < 5; run += 1) {
    encrypt.push(await timed(() => drain(encryptStream(source(bytes), { key, objectId }).stream)));
    decrypt.push(await timed(() => drain(decryptStream(replay(), { key, objectId }))));
  }
  return { encrypt: mibps(bytes, Math.min(...encrypt)), decrypt: mibps(bytes, Math.min(...decrypt)) };
}

/** Child process body: CONCURRENT encrypted uploads of `sizeMiB` at once; prints peak RSS over baseline as JSON. */
async function rssChild(spec: string, sizeMiB: number): Promise<void> {
  const { store } = openTarget(spec);
  await store.put("rss-warmup", source(CHUNK));
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  const keys = Array.from({ length: CONCURRENT }, (_, i) => `rss-${sizeMiB}-${i}`);
  const seconds = await timed(() => Promise.all(keys.map((key) => putEncrypted(store, key, sizeMiB * MiB))));
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage.rss());
  await Promise.all([...keys, "rss-warmup"].map((key) => store.delete(key)));
  process.stdout.write(JSON.stringify({ baseline, peak, seconds }));
}

function peakRss(spec: string, sizeMiB: number): { baseline: number; peak: number; seconds: number } {
  const script = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, script, "--rss-child", spec, String(sizeMiB)], {
    encoding: "utf8",
    env: process.env,
  });
  if (child.status !== 0) throw new Error(`RSS child failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split("\n").pop()!) as { baseline: number; peak: number; seconds: number };
}

function report(
  target: Target,
  io: Awaited<ReturnType<typeof uploadAndDownload>>,
  cipher: Awaited<ReturnType<typeof cipherThroughput>>,
  rss: Array<[number, ReturnType<typeof peakRss>]>,
): string {
  const f = (n: number) => n.toFixed(1);
  const cpuPair = (raw: Rate, enc: Rate) => `${raw.cpu.toFixed(2)} → ${enc.cpu.toFixed(2)}`;
  const ratio = (a: number, b: number) => `${(b / a).toFixed(2)}${b / a >= 0.9 ? " ✓" : " ✗ (goal ≥ 0.9)"}`;
  const loads = (r: Rate) => `${r.load[0].toFixed(2)}–${r.load[1].toFixed(2)}`;
  const runs = (raw: Rate, enc: Rate) => raw.runs.map((x, i) => `${f(x)}/${f(enc.runs[i]!)}`).join(", ");
  const lines = [
    `Vault benchmark — ${new Date().toISOString()}`,
    `store: ${target.store.kind} ${target.store.location} · node ${process.version} · ${cpus().length} × ${
      cpus()[0]?.model ?? "cpu"
    }`,
    `segment ${SEGMENT_SIZE / 1024} KiB · S3 part ${
      DEFAULT_PART_SIZE / MiB
    } MiB · ${UPLOAD_MiB} MiB objects, median of ${ROUNDS} · source chunks ${CHUNK / 1024} KiB`,
    "",
    "| measure | raw | encrypted | encrypted / raw | client CPU s, raw → encrypted | load (1 min) | every round, raw/encrypted MiB/s |",
    "|---|---:|---:|---:|---:|---:|---|",
    `| PUT ${UPLOAD_MiB} MiB (MiB/s) | ${f(io.rawPut.mibps)} | ${f(io.encPut.mibps)} | ${ratio(
      io.rawPut.mibps,
      io.encPut.mibps,
    )} | ${cpuPair(io.rawPut, io.encPut)} | ${loads(io.encPut)} | ${runs(io.rawPut, io.encPut)} |`,
    `| GET ${UPLOAD_MiB} MiB (MiB/s) | ${f(io.rawGet.mibps)} | ${f(io.encGet.mibps)} | ${ratio(
      io.rawGet.mibps,
      io.encGet.mibps,
    )} | ${cpuPair(io.rawGet, io.encGet)} | ${loads(io.encGet)} | ${runs(io.rawGet, io.encGet)} |`,
    "",
    "| AES-256-GCM segment format, in memory, one core (best of 5 × 64 MiB) | MiB/s |",
    "|---|---:|",
    `| encrypt (incl. SHA-256 of the plaintext) | ${f(cipher.encrypt)} |`,
    `| decrypt (verify + decrypt) | ${f(cipher.decrypt)} |`,
    "",
    `| ${CONCURRENT} concurrent encrypted uploads | data in flight | peak RSS − baseline | peak RSS | wall time |`,
    "|---|---:|---:|---:|---:|",
    ...rss.map(
      ([size, r]) =>
        `| ${CONCURRENT} × ${size} MiB | ${CONCURRENT * size} MiB | ${f((r.peak - r.baseline) / MiB)} MiB | ${f(
          r.peak / MiB,
        )} MiB | ${r.seconds.toFixed(2)} s |`,
    ),
  ];
  return lines.join("\n");
}

async function main(): Promise<void> {
  const [mode, spec, size] = process.argv.slice(2);
  if (mode === "--rss-child") return rssChild(spec!, Number(size));
  const { target, dispose } = newTarget();
  try {
    const cipher = await cipherThroughput(); // first, while the storage server is still idle
    await target.store.ensureReady();
    const io = await uploadAndDownload(target.store);
    const rss: Array<[number, ReturnType<typeof peakRss>]> = [10, 50, 100].map((mib) => [
      mib,
      peakRss(target.spec, mib),
    ]);
    console.log(report(target, io, cipher, rss));
  } finally {
    await dispose();
  }
}

await main();
