/**
 * npm run bench:http — Nexus against Debian's Orthanc 1.10 on this machine, same files, same load (issue 15).
 *
 * Starts Nexus (the production build, `node server.mjs` with WEB_CONCURRENCY=BENCH_WEB_CONCURRENCY — "auto", one worker
 * process per core, by default — on a throwaway PostgreSQL database and a local store in a
 * temporary directory; S3 instead when S3_* is configured) and Orthanc (`/usr/sbin/Orthanc` with a throwaway
 * configuration and storage in a temporary directory; nothing is installed: "skipped: no Orthanc" where it is
 * absent), both on loopback ports of BENCH_PORT_BASE (48100 by default), then drives both with Debian's `wrk`
 * and sequential/concurrent fetches:
 *   GET one 2 MiB DICOM image ×16 connections · JSON patient list ×16 · upload 45 real DICOM files (pydicom's
 *   corpus, python3-pydicom) sequentially · 8 × ~49 MiB DICOM uploads at once · read the 45 files back ·
 *   the HTML page /patients ×16 (Nexus only).
 * Every wrk run follows an unmeasured warm-up of BENCH_WARM_UP seconds (3). Prints req/s, p50/p95/p99, errors, CPU
 * ms per request (the server and its workers; for Nexus also every PostgreSQL process of the machine, from /proc: on a
 * shared 2-core machine the rate says how long a server waited for a core, the CPU how much work it did), peak RSS
 * (sampled from /proc every 50 ms), ratios Nexus/Orthanc and the
 * 1-minute load average beside each figure, then the per-stage breakdown of Nexus requests from its timing log
 * (NEXUS_TIMING=1: auth, policy, domain (database…), audit, decrypt, and the rest: render/stream).
 *
 *   npm run build && npm run bench:http                 BENCH_DURATION=10 (seconds per wrk run), BENCH_REPEAT=1 (runs per load measure, median reported)
 * The PostgreSQL server is BENCH_ADMIN_URL, else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres.
 * Starting and stopping both servers is shared with bench:dicomweb (scripts/bench-servers.ts).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import dicomParser from "dicom-parser";
import { dicom } from "../tests/helpers/images";
import { BenchHarness, childrenOf, cpuOf, load, MiB, postgresCpu, nexusPatient, nexusToken, post, runBench, withRss, DEMO_PASSWORD, type NexusServer, type RssSample, type Server } from "./bench-servers";

const WRK = "/usr/bin/wrk";
const STRACE = "/usr/bin/strace";
const PYDICOM_DATA = "/usr/lib/python3/dist-packages/pydicom/data";
const PORT_BASE = Number(process.env.BENCH_PORT_BASE ?? 48100);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = 16;
/** BENCH_ONLY=get,json,upload,read,big,page,syscalls runs only those phases (profiling one of them); all by default. */
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(",").map((s) => s.trim())) : null;
const wanted = (phase: string) => ONLY === null || ONLY.has(phase);

if (!existsSync(WRK)) {
  console.log("skipped: no wrk (Debian package wrk)");
  process.exit(0);
}
const withOrthanc = BenchHarness.hasOrthanc;
if (!withOrthanc) console.log("skipped: no Orthanc (Debian package orthanc) — Nexus alone");

// ---- load ----------------------------------------------------------------------------------------------------

interface LoadResult {
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  requests: number;
  load: number;
  rss: RssSample;
  /** CPU ms per request of the server (with its worker processes) and of PostgreSQL, during the measured run. */
  cpuMs: number;
  pgMs: number;
}

let WRK_SCRIPT = "";
/** wrk's report script, in the harness's temporary directory. */
function writeWrkScript(dir: string) {
  WRK_SCRIPT = path.join(dir, "report.lua");
  writeFileSync(
    WRK_SCRIPT,
    `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %f %f %f %f %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout))
end
`,
  );
}

const WARM_UP = Number(process.env.BENCH_WARM_UP ?? 3);

