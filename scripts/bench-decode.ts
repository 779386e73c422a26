/**
 * DICOM decode benchmark, part of `npm run bench:inference` (or alone: `npx tsx scripts/bench-inference.ts --decode`):
 *
 *   1. decode time per encoding of one 3328×4096 12-bit mammogram (synthetic breast, noise), converted by DCMTK
 *      (JPEG Extended 12-bit, JPEG Lossless, JPEG-LS, RLE, Deflated) and GDCM (JPEG 2000): the codec alone on
 *      this thread, and the whole preview (PNG ≤ 1600 px) through the decode pool;
 *   2. hostile load (alone: `--decode --hostile`): a real server (production build, embedded database, ports 45000–45999 or DECODE_BENCH_PORT)
 *      gets 8 concurrent previews of a 100-megapixel RLE DICOM (≈ 3 MB), with the default budget (refused before
 *      decoding) and with DECODE_PIXEL_LIMIT_MP=120 (decoded, in the pool); peak RSS over idle (goal ≤ +300 MiB)
 *      and the worst /healthz latency meanwhile (goal ≤ 50 ms).
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { decode, shutdownDecodePool } from "../app/imaging/decode-pool.server";
import { decodeFrame } from "../app/imaging/dicom-decode";
import { rleBombDicom, writeDicom } from "../app/imaging/dicom-writer";

type Say = (line?: string) => void;
type Codecs = typeof import("dcmjs-codecs");

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const ms = (v: number) => `${v.toFixed(v < 10 ? 1 : 0)} ms`;
const MiB = 1024 * 1024;

export function mammogram(rows = 4096, columns = 3328): Uint8Array {
  const pixels = new Uint16Array(rows * columns);
  let s = 12345;
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < columns; x++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const breast = (x / 2800) ** 2 + ((y - 2048) / 1900) ** 2 < 1 ? 2400 - x * 0.4 + 200 * Math.sin(y / 40) * Math.cos(x / 55) : 120;
      pixels[y * columns + x] = Math.max(0, Math.min(4095, Math.round(breast + ((s >>> 16) % 60) - 30)));
    }
  return writeDicom({ rows, columns, pixels, bitsStored: 12, windowCenter: 1600, windowWidth: 2800 });
}

async function loadCodecs(): Promise<Codecs> {
  const mod = (await import("dcmjs-codecs")) as Codecs & { default?: Codecs };
  const lib = mod.default ?? mod;
  await lib.NativeCodecs.initializeAsync({ webAssemblyModulePathOrUrl: createRequire(import.meta.url).resolve("dcmjs-codecs/build/dcmjs-native-codecs.wasm") });
  return lib;
}

async function timed(run: () => unknown, runs: number): Promise<number> {
  await run(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await run();
    out.push(performance.now() - t);
  }
  return median(out);
}

async function perEncoding(say: Say, dir: string): Promise<void> {
  const tools = ["dcmcjpeg", "dcmcjpls", "dcmcrle", "dcmconv", "gdcmconv"];
  const missing = tools.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
  if (missing.length) {
    say(`skipped: decode time per encoding needs ${missing.join(", ")} (apt-get install -y dcmtk libgdcm-tools)`);
    return;
  }
  const source = path.join(dir, "mammo.dcm");
  writeFileSync(source, mammogram());
  const convert = (name: string, tool: string, args: string[]) => {
    const out = path.join(dir, `${name}.dcm`);
    execFileSync(tool, [...args, source, out], { stdio: "pipe" });
    return new Uint8Array(readFileSync(out));
  };
  const files: Array<[string, Uint8Array]> = [
    ["uncompressed (Explicit VR LE)", new Uint8Array(readFileSync(source))],
    ["JPEG Extended 12-bit (.4.51, dcmcjpeg +ee)", convert("ext", "dcmcjpeg", ["+ee"])],
    ["JPEG Lossless SV1 (.4.70, dcmcjpeg +e1)", convert("ll", "dcmcjpeg", ["+e1"])],
    ["JPEG-LS lossless (.4.80, dcmcjpls)", convert("jls", "dcmcjpls", ["+el"])],
    ["JPEG 2000 lossless (.4.90, gdcmconv --j2k)", convert("j2k", "gdcmconv", ["--j2k"])],
    ["RLE Lossless (.5, dcmcrle)", convert("rle", "dcmcrle", [])],
    ["Deflated Explicit VR LE (.1.99, dcmconv +td)", convert("dfl", "dcmconv", ["+td"])],
  ];
  const lib = await loadCodecs();
  const limit = 60_000_000;
  say("## DICOM decode per encoding — 3328×4096, 12 bits stored (13.6 MP)");
  say();
  say("Codec alone = parse + decompress + display table on this thread (median of 3 after a warm-up); preview = the");
  say("whole `?apercu=1` work through the decode pool (worker round trip, windowing, resize to ≤ 1600 px, PNG).");
  say();
  say("| encoding | file | codec alone | preview through the pool |");
  say("|---|---:|---:|---:|");
  for (const [name, bytes] of files) {
    const codec = await timed(() => decodeFrame(bytes, lib, limit), 3);
    const preview = await timed(() => decode("png", { bytes, contentType: "application/dicom", maxSide: 1600 }), 3);
    say(`| ${name} | ${(bytes.length / MiB).toFixed(1)} MiB | ${ms(codec)} | ${ms(preview)} |`);
  }
  say();
}

// ---- hostile load ----------------------------------------------------------------------------------------------

interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function startServer(env: NodeJS.ProcessEnv): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["server.mjs"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start:\n${output}`));
    }, 90_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /listening on (http:\/\/\S+)/.exec(output);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off("data", onData);
      child.stdout!.resume();
      child.stderr!.resume();
      resolve({
        url: m[1]!,
        pid: child.pid!,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once("exit", () => done());
            child.kill("SIGTERM");
          }),
      });
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
    child.once("exit", (code) => reject(new Error(`server exited (${code}):\n${output}`)));
  });
}

/** Resident memory of a process and its threads (the decode workers are threads of the server). */
function rss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function browserLogin(url: string, email: string): Promise<string> {
  const cookies = new Map<string, string>();
  const keep = (res: Response) => {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const i = pair!.indexOf("=");
      cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
  };
  const header = () => [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  const page = await fetch(`${url}/connexion`);
  keep(page);
  const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1]!;
  const res = await fetch(`${url}/connexion`, {
    method: "POST",
    headers: { Cookie: header(), "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ email, password: "nexus-demo-2026", csrf }),
    redirect: "manual",
  });
  keep(res);
  return header();
}

/** A throwaway PostgreSQL database next to DATABASE_URL's (the production setup), or undefined: embedded PGlite. */
async function throwawayDatabase(): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const admin = process.env.DATABASE_URL;
  if (!admin) return undefined;
  const name = `nexus_bench_decode_${process.pid}_${Date.now().toString(36)}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

async function hostileRun(say: Say, label: string, extraEnv: Record<string, string>, port: number): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-bench-decode-"));
  const database = await throwawayDatabase();
  const server = await startServer({
    ...process.env,
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: String(port),
    DATA_DIR: dataDir,
    DATABASE_URL: database?.url ?? "",
    NEXUS_DEMO: "1",
    NEXUS_ACCESS_LOG: "0",
    LOG_LEVEL: "error",
    NEXUS_MASTER_KEYS: `bench:${randomBytes(32).toString("base64")}`,
    ...extraEnv,
  });
  try {
    const url = server.url;
    const token = ((await (await fetch(`${url}/api/v1/tokens`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email: "doctor@demo.nexus", password: "nexus-demo-2026" }) })).json()) as { token: string }).token;
    const auth = { Authorization: `Bearer ${token}` };
    const patient = (await (await fetch(`${url}/api/v1/patients`, { method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify({ displayName: "Banc d'essai", consents: { care: true } }) })).json()) as { id: string };
    const upload = async (bytes: Uint8Array, name: string) => {
      const form = new FormData();
      form.append("file", new Blob([new Uint8Array(bytes)], { type: "application/dicom" }), name);
      const res = await fetch(`${url}/api/v1/patients/${patient.id}/images`, { method: "POST", headers: auth, body: form });
      if (res.status !== 201) throw new Error(`upload ${name}: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    };
    const bomb = rleBombDicom(10_000, 10_000);
    const bombId = await upload(bomb, "bomb.dcm");
    const smallId = await upload(writeDicom({ rows: 64, columns: 64, pixels: new Array(4096).fill(1000) }), "small.dcm");
    const cookie = await browserLogin(url, "doctor@demo.nexus");
    // Warm-up: a small preview starts a decode worker; then idle.
    await (await fetch(`${url}/images/${smallId}/fichier?apercu=1`, { headers: { Cookie: cookie } })).arrayBuffer();
    await new Promise((r) => setTimeout(r, 1500));
    // The machine's own scheduling delay: /healthz polled for 2 s with nothing else to do.
    let idleWorst = 0;
    for (const end = performance.now() + 2000; performance.now() < end; ) {
      const t = performance.now();
      await (await fetch(`${url}/healthz`)).arrayBuffer();
      idleWorst = Math.max(idleWorst, performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
    const idle = rss(server.pid);
    let peak = idle;
    let worstHealth = 0;
    let healthChecks = 0;
    let running = true;
    const sampler = (async () => {
      while (running) {
        peak = Math.max(peak, rss(server.pid));
        const t = performance.now();
        await (await fetch(`${url}/healthz`)).arrayBuffer();
        worstHealth = Math.max(worstHealth, performance.now() - t);
        healthChecks++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const res = await fetch(`${url}/images/${bombId}/fichier?apercu=1`, { headers: { Cookie: cookie } });
        const body = await res.arrayBuffer();
        const code = res.headers.get("Content-Type")?.includes("json") ? (JSON.parse(Buffer.from(body).toString()) as { error: { code: string } }).error.code : "png";
        return `${res.status} ${code}`;
      }),
    );
    const wall = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 300));
    running = false;
    await sampler;
    const counts = results.reduce<Record<string, number>>((acc, r) => ((acc[r] = (acc[r] ?? 0) + 1), acc), {});
    const answers = Object.entries(counts).map(([k, v]) => `${v} × ${k}`).join(", ");
    const after = rss(server.pid);
    say(
      `| ${label} | ${answers} | ${(wall / 1000).toFixed(1)} s | ${(idle / MiB).toFixed(0)} MiB | +${((peak - idle) / MiB).toFixed(0)} MiB ${peak - idle <= 300 * MiB ? "(met)" : "(NOT met)"} | +${((after - idle) / MiB).toFixed(0)} MiB | ${ms(worstHealth)} over ${healthChecks} checks ${worstHealth <= 50 ? "(met)" : "(NOT met)"} | ${ms(idleWorst)} |`,
    );
  } finally {
    await server.stop();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function decodeBenchmark(say: Say): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), "nexus-bench-dicom-"));
  try {
    if (!process.argv.includes("--hostile")) await perEncoding(say, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await shutdownDecodePool();
  }
  if (!existsSync("build/server/index.js") || !existsSync("build/server/decode-worker.mjs")) {
    say("skipped: hostile-load run needs the production build (npm run build)");
    return;
  }
  const port = Number(process.env.DECODE_BENCH_PORT ?? 45_080);
  say("## Hostile load — 8 concurrent previews of a 100-megapixel RLE DICOM (2.9 MiB), real server");
  say();
  say(`Load average at start: ${loadavg().map((l) => l.toFixed(1)).join(" / ")} on ${availableParallelism()} cores.`);
  say(`Server: production build, ${process.env.DATABASE_URL ? "PostgreSQL (throwaway database)" : "embedded PGlite (set DATABASE_URL for PostgreSQL)"}, local object store.`);
  say("Peak RSS of the server process (its decode worker threads included) over its idle RSS; /healthz polled every");
  say("20 ms meanwhile. Goals: ≤ +300 MiB, ≤ 50 ms.");
  say();
  say("| configuration | answers | all answered in | idle RSS | peak RSS over idle | RSS after | worst /healthz | worst /healthz, idle server (machine's own delay) |");
  say("|---|---|---:|---:|---:|---:|---:|---:|");
  await hostileRun(say, "default budget (DECODE_PIXEL_LIMIT_MP=60): refused before decoding", {}, port);
  await hostileRun(say, "budget raised (DECODE_PIXEL_LIMIT_MP=120, 1 worker, queue 16): decoded in the pool", { DECODE_PIXEL_LIMIT_MP: "120", DECODE_WORKERS: "1" }, port + 1);
  say();
}
