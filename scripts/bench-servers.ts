/**
 * What the side-by-side benchmarks share (`bench:http`, `bench:dicomweb`): starting Nexus (the production build,
 * `node server.mjs`, on a throwaway PostgreSQL database and a local store in a temporary directory; S3 instead when
 * S3_* is configured) and Debian's Orthanc (`/usr/sbin/Orthanc`, a throwaway configuration and storage in the same
 * temporary directory; nothing is installed), sampling a server's RSS from /proc, and tearing everything down after.
 *
 * The PostgreSQL server is BENCH_ADMIN_URL, else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres.
 * BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") is passed to Nexus's node: profiles are written when
 * the server exits (it exits on SIGTERM, which the harness sends at the end). BENCH_NEXUS_LOG=<file> keeps what Nexus
 * printed on stdout (e.g. with BENCH_NODE_ARGS=--trace-gc).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";

export const ORTHANC = "/usr/sbin/Orthanc";
export const ORTHANC_DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
export const MiB = 1024 * 1024;
export const DEMO_PASSWORD = process.env.NEXUS_DEMO_PASSWORD ?? "nexus-demo-2026";

/** The 1-minute load average, printed beside every figure (the machine is shared). */
export const load = () => loadavg()[0]!;

/** A process's children (Nexus's worker processes under WEB_CONCURRENCY). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Resident memory of a process and of its children. */
export function rssOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return (m ? Number(m[1]) * 1024 : 0) + childrenOf(pid).reduce((sum, child) => sum + rssOf(child), 0);
  } catch {
    return 0;
  }
}

/** USER_HZ: 100 on Linux x86-64. */
const CLOCK_TICKS = 100;

/** A process's name and its CPU seconds so far (user + system, all its threads), from its /proc/<pid>/stat. */
function statOf(pid: number | string): { name: string; cpu: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), cpu: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS };
}

/**
 * CPU seconds a process has used so far, all its threads (user + system, /proc/<pid>/stat): under a shared machine's
 * load, wall time says how long a server waited for a CPU; this says how much work it did.
 */
export function cpuOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    return statOf(pid).cpu + childrenOf(pid).reduce((sum, child) => sum + cpuOf(child), 0);
  } catch {
    return 0;
  }
}

/** CPU seconds used so far by every PostgreSQL process of the machine (the server and its backends, /proc). */
export function postgresCpu(): number {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { name, cpu } = statOf(entry);
      if (name === "postgres") total += cpu;
    } catch {
      /* the process ended meanwhile */
    }
  }
  return total;
}

export interface RssSample {
  before: number;
  peak: number;
}

/** Samples the RSS of a process every 50 ms while `fn` runs: the peak and the value before. */
export async function withRss<T>(pid: number | undefined, fn: () => Promise<T>): Promise<{ value: T } & RssSample> {
  const before = rssOf(pid);
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 50);
  try {
    const value = await fn();
    return { value, before, peak: Math.max(peak, rssOf(pid)) };
  } finally {
    clearInterval(timer);
  }
}

