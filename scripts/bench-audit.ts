/**
 * npm run bench:audit — the audit trail at scale, on PostgreSQL.
 *
 *   npm run bench:audit                          1,000,000 events in a throwaway database, dropped at the end
 *   npm run bench:audit -- --rows 200000 --keep  fewer events; keep the database (its URL is printed)
 *
 * The server is BENCH_ADMIN_URL, else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres; the script
 * creates `nexus_bench_audit_<time>` there (the migrations run on it) and drops it afterwards.
 *
 * 1. Bulk load: realistic events (doctors, patients, admins, researchers, anonymous callers; a year of history),
 *    chained in JS exactly as record() chains them, inserted by multi-row INSERT … SELECT unnest(…) in batches.
 * 2. Full verification of the chain (verifyChain), timed.
 * 3. Filtered page queries (searchEvents, 50 per page, first and deep pages): p50/p95/max per filter, and the plan
 *    of each (EXPLAIN): no sequential scan allowed.
 * 4. The audit write on a request (record()): p50/p95/p99 alone, and with 8 and 16 concurrent writers (group commit);
 *    beside it two floors of this machine: a round trip (select 1) and a one-row durable commit.
 * 5. A streamed export (CSV of every denied event): rows per second and memory.
 * Goals: every page ≤ 50 ms p95 at 1M rows, the write ≤ 2 ms p99.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { ADMIN_URL, adminStatement, databaseUrl } from "./bench-servers";

const { values: args } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    keep: { type: "boolean", default: false },
    samples: { type: "string", default: "200" },
  },
});
const ROWS = Number(args.rows);
const SAMPLES = Number(args.samples);
const dbName = `nexus_bench_audit_${Date.now().toString(36)}`;
const benchUrl = databaseUrl(dbName);

// ---- deterministic random ------------------------------------------------------------------------------------
let seed = 0x6e657875;
function rand(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
function weighted<T>(table: readonly (readonly [T, number])[]): T {
  let r = rand() * table.reduce((s, [, w]) => s + w, 0);
  for (const [v, w] of table) if ((r -= w) < 0) return v;
  return table[table.length - 1]![0];
}
const uuidFrom = (n: number, tag: number) => {
  const h = createHash("sha256").update(`${tag}:${n}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

// ---- the population -------------------------------------------------------------------------------------------
type Role = "admin" | "doctor" | "patient" | "researcher";
interface Person {
  id: string;
  role: Role;
  name: string;
  patientId?: string;
  team?: string[];
}
const PATIENTS = Array.from({ length: 30_000 }, (_, i) => uuidFrom(i, 1));
const people: Record<Role, Person[]> = {
  admin: Array.from({ length: 5 }, (_, i) => ({ id: uuidFrom(i, 2), role: "admin" as const, name: `Admin ${i}` })),
  doctor: Array.from({ length: 60 }, (_, i) => ({
    id: uuidFrom(i, 3),
    role: "doctor" as const,
    name: `Dr Médecin ${i}`,
    team: Array.from({ length: 500 }, () => pick(PATIENTS)),
  })),
  patient: Array.from({ length: 3000 }, (_, i) => ({ id: uuidFrom(i, 4), role: "patient" as const, name: `Patient ${i}`, patientId: PATIENTS[i]! })),
  researcher: Array.from({ length: 15 }, (_, i) => ({ id: uuidFrom(i, 5), role: "researcher" as const, name: `Chercheur ${i}` })),
};
const ACTIONS: Record<Role | "anonymous", readonly (readonly [string, number])[]> = {
  doctor: [["patient.read", 30], ["image.read", 25], ["image.list", 15], ["patient.list", 10], ["consent.read", 10], ["image.upload", 5], ["image.analyse", 4], ["patient.create", 1]],
  patient: [["patient.read", 50], ["accessLog.read", 20], ["image.read", 20], ["consent.update", 10]],
  admin: [["account.list", 40], ["audit.read", 40], ["account.create", 10], ["account.disable", 5], ["patient.list", 5]],
  researcher: [["research.view", 50], ["research.image", 50]],
  anonymous: [["auth.login", 70], ["patient.read", 30]],
};
const IPS = Array.from({ length: 400 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) % 250 + 1}`);
const AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/132.0", "Mozilla/5.0 (Macintosh) Safari/605.1.15", "PACS-bridge/2.1", "nexus-demo/1"];

interface Row {
  id: number;
  at: Date;
  actorId: string | null;
  actorRole: string | null;
  actorName: string | null;
  action: string;
  resourceType: string | null;
  resourceId: string | null;
  patientId: string | null;
  outcome: "allowed" | "denied" | "error";
  reason: string | null;
  purpose: string;
  requestId: string;
  ip: string;
  userAgent: string;
  prevHash: string;
  hash: string;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const ms = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));

async function main() {
  console.log(`bench:audit — ${ROWS.toLocaleString("en")} events in ${dbName} on ${new URL(ADMIN_URL).host}`);
  await adminStatement(`create database "${dbName}"`);
  const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-bench-audit-"));
  process.env.DATABASE_URL = benchUrl;
  process.env.DATA_DIR = dataDir;
  process.env.NEXUS_DEMO = "0";
  const { connection, db } = await import("../app/db/db.server");
  const audit = await import("../app/audit/audit.server");
  const { chainHash, GENESIS_HASH } = await import("../app/audit/chain.server");
  const { purposeOf } = await import("../app/audit/purpose");
  const { exportStream } = await import("../app/audit/export.server");
  const { sql } = await import("drizzle-orm");
  const results: { name: string; p50: number; p95: number; max: number; plan: string }[] = [];
  try {
    // ---- 1. bulk load ------------------------------------------------------------------------------------------
    const loader = new pg.Client({ connectionString: benchUrl });
    await loader.connect();
    const start = Date.now() - 365 * 86_400_000;
    const step = (365 * 86_400_000 - 3_600_000) / ROWS;
    const BATCH = 10_000;
    let prevHash = GENESIS_HASH;
    const requestIds: string[] = [];
    const t0 = performance.now();
    let hashMs = 0;
    for (let first = 1; first <= ROWS; first += BATCH) {
      const h0 = performance.now();
      const batch: Row[] = [];
      for (let id = first; id < first + BATCH && id <= ROWS; id++) {
        const kind = weighted([["doctor", 70], ["patient", 15], ["admin", 8], ["researcher", 4], ["anonymous", 3]] as const);
        const actor = kind === "anonymous" ? null : pick(people[kind]);
        const action = weighted(ACTIONS[kind]);
        const domain = action.split(".")[0]!;
        const patientId =
          actor?.role === "patient" ? actor.patientId! : ["patient", "image", "consent", "research", "accessLog"].includes(domain) && !action.endsWith(".list") && action !== "research.view" ? pick(actor?.team ?? PATIENTS) : null;
        const outcome = kind === "anonymous" ? "denied" : weighted([["allowed", 93], ["denied", 6], ["error", 1]] as const);
        const resourceType = domain === "image" ? "image" : domain === "account" ? "account" : domain === "audit" ? "audit" : patientId ? "patient" : "app";
        const fields = {
          id,
          at: new Date(Math.floor(start + (id - 1) * step + rand() * step * 0.9)),
          actorId: actor?.id ?? null,
          actorRole: actor?.role ?? null,
          actorName: actor?.name ?? null,
          action,
          resourceType,
          resourceId: resourceType === "image" ? randomUUID() : resourceType === "patient" ? patientId : null,
          patientId,
          outcome,
          reason: outcome === "denied" ? "Ce patient ne fait pas partie de votre équipe de soins." : outcome === "error" ? "500 internal error" : null,
          purpose: purposeOf(action, actor?.role),
          requestId: randomUUID(),
          ip: pick(IPS),
          userAgent: pick(AGENTS),
        };
        const hash = chainHash(prevHash, fields);
        batch.push({ ...fields, prevHash, hash });
        prevHash = hash;
        if (id % 997 === 0) requestIds.push(fields.requestId);
      }
      hashMs += performance.now() - h0;
      const col = <K extends keyof Row>(k: K) => batch.map((r) => r[k]);
      await loader.query(
        `insert into audit_events (id, at, actor_id, actor_role, actor_name, action, resource_type, resource_id, patient_id,
           outcome, reason, purpose, request_id, ip, user_agent, prev_hash, hash)
         select * from unnest($1::bigint[], $2::timestamptz[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
           $8::text[], $9::uuid[], $10::audit_outcome[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
           $16::text[], $17::text[])`,
        [
          col("id"), col("at"), col("actorId"), col("actorRole"), col("actorName"), col("action"), col("resourceType"),
          col("resourceId"), col("patientId"), col("outcome"), col("reason"), col("purpose"), col("requestId"), col("ip"),
          col("userAgent"), col("prevHash"), col("hash"),
        ],
      );
      if ((first - 1) % 200_000 === 0 && first > 1) console.log(`  … ${(first - 1).toLocaleString("en")} rows`);
    }
    await loader.query(`select setval(pg_get_serial_sequence('audit_events', 'id'), $1)`, [ROWS]);
    const loadS = (performance.now() - t0) / 1000;
    const v0 = performance.now();
    await loader.query("vacuum analyze audit_events");
    const vacuumS = (performance.now() - v0) / 1000;
    const size = (await loader.query(`select pg_size_pretty(pg_total_relation_size('audit_events')) as s`)).rows[0].s as string;
    await loader.end();
    console.log(`Loaded in ${loadS.toFixed(1)} s (chain hashing ${(hashMs / 1000).toFixed(1)} s), vacuum analyze ${vacuumS.toFixed(1)} s, table + indexes ${size}.`);

    // ---- 2. verification -------------------------------------------------------------------------------------------
    const c0 = performance.now();
    const report = await audit.verifyChain();
    const verifyS = (performance.now() - c0) / 1000;
    if (!report.ok || report.checked !== ROWS) throw new Error(`chain does not verify: ${JSON.stringify(report)}`);
    console.log(`verifyChain: ${report.checked.toLocaleString("en")} events intact in ${verifyS.toFixed(1)} s (${Math.round(report.checked / verifyS).toLocaleString("en")} events/s).`);

    // ---- 3. page queries ---------------------------------------------------------------------------------------------
    const day = 86_400_000;
    const anyTime = () => new Date(start + rand() * 364 * day);
    const deep = () => 1 + Math.floor(rand() * ROWS);
    const doctors = people.doctor;
    type Q = Parameters<typeof audit.searchEvents>[0];
    const scenarios: { name: string; query: () => Q }[] = [
      { name: "no filter, first page", query: () => ({ limit: 50 }) },
      { name: "no filter, deep page (cursor)", query: () => ({ limit: 50, cursor: deep() }) },
      { name: "actor (doctor)", query: () => ({ limit: 50, actor: pick(doctors).id }) },
      { name: "actor, deep page", query: () => ({ limit: 50, actor: pick(doctors).id, cursor: deep() }) },
      { name: "actor (patient account)", query: () => ({ limit: 50, actor: pick(people.patient).id }) },
      { name: "patient", query: () => ({ limit: 50, patient: pick(PATIENTS) }) },
      { name: "action (rare: account.create)", query: () => ({ limit: 50, action: "account.create" }) },
      { name: "action (common: image.read), deep", query: () => ({ limit: 50, action: "image.read", cursor: deep() }) },
      { name: "outcome = error", query: () => ({ limit: 50, outcome: "error" as const }) },
      { name: "outcome = denied, deep", query: () => ({ limit: 50, outcome: "denied" as const, cursor: deep() }) },
      {
        name: "date range (1 day, anywhere in the year)",
        query: () => {
          const from = anyTime();
          return { limit: 50, from, to: new Date(from.getTime() + day) };
        },
      },
      { name: "date range (old quarter)", query: () => ({ limit: 50, from: new Date(start), to: new Date(start + 90 * day) }) },
      {
        name: "actor + date range (30 days)",
        query: () => {
          const from = anyTime();
          return { limit: 50, actor: pick(doctors).id, from, to: new Date(from.getTime() + 30 * day) };
        },
      },
      { name: "actor + outcome = denied", query: () => ({ limit: 50, actor: pick(doctors).id, outcome: "denied" as const }) },
      {
        name: "patient + date range (90 days)",
        query: () => {
          const from = anyTime();
          return { limit: 50, patient: pick(PATIENTS), from, to: new Date(from.getTime() + 90 * day) };
        },
      },
      { name: "request id", query: () => ({ limit: 50, requestId: pick(requestIds) }) },
    ];
    for (const s of scenarios) {
      for (let i = 0; i < 10; i++) await audit.searchEvents(s.query()); // warm-up
      const times: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const q = s.query();
        const q0 = performance.now();
        await audit.searchEvents(q);
        times.push(performance.now() - q0);
      }
      times.sort((a, b) => a - b);
      const plan = await audit.searchPlan(s.query());
      if (/Seq Scan/.test(plan)) throw new Error(`${s.name}: sequential scan\n${plan}`);
      const nodes = [...new Set([...plan.matchAll(/(?:Index Only Scan|Index Scan)(?: Backward)? using (\w+)|Bitmap Index Scan on (\w+)/g)].map((m) => m[1] ?? m[2]))];
      results.push({ name: s.name, p50: pct(times, 50), p95: pct(times, 95), max: times.at(-1)!, plan: nodes.join(", ") });
    }

    // ---- 4. the write ----------------------------------------------------------------------------------------------
    // The floor: one round trip to the database on this machine (no write can be cheaper).
    const floor: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const f0 = performance.now();
      await db.execute(sql`select 1`);
      floor.push(performance.now() - f0);
    }
    floor.sort((a, b) => a - b);
    // The floor of a durable write: one row inserted and committed (its WAL flushed) in a table of the throwaway
    // database with no index but its key — what any write that is to survive a crash costs here before it is an audit
    // event (the chain lock, the hash, the search indexes).
    await db.execute(sql`create table bench_commit_floor (id bigserial primary key, at timestamptz not null default now())`);
    const commitFloor: number[] = [];
    for (let i = 0; i < 3200; i++) {
      const f0 = performance.now();
      await db.execute(sql`insert into bench_commit_floor default values`);
      if (i >= 200) commitFloor.push(performance.now() - f0);
    }
    commitFloor.sort((a, b) => a - b);
    const info = { requestId: "bench", ip: "10.0.0.1", userAgent: "bench" };
    const event = () => ({ actor: pick(doctors), action: "patient.read", outcome: "allowed" as const, resource: { type: "patient", id: pick(PATIENTS) }, patientId: pick(PATIENTS), info });
    for (let i = 0; i < 200; i++) await audit.record(event());
    const writes: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const w0 = performance.now();
      await audit.record(event());
      writes.push(performance.now() - w0);
    }
    writes.sort((a, b) => a - b);
    // Concurrent writers (group commit: their events share append statements), 8 then 16, 4,000 events each run.
    const concurrentRun = async (writers: number) => {
      const times: number[] = [];
      const load = loadavg()[0]!;
      const c0 = performance.now();
      await Promise.all(
        Array.from({ length: writers }, async () => {
          for (let i = 0; i < Math.ceil(4000 / writers); i++) {
            const w0 = performance.now();
            await audit.record(event());
            times.push(performance.now() - w0);
          }
        }),
      );
      const seconds = (performance.now() - c0) / 1000;
      times.sort((a, b) => a - b);
      return { writers, times, perSecond: times.length / seconds, load: Math.max(load, loadavg()[0]!) };
    };
    const concurrentRuns = [await concurrentRun(8), await concurrentRun(16)];
    const tail = await audit.verifyTail(5000);
    if (!tail.ok) throw new Error("chain broken after the writes");

    // ---- 5. a streamed export ----------------------------------------------------------------------------------
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const e0 = performance.now();
    const reader = (await exportStream({ outcome: "denied" }, "csv")).getReader();
    let bytes = 0;
    let lines = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      for (const b of value) if (b === 10) lines++;
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    const exportS = (performance.now() - e0) / 1000;
    const count = Number((await db.execute(sql`select count(*) as n from audit_events where outcome = 'denied'`)).rows[0]!.n);

    // ---- report ----------------------------------------------------------------------------------------------------
    console.log(`\n### Audit trail at ${ROWS.toLocaleString("en")} events (PostgreSQL ${new URL(ADMIN_URL).host}, ${SAMPLES} samples per filter)\n`);
    console.log("| page query (50 events) | p50 ms | p95 ms | max ms | index used |");
    console.log("|---|---:|---:|---:|---|");
    for (const r of results) console.log(`| ${r.name} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.max)} | ${r.plan} |`);
    console.log("\n| write / verification | value |");
    console.log("|---|---:|");
    console.log(`| record() alone: p50 / p95 / p99 | ${ms(pct(writes, 50))} / ${ms(pct(writes, 95))} / ${ms(pct(writes, 99))} ms |`);
    console.log(`| floor: one round trip (select 1): p50 / p95 / p99 | ${ms(pct(floor, 50))} / ${ms(pct(floor, 95))} / ${ms(pct(floor, 99))} ms |`);
    console.log(`| floor: one row committed (insert, WAL flushed): p50 / p95 / p99 | ${ms(pct(commitFloor, 50))} / ${ms(pct(commitFloor, 95))} / ${ms(pct(commitFloor, 99))} ms |`);
    for (const r of concurrentRuns) {
      console.log(
        `| record() with ${r.writers} concurrent writers: p50 / p95 / p99 (events/s; load avg) | ${ms(pct(r.times, 50))} / ${ms(pct(r.times, 95))} / ${ms(pct(r.times, 99))} ms (${Math.round(r.perSecond).toLocaleString("en")}/s; ${r.load.toFixed(2)}) |`,
      );
    }
    console.log(`| verifyChain() over ${ROWS.toLocaleString("en")} events | ${verifyS.toFixed(1)} s |`);
    console.log(`| bulk load (hash + insert) | ${loadS.toFixed(1)} s |`);
    console.log(`| CSV export of ${count.toLocaleString("en")} denied events (streamed) | ${exportS.toFixed(1)} s, ${(bytes / 1e6).toFixed(1)} MB, RSS +${((peak - rss0) / 1e6).toFixed(0)} MB |`);
    const worst = Math.max(...results.map((r) => r.p95));
    console.log(`\nGoals: every page ≤ 50 ms p95 → worst ${ms(worst)} ms ${worst <= 50 ? "✓" : "✗"}; write ≤ 2 ms p99 → ${ms(pct(writes, 99))} ms ${pct(writes, 99) <= 2 ? "✓" : "✗"}; 16 writers ≤ 2 ms p99 → ${ms(pct(concurrentRuns[1]!.times, 99))} ms ${pct(concurrentRuns[1]!.times, 99) <= 2 ? "✓" : "✗"}.`);
    if (lines - 1 !== count) throw new Error(`export wrote ${lines - 1} rows, ${count} expected`);
  } finally {
    await connection.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (args.keep) console.log(`Kept: ${benchUrl}`);
    else await adminStatement(`drop database if exists "${dbName}" with (force)`);
  }
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}
