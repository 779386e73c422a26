/**
 * npm run bench:dicomweb — Nexus's DICOMweb and DIMSE against Debian's Orthanc 1.10 (+ orthanc-dicomweb) on this
 * machine, side by side in one run, same files (issue 17):
 *   - STOW-RS ingest of a four-view 12-bit exam of ≈ 27 MB per view (3328 × 4096, generated in memory by
 *     tests/helpers/mammo.ts; the patient exists in Nexus with the same identity, so the views are filed, not queued);
 *   - WADO-RS retrieval of that whole study (`multipart/related; type="application/dicom"`);
 *   - the same two with an eight-view study of ≈ 218 MB: peak RSS against study size (memory must stay flat);
 *   - C-STORE ingest of 100 small instances (512 × 512, 12-bit) with DCMTK's `storescu`, one association, into
 *     Nexus's DIMSE SCP (DICOM_PORT, AE title NEXUS) and into Orthanc's (AE title ORTHANC).
 * Each measure runs BENCH_ROUNDS times (2), the two servers one right after the other, in alternating order; every
 * figure has the 1-minute load average beside it (the machine is shared). Throughput counts the DICOM files' bytes
 * (the same numerator for both); peak RSS is sampled from /proc every 50 ms. Orthanc stores plaintext and neither
 * authenticates nor audits; Nexus checks the bearer token, the identity and the care consent, encrypts before
 * storing, and commits one audit event per instance (per request for WADO-RS) before it answers. Both fsync what they
 * store (Orthanc's SyncStorageArea defaults to true).
 *
 *   npm run build && npm run bench:dicomweb
 *   BENCH_ROUNDS=3 BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" BENCH_PHASES=cstore npm run bench:dicomweb
 *
 * Ports BENCH_PORT_BASE (47400) … +3. "skipped: no Orthanc" (or no DICOMweb plugin, no storescu) where absent: Nexus
 * alone. The C-STORE phase writes the generated (synthetic) instances to the harness's temporary directory for
 * storescu, which reads files; everything is removed after.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { FOUR_VIEWS, mammoDicom, uid } from "../tests/helpers/mammo";
import {
  BenchHarness,
  cpuOf,
  getCounting,
  load,
  MiB,
  nexusPatient,
  nexusToken,
  ORTHANC_DICOMWEB_PLUGIN,
  post,
  runBench,
  withRss,
  type RssSample,
  type Server,
} from "./bench-servers";

const PORT_BASE = Number(process.env.BENCH_PORT_BASE ?? 47400);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const ROWS = Number(process.env.BENCH_ROWS ?? 4096);
const COLUMNS = Number(process.env.BENCH_COLUMNS ?? 3328);
const LARGE_VIEWS = Number(process.env.BENCH_LARGE_VIEWS ?? 8);
const SMALL_COUNT = Number(process.env.BENCH_SMALL_COUNT ?? 100);
const SMALL_SIZE = Number(process.env.BENCH_SMALL_SIZE ?? 512);
const STORESCU = "/usr/bin/storescu";
/** Which measures to run (for profiling one of them): any of stow, wado, cstore. */
const PHASES = new Set((process.env.BENCH_PHASES ?? "stow,wado,cstore").split(",").map((p) => p.trim()));
const MB = 1e6;

const identity = { id: `IPP-BENCH-${randomBytes(3).toString("hex").toUpperCase()}`, name: "BENCH^DICOMWEB", birthDate: "19600101", sex: "F" };

interface Measure {
  seconds: number;
  /** The server's CPU seconds (all threads) during the measure. */
  cpu: number;
  bytes: number;
  count: number;
  load: number;
  rss: RssSample;
}

interface Side {
  name: "Nexus" | "Orthanc";
  server: Server;
  stow(study: Study): Promise<void>;
  wado(study: Study): Promise<number>;
  cstore(files: string[], study: string): Promise<void>;
}

interface Study {
  uid: string;
  files: Buffer[];
  bytes: number;
}

function study(views: number, rows: number, columns: number): Study {
  const studyInstanceUid = uid();
  const files = Array.from({ length: views }, (_, i) =>
    mammoDicom({ ...FOUR_VIEWS[i % 4]!, studyInstanceUid, studyDate: "20261130", patient: identity, rows, columns, spacing: 0.07 }),
  );
  return { uid: studyInstanceUid, files, bytes: files.reduce((n, f) => n + f.length, 0) };
}

