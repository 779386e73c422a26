/**
 * WEB_CONCURRENCY=2 (cluster.mjs): one port, two worker processes sharing PostgreSQL.
 *  - the leader prints the address and the demo accounts once; a follower starts once the leader listens;
 *  - requests land on both workers, and a session or token opened on one works on the other;
 *  - a worker killed with SIGKILL is replaced and the port keeps answering; the audit chain stays valid;
 *  - SIGTERM to the primary stops every worker;
 *  - without PostgreSQL the variable is refused with its reason and one process serves.
 * Prints one "skipped: …" line without PostgreSQL (DATABASE_URL).
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, BrowserSession } from "../helpers/http";
import { startOwnServer, postgresAdminUrl, type OwnServer } from "../helpers/own-server";

const adminUrl = postgresAdminUrl();
if (!adminUrl) console.log("skipped: no PostgreSQL (DATABASE_URL) for the WEB_CONCURRENCY test");

/** The worker processes of a primary: its children (Linux /proc). */
function workersOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function until<T>(what: string, fn: () => T | Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (ok(value)) return value;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(value)} after ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(!adminUrl)("WEB_CONCURRENCY=2: two worker processes behind one port", () => {
  let server: OwnServer;
  let primary: number;

  beforeAll(async () => {
    server = await startOwnServer({ WEB_CONCURRENCY: "2" });
    primary = server.child.pid!;
    await until("workers", () => workersOf(primary).length, (n) => n === 2);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("prints the address and the demo accounts once, naming the worker count", () => {
    const out = server.output();
    expect(out.match(/listening on/g)).toHaveLength(1);
    expect(out.match(/doctor@demo\.nexus/g)).toHaveLength(1);
    expect(out).toContain("Worker processes: 2");
  });

  it("serves from both workers; a token and a browser session work on either", { timeout: 60_000 }, async () => {
    const created = await api("POST", "/api/v1/tokens", { base: server.url, json: { email: "doctor@demo.nexus", password: "nexus-demo-2026" } });
    expect(created.status).toBe(201);
    const session = (await BrowserSession.login("doctor@demo.nexus", undefined, {}, server.url)).cookieHeader();
    // Fresh connections (no keep-alive) are spread over the workers by the primary.
    const results = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const res =
          i % 2
            ? await fetch(`${server.url}/api/v1/patients`, { headers: { Authorization: `Bearer ${created.body.token}`, Connection: "close" } })
            : await fetch(`${server.url}/patients`, { headers: { Cookie: session, Connection: "close" }, redirect: "manual" });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(results.every((s) => s === 200), JSON.stringify(results)).toBe(true);
    // Both workers ran requests: each has used CPU beyond its start (utime+stime in /proc/<pid>/stat grew).
    const cpu = (pid: number) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ").slice(11, 13).reduce((s, v) => s + Number(v), 0);
    const before = workersOf(primary).map(cpu);
    await Promise.all(
      Array.from({ length: 200 }, () =>
        fetch(`${server.url}/api/v1/patients`, { headers: { Authorization: `Bearer ${created.body.token}`, Connection: "close" } }).then((r) => r.arrayBuffer()),
      ),
    );
    const after = workersOf(primary).map(cpu);
    expect(after.every((v, i) => v > before[i]!), `CPU ticks before ${before} after ${after}`).toBe(true);
  });

  it("replaces a killed worker; the port keeps answering and the audit chain stays valid", { timeout: 90_000 }, async () => {
    // The follower (forked after the leader, so the larger pid): the leader has listened since the start, so the port
    // must answer throughout. (Killing the leader before the follower has listened would leave the port closed until
    // a new leader listens — a start-up window, not what this checks.)
    const victim = Math.max(...workersOf(primary));
    process.kill(victim, "SIGKILL");
    await until("the primary sees the worker gone", () => server.output().includes(`Nexus worker ${victim} (follower) stopped`), Boolean);
    expect((await fetch(`${server.url}/healthz`, { headers: { Connection: "close" } })).status).toBe(200);
    const replaced = await until("a replacement worker", () => workersOf(primary), (w) => w.length === 2 && !w.includes(victim));
    expect(replaced).not.toContain(victim);
    const admin = await api("POST", "/api/v1/tokens", { base: server.url, json: { email: "admin@demo.nexus", password: "nexus-demo-2026" } });
    expect(admin.status).toBe(201);
    const verified = await api("GET", "/api/v1/audit/verify", { base: server.url, token: admin.body.token });
    expect(verified.status).toBe(200);
    expect(verified.body.ok, JSON.stringify(verified.body)).toBe(true);
  });

  it("SIGTERM to the primary stops every worker", { timeout: 30_000 }, async () => {
    const workers = workersOf(primary);
    expect(workers).toHaveLength(2);
    await server.stop();
    await until("workers gone", () => workers.filter(alive).length, (n) => n === 0, 10_000);
  });
});

describe("WEB_CONCURRENCY without PostgreSQL", () => {
  it("says why and serves with one process (embedded PGlite)", { timeout: 90_000 }, async () => {
    const own = await startOwnServer({ WEB_CONCURRENCY: "2" }, { localStore: true, pglite: true });
    try {
      expect(own.output()).toContain("WEB_CONCURRENCY needs PostgreSQL");
      expect(workersOf(own.child.pid!)).toEqual([]);
      expect((await fetch(`${own.url}/healthz`)).status).toBe(200);
    } finally {
      await own.stop();
    }
  });
});