async function waitFor(url: string, child: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited:\n${output()}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer in 60 s:\n${output()}`);
}

export interface Server {
  base: string;
  pid: number | undefined;
  output(): string;
}

export interface NexusServer extends Server {
  /** Everything Nexus printed on stdout (the timing log with NEXUS_TIMING=1). */
  stdout(): string;
  /** How many processes serve, e.g. "WEB_CONCURRENCY=auto: 2 worker processes". */
  processes: string;
}

/**
 * POSTs `parts` on a connection of its own (no keep-alive pool: a pooled connection left idle between phases may
 * have been closed by the server, and a large body written into it fails with EPIPE — an artefact of the client).
 * Each part is written when the socket has taken the previous one (backpressure: the client holds no copy).
 */
export function post(url: string, headers: Record<string, string>, parts: Uint8Array[]): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const length = parts.reduce((n, p) => n + p.length, 0);
    const req = request(url, { method: "POST", agent: false, headers: { ...headers, "Content-Length": String(length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    let i = 0;
    const writeMore = () => {
      while (i < parts.length) {
        if (!req.write(parts[i++]!)) return void req.once("drain", writeMore);
      }
      req.end();
    };
    writeMore();
  });
}

/**
 * GETs `url` with Debian's curl (a client in C: its own cost stays out of the figure, whatever the bench process holds
 * in memory), the body thrown away; with Node's http client where curl is absent.
 */
export async function getCounting(url: string, headers: Record<string, string>): Promise<{ status: number; bytes: number; contentType: string }> {
  if (!existsSync(CURL)) return getCountingNode(url, headers);
  const args = ["-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{content_type}"];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  args.push(url);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(CURL, args, { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (c: Buffer) => (text += c.toString()));
    child.stderr.on("data", (c: Buffer) => (text += c.toString()));
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve(text) : reject(new Error(`curl exited ${code}: ${text}`))));
  });
  const [status, bytes, ...type] = out.trim().split(" ");
  return { status: Number(status), bytes: Number(bytes), contentType: type.join(" ") };
}

const CURL = "/usr/bin/curl";

/** GETs `url` on a connection of its own and counts the body's bytes without keeping them. */
function getCountingNode(url: string, headers: Record<string, string>): Promise<{ status: number; bytes: number; contentType: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", agent: false, headers }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => (bytes += c.length));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes, contentType: String(res.headers["content-type"] ?? "") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** Nexus's worker processes (cluster.mjs): one per core by default, as docker compose runs it. */
const WORKERS = process.env.BENCH_WEB_CONCURRENCY ?? "auto";

export interface NexusOptions {
  port: number;
  /** Extra environment (e.g. DICOM_PORT). */
  env?: Record<string, string>;
  /** NEXUS_TIMING=1 and the access log (bench:http's per-stage breakdown). */
  timing?: boolean;
}

export interface OrthancOptions {
  httpPort: number;
  dicomPort: number;
  /** Load Debian's DICOMweb plugin (orthanc-dicomweb) at /dicom-web/. */
  dicomweb?: boolean;
  /** Accept C-STORE (AE title ORTHANC, any calling AE title). */
  dicomServer?: boolean;
}

/** The PostgreSQL server the benchmarks create their throwaway databases on. */
export const ADMIN_URL = process.env.BENCH_ADMIN_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** Runs one statement on ADMIN_URL (create or drop a database), on a connection of its own. */
export async function adminStatement(statement: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(statement);
  } finally {
    await c.end();
  }
}

/** The connection string of database `name` on ADMIN_URL's server. */
export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** One benchmark's processes, database and temporary directory; `close()` removes them all. */
export class BenchHarness {
  readonly work: string;
  private readonly children: ChildProcess[] = [];
  private readonly cleanups: (() => Promise<void> | void)[] = [];

  constructor(readonly name: string) {
    this.work = mkdtempSync(path.join(tmpdir(), `nexus-bench-${name}-`));
    this.cleanups.push(() => rmSync(this.work, { recursive: true, force: true }));
  }

  static get hasOrthanc(): boolean {
    return existsSync(ORTHANC);
  }



  private track(child: ChildProcess, limit = 100_000) {
    this.children.push(child);
    let out = "";
    let stdout = "";
    child.stdout!.on("data", (c: Buffer) => {
      const text = c.toString();
      if (out.length < limit) out += text;
      stdout += text;
    });
    child.stderr!.on("data", (c: Buffer) => (out.length < limit ? (out += c.toString()) : undefined));
    return { output: () => out, stdout: () => stdout };
  }

  async startNexus(o: NexusOptions): Promise<NexusServer> {
    if (!existsSync("build/server/index.js")) throw new Error("No production build: run `npm run build` first.");
    const dbName = `nexus_bench_${this.name.replace(/\W/g, "_")}_${Date.now().toString(36)}`;
    await adminStatement(`create database "${dbName}"`);
    this.cleanups.push(() => adminStatement(`drop database if exists "${dbName}" with (force)`));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(o.port),
      HOST: "127.0.0.1",
      DATABASE_URL: databaseUrl(dbName),
      NEXUS_DEMO: "1",
      DATA_DIR: path.join(this.work, "nexus"),
      NEXUS_MASTER_KEYS: `bench:${randomBytes(32).toString("base64")}`,
      NEXUS_TIMING: o.timing ? "1" : "0",
      NEXUS_ACCESS_LOG: o.timing ? "1" : "0",
      LOGIN_MAX_FAILURES: "1000",
      WEB_CONCURRENCY: WORKERS,
      ...o.env,
    };
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, "server.mjs"], { env, stdio: ["ignore", "pipe", "pipe"] });
    const { output, stdout } = this.track(child);
    const base = `http://127.0.0.1:${o.port}`;
    await waitFor(`${base}/healthz`, child, output);
    // The leader answers first; the other workers start once it listens.
    const expected = WORKERS === "auto" ? availableParallelism() : Number(WORKERS) || 1;
    for (let i = 0; i < 300 && expected > 1 && childrenOf(child.pid!).length < expected; i++) await new Promise((r) => setTimeout(r, 100));
    const workers = childrenOf(child.pid!).length;
    const server = { base, pid: child.pid, output, stdout, processes: `WEB_CONCURRENCY=${WORKERS}: ${workers > 0 ? `${workers} worker processes` : "one process"}` };
    this.keepLog(server);
    return server;
  }

  async startOrthanc(o: OrthancOptions): Promise<Server> {
    const dir = path.join(this.work, `orthanc-${o.httpPort}`);
    const config = path.join(this.work, `orthanc-${o.httpPort}.json`);
    const dicomweb = o.dicomweb && existsSync(ORTHANC_DICOMWEB_PLUGIN);
    if (o.dicomweb && !dicomweb) throw new Error(`no DICOMweb plugin for Orthanc (${ORTHANC_DICOMWEB_PLUGIN}, Debian package orthanc-dicomweb)`);
    writeFileSync(
      config,
      JSON.stringify({
        Name: "bench",
        StorageDirectory: dir,
        IndexDirectory: dir,
        HttpPort: o.httpPort,
        DicomPort: o.dicomPort,
        DicomAet: "ORTHANC",
        DicomCheckCalledAet: false,
        RemoteAccessAllowed: false,
        AuthenticationEnabled: false,
        DicomServerEnabled: Boolean(o.dicomServer),
        HttpBindAddress: "127.0.0.1",
        Plugins: dicomweb ? [ORTHANC_DICOMWEB_PLUGIN] : [],
        DicomWeb: { Enable: Boolean(dicomweb), Root: "/dicom-web/" },
        StorageCompression: false,
        HttpThreadsCount: 50,
        // Orthanc keeps recently read or written files in RAM (128 MB by default since 1.10); BENCH_ORTHANC_STORAGE_CACHE_MB=0 turns it off.
        MaximumStorageCacheSize: Number(process.env.BENCH_ORTHANC_STORAGE_CACHE_MB ?? 128),
      }),
    );
    const child = spawn(ORTHANC, [config], { stdio: ["ignore", "pipe", "pipe"] });
    const { output } = this.track(child);
    const base = `http://127.0.0.1:${o.httpPort}`;
    await waitFor(`${base}/system`, child, output);
    return { base, pid: child.pid, output };
  }

  /** Stops the servers (SIGTERM, then SIGKILL after 5 s), drops the database, removes the temporary directory. */
  async close(): Promise<void> {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = new Promise((r) => c.once("exit", r));
        c.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      }
    }
    for (const f of this.cleanups.reverse()) await Promise.resolve(f()).catch(() => {});
  }

  /** What Nexus printed (BENCH_NEXUS_LOG=<file>: kept after the run, e.g. with BENCH_NODE_ARGS=--trace-gc). */
  private keepLog(server: NexusServer) {
    const file = process.env.BENCH_NEXUS_LOG;
    if (file) this.cleanups.unshift(() => writeFileSync(file, server.stdout()));
  }
}

/** Runs a benchmark's body with a harness and always tears it down; exits 1 on failure. */
export async function runBench(name: string, body: (harness: BenchHarness) => Promise<void>): Promise<never> {
  const harness = new BenchHarness(name);
  let failed = false;
  try {
    await body(harness);
  } catch (err) {
    failed = true;
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  } finally {
    await harness.close();
  }
  process.exit(failed ? 1 : 0);
}

/** A bearer token for a demo account (the demo seeds doctor@demo.nexus and admin@demo.nexus). */
export async function nexusToken(base: string, email = "doctor@demo.nexus"): Promise<string> {
  const res = await fetch(`${base}/api/v1/tokens`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password: DEMO_PASSWORD }),
  });
  const body = (await res.json()) as { token?: string };
  if (!body.token) throw new Error(`token for ${email}: ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

/** Creates a patient in Nexus; returns its id. */
export async function nexusPatient(base: string, token: string, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${base}/api/v1/patients`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const created = (await res.json()) as { id?: string };
  if (res.status !== 201 || !created.id) throw new Error(`patient: ${res.status} ${JSON.stringify(created)}`);
  return created.id;
}