/** The STOW-RS body as parts (no copy of the files): `multipart/related; type="application/dicom"`. */
function stowParts(files: Buffer[]): { parts: Buffer[]; contentType: string } {
  const boundary = `bench-${randomBytes(12).toString("hex")}`;
  const parts: Buffer[] = [];
  for (const f of files) parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), f, Buffer.from("\r\n"));
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { parts, contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, output }));
  });
}

async function measure(server: Server, bytes: number, count: number, fn: () => Promise<unknown>): Promise<Measure> {
  const t0 = performance.now();
  const cpu0 = cpuOf(server.pid);
  const { before, peak } = await withRss(server.pid, fn);
  return { seconds: (performance.now() - t0) / 1000, cpu: cpuOf(server.pid) - cpu0, bytes, count, load: load(), rss: { before, peak } };
}

const ACCEPT_DICOM = 'multipart/related; type="application/dicom"';

function nexusSide(server: Server, token: string, dicomPort: number): Side {
  const auth = { Authorization: `Bearer ${token}` };
  return {
    name: "Nexus",
    server,
    async stow(s) {
      const { parts, contentType } = stowParts(s.files);
      const res = await post(`${server.base}/dicomweb/studies`, { ...auth, "Content-Type": contentType, Accept: "application/dicom+json" }, parts);
      if (res.status !== 200) throw new Error(`Nexus STOW-RS: ${res.status} ${res.text.slice(0, 500)}`);
      const stored = (JSON.parse(res.text) as Record<string, { Value?: unknown[] }>)["00081199"]?.Value?.length ?? 0;
      if (stored !== s.files.length) throw new Error(`Nexus STOW-RS stored ${stored} of ${s.files.length}: ${res.text.slice(0, 500)}`);
    },
    async wado(s) {
      const res = await getCounting(`${server.base}/dicomweb/studies/${s.uid}`, { ...auth, Accept: ACCEPT_DICOM });
      if (res.status !== 200 || res.bytes < s.bytes) throw new Error(`Nexus WADO-RS: ${res.status}, ${res.bytes} bytes for ${s.bytes}`);
      return res.bytes;
    },
    async cstore(files, studyUid) {
      const sent = await run(STORESCU, ["-aet", "BENCHSCU", "-aec", "NEXUS", "127.0.0.1", String(dicomPort), ...files]);
      if (sent.code !== 0) throw new Error(`storescu → Nexus: exit ${sent.code}\n${sent.output.slice(0, 1000)}`);
      const found = await fetch(`${server.base}/dicomweb/studies/${studyUid}/instances?limit=1000`, { headers: auth });
      const list = found.status === 200 ? ((await found.json()) as unknown[]) : [];
      if (list.length !== files.length) throw new Error(`C-STORE → Nexus: ${list.length} of ${files.length} instances stored\n${sent.output.slice(0, 1000)}`);
    },
  };
}

function orthancSide(server: Server, dicomPort: number): Side {
  return {
    name: "Orthanc",
    server,
    async stow(s) {
      const { parts, contentType } = stowParts(s.files);
      const res = await post(`${server.base}/dicom-web/studies`, { "Content-Type": contentType, Accept: "application/dicom+json" }, parts);
      const body = JSON.parse(res.text || "{}") as Record<string, { Value?: unknown[] }>;
      const stored = body["00081199"]?.Value?.length ?? 0;
      if (res.status !== 200 || stored !== s.files.length) throw new Error(`Orthanc STOW-RS: ${res.status}, ${stored} of ${s.files.length} stored: ${res.text.slice(0, 500)}`);
    },
    async wado(s) {
      const res = await getCounting(`${server.base}/dicom-web/studies/${s.uid}`, { Accept: ACCEPT_DICOM });
      if (res.status !== 200 || res.bytes < s.bytes) throw new Error(`Orthanc WADO-RS: ${res.status}, ${res.bytes} bytes for ${s.bytes}`);
      return res.bytes;
    },
    async cstore(files, studyUid) {
      const sent = await run(STORESCU, ["-aet", "BENCHSCU", "-aec", "ORTHANC", "127.0.0.1", String(dicomPort), ...files]);
      if (sent.code !== 0) throw new Error(`storescu → Orthanc: exit ${sent.code}\n${sent.output.slice(0, 1000)}`);
      const found = await fetch(`${server.base}/dicom-web/studies/${studyUid}/instances?limit=1000`);
      const list = found.status === 200 ? ((await found.json()) as unknown[]) : [];
      if (list.length !== files.length) throw new Error(`C-STORE → Orthanc: ${list.length} of ${files.length} instances stored`);
    },
  };
}