function runWrk(args: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = spawn(WRK, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk failed:\n${out}`))));
  });
}

/** wrk's arguments naming the request: its headers, then the URL. */
function wrkTarget(server: Server, pathName: string, headers: Record<string, string>): string[] {
  return [...Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]), server.base + pathName];
}

/** A warm-up of BENCH_WARM_UP seconds (JIT, connection pools, caches; not counted), then the measured run. */
async function wrk(server: Server, pathName: string, headers: Record<string, string>): Promise<LoadResult> {
  const target = wrkTarget(server, pathName, headers);
  if (WARM_UP > 0) await runWrk(["-t2", `-c${CONNECTIONS}`, `-d${WARM_UP}s`, ...target]);
  const args = ["-t2", `-c${CONNECTIONS}`, `-d${DURATION}s`, "-s", WRK_SCRIPT, ...target];
  const cpu0 = cpuOf(server.pid);
  const pg0 = postgresCpu();
  const { value, before, peak } = await withRss(server.pid, () => runWrk(args));
  const cpu = cpuOf(server.pid) - cpu0;
  const pgCpu = postgresCpu() - pg0;
  const m = /BENCH (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(value);
  if (!m) throw new Error(`no wrk report:\n${value}`);
  const [, requests, seconds, p50, p95, p99, errors] = m.map(Number) as number[];
  const perRequest = (s: number) => (s * 1000) / Math.max(1, requests!);
  return {
    rps: requests! / seconds!,
    p50: p50!,
    p95: p95!,
    p99: p99!,
    errors: errors!,
    requests: requests!,
    load: load(),
    rss: { before, peak },
    cpuMs: perRequest(cpu),
    pgMs: perRequest(pgCpu),
  };
}

/** BENCH_REPEAT=n: each load measure n times, Nexus and Orthanc alternating; the median run is reported, with every run's rate. */
const REPEAT = Math.max(1, Math.floor(Number(process.env.BENCH_REPEAT ?? 1)));

interface Repeated extends LoadResult {
  /** Every run's rate, in run order. */
  runs: number[];
}

function median(results: LoadResult[]): Repeated {
  const sorted = [...results].sort((a, b) => a.rps - b.rps);
  return { ...sorted[(sorted.length - 1) >> 1]!, runs: results.map((r) => r.rps) };
}

/** Nexus's and Orthanc's measure, BENCH_REPEAT times each, alternating (so a drift of the machine hits both alike). */
async function repeated(nexus: () => Promise<LoadResult>, orthanc: (() => Promise<LoadResult>) | null) {
  const n: LoadResult[] = [];
  const o: LoadResult[] = [];
  for (let i = 0; i < REPEAT; i++) {
    n.push(await nexus());
    if (orthanc) o.push(await orthanc());
  }
  return { n: median(n), o: orthanc ? median(o) : null };
}

interface BatchResult {
  seconds: number;
  errors: number;
  /** Why the failed ones failed (status and code), counted. */
  failures: Record<string, number>;
  load: number;
  rss: RssSample;
  ids: string[];
}

async function batch(server: Server, items: (() => Promise<string | null>)[], concurrent: boolean): Promise<BatchResult> {
  const ids: string[] = [];
  let errors = 0;
  const failures: Record<string, number> = {};
  const t0 = performance.now();
  const { before, peak } = await withRss(server.pid, async () => {
    const one = async (f: () => Promise<string | null>) => {
      const id = await f().catch((err: Error) => {
        // fetch's own failures carry the reason (ECONNRESET, EPIPE, …) in `cause`.
        const cause = (err.cause as { code?: string } | undefined)?.code;
        const why = cause ? `${err.message}: ${cause}` : err.message;
        failures[why] = (failures[why] ?? 0) + 1;
        return null;
      });
      if (id === null) errors++;
      else ids.push(id);
    };
    if (concurrent) await Promise.all(items.map(one));
    else for (const f of items) await one(f);
  });
  return { seconds: (performance.now() - t0) / 1000, errors, failures, load: load(), rss: { before, peak }, ids };
}

// ---- system calls --------------------------------------------------------------------------------------------

interface SyscallCount {
  requests: number;
  /** Calls per request, by system call, every thread and worker process of the server counted. */
  perRequest: Map<string, number>;
}

/**
 * System calls per request (`strace -f -c` attached to the server and its workers during a short `wrk` run of 4
 * connections). Unlike rates and CPU time, a count does not move with what else the machine runs, and on these virtual
 * machines every call is dear (README, Performance). Null without strace.
 */
async function syscalls(server: Server, pathName: string, headers: Record<string, string>, dir: string): Promise<SyscallCount | null> {
  if (!existsSync(STRACE) || server.pid === undefined) return null;
  const target = wrkTarget(server, pathName, headers);
  // Warm first (code loaded and compiled, pools filled): the count is of the steady state.
  await runWrk(["-t1", "-c4", `-d${Math.max(2, WARM_UP)}s`, ...target]);
  const out = path.join(dir, `strace-${server.pid}-${Date.now()}.txt`);
  const pids = [server.pid, ...childrenOf(server.pid)].flatMap((p) => ["-p", String(p)]);
  const tracer = spawn(STRACE, ["-f", "-c", "-o", out, ...pids], { stdio: ["ignore", "ignore", "pipe"] });
  const exited = new Promise<void>((resolve) => tracer.on("exit", () => resolve()));
  await new Promise((resolve) => setTimeout(resolve, 500)); // attached to every thread
  const report = await runWrk(["-t1", "-c4", "-d3s", "-s", WRK_SCRIPT, ...target]);
  tracer.kill("SIGINT"); // strace detaches and writes its summary
  await exited;
  if (!existsSync(out)) return null; // strace could not attach (no ptrace here)
  const requests = Number(/BENCH (\d+)/.exec(report)?.[1] ?? 0);
  const perRequest = new Map<string, number>();
  for (const line of readFileSync(out, "utf8").split("\n")) {
    // "% time     seconds  usecs/call     calls    errors syscall": the errors column may be empty.
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
    if (m && m[2] !== "total") perRequest.set(m[2]!, Number(m[1]) / Math.max(1, requests));
  }
  return { requests, perRequest };
}

// ---- files ---------------------------------------------------------------------------------------------------

const BENCH_PATIENT = "Patiente Banc";

/** The header's PatientName as a display name ("DOE^JANE" → "DOE JANE"), "" when absent or unreadable. */
function headerName(bytes: Buffer): string {
  try {
    const parsed = dicomParser.parseDicom(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), { untilTag: "x00100020" });
    return (parsed.string("x00100010") ?? "").replace(/[\^=]+/g, " ").replace(/\s+/g, " ").trim();
  } catch {
    return "";
  }
}

/** Real DICOM files written by other tools: pydicom's test corpus (python3-pydicom). */
function corpusFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.dcm$/i.test(e.name) && statSync(p).size > 1024) found.push(p);
    }
  };
  if (existsSync(PYDICOM_DATA)) walk(PYDICOM_DATA);
  return found.sort((a, b) => statSync(b).size - statSync(a).size);
}

/** A copy of a generated DICOM file with another SOP instance UID (same length), so that no store de-duplicates. */
function variant(file: Buffer, uid: string, n: number): Buffer {
  const copy = Buffer.from(file);
  const suffix = String(n).padStart(3, "0");
  const replaced = uid.slice(0, -3) + suffix;
  for (let at = copy.indexOf(uid); at >= 0; at = copy.indexOf(uid, at + 1)) copy.write(replaced, at, "latin1");
  return copy;
}

/** Explicit VR little-endian UI element. */
function uiElement(element: number, value: string): Buffer {
  const text = Buffer.from(value.length % 2 ? `${value}\0` : value, "latin1");
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0x0020, 0);
  head.writeUInt16LE(element, 2);
  head.write("UI", 4, "latin1");
  head.writeUInt16LE(text.length, 6);
  return Buffer.concat([head, text]);
}

/**
 * The project's generated mammogram (tests/helpers/images.ts) with a Study and a Series Instance UID, which Orthanc
 * requires to index an instance; inserted before Image Laterality (0020,0062) to keep the tags in order.
 */
function benchDicom(rows: number, columns: number): Buffer {
  const file = dicom({ rows, columns, patientName: "BANC^PATIENTE" });
  const at = file.indexOf(Buffer.from([0x20, 0x00, 0x62, 0x00, 0x43, 0x53]));
  const root = "1.2.826.0.1.3680043.10.999";
  const stamp = Date.now();
  return Buffer.concat([file.subarray(0, at), uiElement(0x000d, `${root}.1.${stamp}`), uiElement(0x000e, `${root}.2.${stamp}`), file.subarray(at)]);
}

function uidOf(file: Buffer): string {
  const m = /1\.2\.826\.0\.1\.3680043\.10\.999\.\d+/.exec(file.toString("latin1"));
  return m![0];
}

// ---- the run -------------------------------------------------------------------------------------------------

async function main(harness: BenchHarness) {
  writeWrkScript(harness.work);
  const nexus: NexusServer = await harness.startNexus({ port: PORT_BASE, timing: true });
  const orthanc: Server | null = withOrthanc ? await harness.startOrthanc({ httpPort: PORT_BASE + 1, dicomPort: PORT_BASE + 2 }) : null;
  const timingLines = nexus.stdout;
  console.log(`Nexus ${nexus.base} (PostgreSQL, ${process.env.S3_HOST || process.env.S3_ENDPOINT ? "S3" : "local store"}, ${nexus.processes}); Orthanc ${orthanc?.base ?? "—"}; wrk ${CONNECTIONS} connections × ${DURATION} s`);

  // Nexus: a doctor's token, a patient, a browser session.
  const token = await nexusToken(nexus.base);
  const auth = { Authorization: `Bearer ${token}` };
  // Nexus checks every DICOM header against the patient's record (409 identity_mismatch): each file goes to a
  // patient whose name is the header's, created once per name (Orthanc files them by the same header).
  const patients = new Map<string, Promise<string>>();
  const patientFor = (bytes: Buffer): Promise<string> => {
    const displayName = headerName(bytes) || BENCH_PATIENT;
    let id = patients.get(displayName);
    if (!id) patients.set(displayName, (id = nexusPatient(nexus.base, token, { displayName, consents: { care: true, ai_analysis: true } })));
    return id;
  };
  const nexusUpload = (bytes: Buffer, name: string) => async () => {
    const patientId = await patientFor(bytes);
    const boundary = `----nexus-bench-${randomBytes(8).toString("hex")}`;
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/dicom\r\n\r\n`,
    );
    const res = await post(`${nexus.base}/api/v1/patients/${patientId}/images`, { ...auth, "Content-Type": `multipart/form-data; boundary=${boundary}` }, [
      head,
      bytes,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const body = (() => {
      try {
        return JSON.parse(res.text) as { id?: string; error?: { code?: string } };
      } catch {
        return {} as { id?: string; error?: { code?: string } };
      }
    })();
    if (res.status !== 201 || !body.id) throw new Error(`${res.status} ${body.error?.code ?? ""}`.trim());
    return body.id;
  };
  const orthancUpload = (bytes: Buffer) => async () => {
    const res = await post(`${orthanc!.base}/instances`, { "Content-Type": "application/dicom" }, [bytes]);
    const body = (() => {
      try {
        return JSON.parse(res.text) as { ID?: string };
      } catch {
        return {} as { ID?: string };
      }
    })();
    if (res.status !== 200 || !body.ID) throw new Error(String(res.status));
    return body.ID;
  };
  const readBack = (url: string, headers: Record<string, string>) => async () => {
    const res = await fetch(url, { headers });
    const bytes = await res.arrayBuffer();
    if (!res.ok || bytes.byteLength === 0) throw new Error(String(res.status));
    return url;
  };

  // Browser session for /patients.
  const loginPage = await fetch(`${nexus.base}/connexion`);
  const csrf = /name="csrf" value="([^"]+)"/.exec(await loginPage.text())![1]!;
  const cookies = loginPage.headers.getSetCookie().map((c) => c.split(";")[0]);
  const login = await fetch(`${nexus.base}/connexion`, {
    method: "POST",
    redirect: "manual",
    headers: { Cookie: cookies.join("; "), "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ email: "doctor@demo.nexus", password: DEMO_PASSWORD, csrf }),
  });
  const session = [...cookies, ...login.headers.getSetCookie().map((c) => c.split(";")[0])].join("; ");

  // The large files are made first: generating them takes seconds, longer than the servers keep an idle connection
  // open, and fetch would then write a 49 MiB body into a connection the server had closed (EPIPE).
  // (Only when that phase runs: BENCH_ONLY may leave it out.)
  const big = wanted("big") ? benchDicom(4096, 6300) : null; // 49.2 MiB, under the 50 MiB upload limit
  const bigUid = big ? uidOf(big) : "";
  const bigs = big ? Array.from({ length: 8 }, (_, i) => variant(big, bigUid, i)) : [];

  // The 2 MiB image, on both.
  const image = benchDicom(1024, 1024);
  const imageId = await nexusUpload(image, "image-2mib.dcm")();
  const orthancImage = orthanc ? await orthancUpload(image)().catch(() => null) : null;
  if (!imageId) throw new Error("Nexus refused the 2 MiB DICOM image");

  const rows: { work: string; nexus: string; orthanc: string; ratio: string }[] = [];
  const mb = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
  const runsOf = (r: Repeated) => (r.runs.length > 1 ? ` (median of ${r.runs.map((x) => Math.round(x).toLocaleString("en")).join(" · ")})` : "");
  const loadLine = (r: Repeated) =>
    `${Math.round(r.rps).toLocaleString("en")} req/s${runsOf(r)}; p50/p95/p99 ${r.p50.toFixed(1)}/${r.p95.toFixed(1)}/${r.p99.toFixed(1)} ms; ${r.errors} err; CPU ${r.cpuMs.toFixed(2)} ms/req${r.pgMs >= 0.01 ? ` + PostgreSQL ${r.pgMs.toFixed(2)}` : ""}; peak RSS ${mb(r.rss.peak)}; load ${r.load.toFixed(2)}`;
  const batchLine = (r: BatchResult, n: number) =>
    `${r.seconds.toFixed(2)} s; ${n - r.errors}/${n} ok${r.errors ? ` (${Object.entries(r.failures).map(([k, v]) => `${v}× ${k}`).join(", ")})` : ""}; RSS ${mb(r.rss.before)} → peak ${mb(r.rss.peak)} (+${mb(r.rss.peak - r.rss.before)}); load ${r.load.toFixed(2)}`;
  const phases: { name: string; from: number; to: number }[] = [];
  const mark = (name: string, fn: () => Promise<void>, phase: string) => async () => {
    if (!wanted(phase)) return;
    const from = timingLines().length;
    await fn();
    await new Promise((resolve) => setTimeout(resolve, 300)); // access-log lines are written in batches within 100 ms
    phases.push({ name, from, to: timingLines().length });
  };

  await mark("GET 2 MiB image", async () => {
    const { n, o } = await repeated(() => wrk(nexus, `/api/v1/images/${imageId}`, auth), orthanc ? () => wrk(orthanc, `/instances/${orthancImage}/file`, {}) : null);
    rows.push({ work: "GET one 2 MiB image, 16 connections", nexus: loadLine(n), orthanc: o ? loadLine(o) : "–", ratio: o ? `${(n.rps / o.rps).toFixed(2)}×` : "–" });
  }, "get")();

  await mark("JSON patient list", async () => {
    const { n, o } = await repeated(() => wrk(nexus, "/api/v1/patients", auth), orthanc ? () => wrk(orthanc, "/patients", {}) : null);
    rows.push({ work: "JSON patient list, 16 connections", nexus: loadLine(n), orthanc: o ? loadLine(o) : "–", ratio: o ? `${(n.rps / o.rps).toFixed(3)}×` : "–" });
  }, "json")();

  // 45 real DICOM files: the corpus files Nexus accepts (tried once, as warm-up), then both, sequentially.
  const corpus = corpusFiles();
  const accepted: Buffer[] = [];
  for (const file of wanted("upload") || wanted("read") ? corpus : []) {
    if (accepted.length >= 45) break;
    const bytes = readFileSync(file);
    if (await nexusUpload(bytes, path.basename(file))().catch(() => null)) accepted.push(bytes);
  }
  const totalBytes = accepted.reduce((s, b) => s + b.length, 0);
  let nexusIds: string[] = [];
  let orthancIds: string[] = [];
  await mark("upload DICOM files", async () => {
    const n = await batch(nexus, accepted.map((b, i) => nexusUpload(b, `corpus-${i}.dcm`)), false);
    const o = orthanc ? await batch(orthanc, accepted.map((b) => orthancUpload(b)), false) : null;
    nexusIds = n.ids;
    orthancIds = o?.ids ?? [];
    rows.push({
      work: `upload ${accepted.length} real DICOM files (${(totalBytes / 1e6).toFixed(1)} MB), sequential`,
      nexus: batchLine(n, accepted.length),
      orthanc: o ? batchLine(o, accepted.length) : "–",
      ratio: o ? `${(n.seconds / o.seconds).toFixed(2)}× the time` : "–",
    });
  }, "upload")();

  await mark("read files back", async () => {
    const n = await batch(nexus, nexusIds.map((id) => readBack(`${nexus.base}/api/v1/images/${id}`, auth)), false);
    const o = orthanc ? await batch(orthanc, orthancIds.map((id) => readBack(`${orthanc.base}/instances/${id}/file`, {})), false) : null;
    rows.push({
      work: `read the ${nexusIds.length} files back, sequential`,
      nexus: batchLine(n, nexusIds.length),
      orthanc: o ? batchLine(o, orthancIds.length) : "–",
      ratio: o ? `${(n.seconds / o.seconds).toFixed(2)}× the time` : "–",
    });
  }, "read")();

  await mark("8 × 49 MiB uploads", async () => {
    const n = await batch(nexus, bigs.map((b, i) => nexusUpload(b, `big-${i}.dcm`)), true);
    const o = orthanc ? await batch(orthanc, bigs.map((b) => orthancUpload(b)), true) : null;
    rows.push({
      work: `8 × ${(bigs[0]!.length / MiB).toFixed(1)} MiB uploads at once`,
      nexus: batchLine(n, 8),
      orthanc: o ? batchLine(o, 8) : "–",
      ratio: o ? `${(n.seconds / o.seconds).toFixed(2)}× the time` : "–",
    });
  }, "big")();

  await mark("HTML page /patients", async () => {
    const { n } = await repeated(() => wrk(nexus, "/patients", { Cookie: session }), null);
    rows.push({ work: "HTML page /patients, 16 connections", nexus: loadLine(n), orthanc: "–", ratio: "–" });
  }, "page")();

  const counts: { work: string; server: string; count: SyscallCount }[] = [];
  if (wanted("syscalls")) {
    const count = async (work: string, name: string, server: Server | null, pathName: string, headers: Record<string, string>) => {
      const c = server ? await syscalls(server, pathName, headers, harness.work) : null;
      if (c) counts.push({ work, server: name, count: c });
    };
    await count("GET one 2 MiB image", "Nexus", nexus, `/api/v1/images/${imageId}`, auth);
    if (orthancImage) await count("GET one 2 MiB image", "Orthanc", orthanc, `/instances/${orthancImage}/file`, {});
    await count("JSON patient list", "Nexus", nexus, "/api/v1/patients", auth);
    if (orthanc) await count("JSON patient list", "Orthanc", orthanc, "/patients", {});
    await count("HTML page /patients", "Nexus", nexus, "/patients", { Cookie: session });
  }

  console.log(`\n### Nexus / Orthanc (${new Date().toISOString()}, ${process.env.NODE_ENV ?? "production"} build, 1-min load average beside each figure)\n`);
  console.log("| work | Nexus | Orthanc | Nexus / Orthanc |");
  console.log("|---|---|---|---:|");
  for (const r of rows) console.log(`| ${r.work} | ${r.nexus} | ${r.orthanc} | ${r.ratio} |`);

  // Stage breakdown from the timing log.
  const log = timingLines();
  console.log("\n### Where a Nexus request's time goes (mean ms per request, from NEXUS_TIMING=1)\n");
  console.log("| phase | requests | total | auth | policy | domain (database…) | of which store | audit | decrypt | render/stream (rest) |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const p of phases) {
    const sums = { total: 0, auth: 0, policy: 0, domain: 0, store: 0, audit: 0, decrypt: 0 };
    let n = 0;
    for (const line of log.slice(p.from, p.to).split("\n")) {
      if (!line.includes('"timing"')) continue;
      try {
        const entry = JSON.parse(line) as { ms: number; timing: Partial<Record<keyof typeof sums, number>> };
        n++;
        sums.total += entry.ms;
        for (const k of ["auth", "policy", "domain", "store", "audit", "decrypt"] as const) sums[k] += entry.timing[k] ?? 0;
      } catch {
        /* a partial line at a chunk boundary */
      }
    }
    if (n === 0) continue;
    const mean = (v: number) => (v / n).toFixed(2);
    const rest = sums.total - sums.auth - sums.policy - sums.domain - sums.audit - sums.decrypt;
    console.log(`| ${p.name} | ${n.toLocaleString("en")} | ${mean(sums.total)} | ${mean(sums.auth)} | ${mean(sums.policy)} | ${mean(sums.domain)} | ${mean(sums.store)} | ${mean(sums.audit)} | ${mean(sums.decrypt)} | ${mean(Math.max(0, rest))} |`);
  }
  if (counts.length > 0) {
    console.log("\n### System calls per request (strace -f -c, every thread and worker process; wrk, 4 connections, 3 s)\n");
    console.log("| work | server | requests | all | most frequent |");
    console.log("|---|---|---:|---:|---|");
    for (const { work, server, count } of counts) {
      const all = [...count.perRequest.values()].reduce((a, b) => a + b, 0);
      const top = [...count.perRequest].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ");
      console.log(`| ${work} | ${server} | ${count.requests.toLocaleString("en")} | ${all.toFixed(1)} | ${top} |`);
    }
  } else if (wanted("syscalls")) console.log("\nskipped: no strace (Debian package strace) — no system call counts");
  console.log("\n(store — an upload's encryption and durable object write — is part of domain; decrypt runs inside domain for the first read of an image and while streaming afterwards; stages of concurrent requests overlap.)");
}

await runBench("http", main);