// ---- reporting -----------------------------------------------------------------------------------------------

interface Row {
  work: string;
  round: number;
  unit: "MB/s" | "instances/s";
  nexus: Measure;
  orthanc: Measure | null;
}

const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
const rate = (m: Measure, unit: Row["unit"]) => (unit === "MB/s" ? m.bytes / MB / m.seconds : m.count / m.seconds);
const figure = (m: Measure, unit: Row["unit"]) =>
  `${rate(m, unit).toFixed(1)} ${unit} (${m.seconds.toFixed(2)} s, CPU ${m.cpu.toFixed(2)} s; load ${m.load.toFixed(2)})`;
/** Work per byte (or instance), independent of how long the server waited for a CPU: Orthanc's CPU / Nexus's. */
const cpuRatio = (r: Row) => (r.orthanc && r.nexus.cpu > 0 ? `${(r.orthanc.cpu / r.nexus.cpu).toFixed(2)}×` : "–");
const rss = (m: Measure) => `${mib(m.rss.before)} → ${mib(m.rss.peak)} (+${mib(m.rss.peak - m.rss.before)})`;
const ratio = (r: Row) => {
  if (!r.orthanc) return "–";
  const x = rate(r.nexus, r.unit) / rate(r.orthanc, r.unit);
  return `${x.toFixed(2)}× ${x >= 0.8 ? "✓" : "✗"}`;
};

function printRow(r: Row) {
  console.log(
    `  ${r.work}, round ${r.round}: Nexus ${figure(r.nexus, r.unit)}, RSS ${rss(r.nexus)}` +
      (r.orthanc ? ` · Orthanc ${figure(r.orthanc, r.unit)}, RSS ${rss(r.orthanc)} · ratio ${ratio(r)}, CPU ratio ${cpuRatio(r)}` : " · Orthanc skipped"),
  );
}

// ---- the run -------------------------------------------------------------------------------------------------

await runBench("dicomweb", async (harness) => {
  let orthancWhy: string | null = null;
  if (!BenchHarness.hasOrthanc) orthancWhy = "no Orthanc (Debian package orthanc)";
  else if (!existsSync(ORTHANC_DICOMWEB_PLUGIN)) orthancWhy = "no Orthanc DICOMweb plugin (Debian package orthanc-dicomweb)";
  if (orthancWhy) console.log(`skipped: ${orthancWhy} — Nexus alone`);
  const withStorescu = existsSync(STORESCU);
  if (!withStorescu) console.log("skipped: no storescu (Debian package dcmtk) — no C-STORE measure");

  const nexusServer = await harness.startNexus({ port: PORT_BASE, env: { DICOM_PORT: String(PORT_BASE + 1) } });
  const orthancServer = orthancWhy ? null : await harness.startOrthanc({ httpPort: PORT_BASE + 2, dicomPort: PORT_BASE + 3, dicomweb: true, dicomServer: true });
  const token = await nexusToken(nexusServer.base);
  await nexusPatient(nexusServer.base, token, {
    displayName: "Bench Dicomweb",
    ipp: identity.id,
    birthDate: "1960-01-01",
    sex: "F",
    consents: { care: true },
  });
  const nexus = nexusSide(nexusServer, token, PORT_BASE + 1);
  const orthanc = orthancServer ? orthancSide(orthancServer, PORT_BASE + 3) : null;
  console.log(
    `Nexus ${nexusServer.base} (PostgreSQL, ${process.env.S3_HOST || process.env.S3_ENDPOINT ? "S3" : "local store"}; DIMSE on ${PORT_BASE + 1}); ` +
      `Orthanc ${orthancServer?.base ?? "—"}${orthancServer ? ` (DIMSE on ${PORT_BASE + 3})` : ""}; ${ROUNDS} rounds`,
  );

  // Warm-up (not measured): one small study each way, so that neither pays for its first request in a round.
  {
    const warm = study(2, 512, 512);
    for (const side of [nexus, orthanc]) {
      if (!side) continue;
      await side.stow(warm);
      await side.wado(warm);
    }
  }

  const rows: Row[] = [];
  /** Both sides, one after the other; the order alternates with the round. */
  const pair = async (work: string, round: number, unit: Row["unit"], bytes: number, count: number, fn: (side: Side) => Promise<unknown>) => {
    const order = [nexus, orthanc].filter((s): s is Side => s !== null);
    if (round % 2 === 0) order.reverse();
    const results: Partial<Record<Side["name"], Measure>> = {};
    for (const side of order) results[side.name] = await measure(side.server, bytes, count, () => fn(side));
    const row: Row = { work, round, unit, nexus: results.Nexus!, orthanc: results.Orthanc ?? null };
    rows.push(row);
    printRow(row);
  };

  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round} (load ${load().toFixed(2)})`);
    for (const views of PHASES.has("stow") || PHASES.has("wado") ? [4, LARGE_VIEWS] : []) {
      const s = study(views, ROWS, COLUMNS);
      const label = `${views} views, ${(s.bytes / MB).toFixed(0)} MB`;
      // WADO-RS alone still needs the study stored: then unmeasured.
      if (PHASES.has("stow")) await pair(`STOW-RS ${label}`, round, "MB/s", s.bytes, views, (side) => side.stow(s));
      else for (const side of [nexus, orthanc]) await side?.stow(s);
      if (PHASES.has("wado")) await pair(`WADO-RS ${label}`, round, "MB/s", s.bytes, views, (side) => side.wado(s));
    }
    if (withStorescu && PHASES.has("cstore")) {
      const dir = path.join(harness.work, `cstore-${round}`);
      mkdirSync(dir);
      const studyUid = uid();
      let bytes = 0;
      const files = Array.from({ length: SMALL_COUNT }, (_, i) => {
        const file = path.join(dir, `${String(i).padStart(3, "0")}.dcm`);
        const dicom = mammoDicom({ ...FOUR_VIEWS[i % 4]!, studyInstanceUid: studyUid, studyDate: "20261130", patient: identity, rows: SMALL_SIZE, columns: SMALL_SIZE });
        writeFileSync(file, dicom);
        bytes += dicom.length;
        return file;
      });
      await pair(`C-STORE ${SMALL_COUNT} instances of ${SMALL_SIZE}²`, round, "instances/s", bytes, SMALL_COUNT, (side) => side.cstore(files, studyUid));
    }
  }

  // ---- summary ----
  console.log(`\n### Nexus / Orthanc, DICOMweb and DIMSE (${new Date().toISOString()}, 1-min load average beside each figure)\n`);
  console.log("| work | round | Nexus | Orthanc | Nexus / Orthanc (goal ≥ 0.8×) | CPU, Orthanc / Nexus | Nexus RSS before → peak | Orthanc RSS before → peak |");
  console.log("|---|---:|---|---|---:|---:|---|---|");
  for (const r of rows) {
    console.log(`| ${r.work} | ${r.round} | ${figure(r.nexus, r.unit)} | ${r.orthanc ? figure(r.orthanc, r.unit) : "skipped"} | ${ratio(r)} | ${cpuRatio(r)} | ${rss(r.nexus)} | ${r.orthanc ? rss(r.orthanc) : "–"} |`);
  }
  // Flat in study size: RSS growth during the 4-view and the large study, per server, the largest of the rounds.
  console.log("\n### Peak RSS growth against study size (largest growth over the rounds)\n");
  console.log("| work | Nexus, 4 views | Nexus, large | Orthanc, 4 views | Orthanc, large |");
  console.log("|---|---:|---:|---:|---:|");
  for (const kind of ["STOW-RS", "WADO-RS"]) {
    const growth = (views: number, side: "nexus" | "orthanc") => {
      const list = rows.filter((r) => r.work.startsWith(`${kind} ${views} views`)).map((r) => r[side]).filter((m): m is Measure => m !== null);
      return list.length ? mib(Math.max(...list.map((m) => m.rss.peak - m.rss.before))) : "–";
    };
    const size = (views: number) => rows.find((r) => r.work.startsWith(`${kind} ${views} views`))?.work.replace(`${kind} `, "") ?? "";
    console.log(`| ${kind} (${size(4)} / ${size(LARGE_VIEWS)}) | +${growth(4, "nexus")} | +${growth(LARGE_VIEWS, "nexus")} | +${growth(4, "orthanc")} | +${growth(LARGE_VIEWS, "orthanc")} |`);
  }
});
