/**
 * Production roles on PostgreSQL: the owner applies the migrations (`npm run db:migrate`), and the server runs as a
 * login role that is only a member of `nexus_app` (NEXUS_MIGRATE=0). A server whose database is behind refuses to
 * start and says what to run; the unprivileged server does a whole doctor's and patient's day; its role can read
 * and append to the audit trail but never rewrite it. PostgreSQL only: PGlite has one user.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { api, DEMO_PASSWORD } from "./helpers/http";
import { png8 } from "./helpers/images";
import { startServer, type RunningServer } from "./helpers/server";

/** The migrations of drizzle/ (its journal): every branch adds its own, so the counts are read, not written here. */
const JOURNAL = (JSON.parse(readFileSync("drizzle/meta/_journal.json", "utf8")) as { entries: { tag: string }[] }).entries;
const MIGRATIONS = JOURNAL.length;
const LAST_MIGRATION = JOURNAL.at(-1)!.tag;

const adminUrl = process.env.DATABASE_URL;
if (!adminUrl) console.log("skipped: production database roles need PostgreSQL (set DATABASE_URL)");

describe.skipIf(!adminUrl)("the server as nexus_app, migrations by the owner", () => {
  const stamp = `${Date.now().toString(36)}_${process.pid}`;
  const database = `nexus_test_${stamp}_roles`;
  const appRole = `nexus_test_${stamp}_app`;
  const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-roles-"));
  let ownerUrl = "";
  let appUrl = "";
  let server: RunningServer | undefined;

  async function admin<T>(sql: string, url = adminUrl!): Promise<T[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(sql)).rows as T[];
    } finally {
      await client.end();
    }
  }

  const serverEnv = (url: string): NodeJS.ProcessEnv => ({
    ...process.env,
    NODE_ENV: "production",
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: url,
    NEXUS_MIGRATE: "0",
    NEXUS_DEMO: "1",
    NEXUS_ACCESS_LOG: "0",
    DATA_DIR: dataDir,
    NEXUS_MASTER_KEYS: inject("masterKeys"),
    DB_LOCK_TIMEOUT_MS: "800",
  });

  beforeAll(async () => {
    await admin(`create database "${database}"`);
    const url = new URL(adminUrl!);
    url.pathname = `/${database}`;
    ownerUrl = url.toString();
    url.username = appRole;
    url.password = "";
    appUrl = url.toString();
  });

  afterAll(async () => {
    await server?.stop();
    await admin(`drop database if exists "${database}" with (force)`);
    await admin(`drop role if exists "${appRole}"`);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("refuses to start on a database whose migrations are pending, and names the command to run", async () => {
    const start = startServer(serverEnv(ownerUrl));
    await expect(start).rejects.toThrow(new RegExp(`exited with code 1[\\s\\S]*${MIGRATIONS} migration\\(s\\) pending[\\s\\S]*npm run db:migrate`));
    const [schema] = await admin<{ n: number }>("select count(*)::int as n from pg_namespace where nspname = 'drizzle'", ownerUrl);
    expect(schema!.n, "the refused start created nothing").toBe(0);
  });

  it("npm run db:migrate applies every migration as the owner; a second run has nothing to do", () => {
    for (let i = 0; i < 2; i++) {
      const run = spawnSync(process.execPath, ["--import", "tsx", "scripts/db-migrate.ts"], {
        env: { ...process.env, DATABASE_URL: ownerUrl, DATA_DIR: dataDir },
        encoding: "utf8",
      });
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toContain(`Database schema up to date on postgres: ${MIGRATIONS} migrations, the last ${LAST_MIGRATION}`);
    }
  });

  it("serves a doctor's and a patient's day as a login role that is only a member of nexus_app", async () => {
    await admin(`create role "${appRole}" login in role nexus_app`);
    server = await startServer(serverEnv(appUrl));
    const base = server.url;
    const token = async (email: string, password = DEMO_PASSWORD) => {
      const res = await api("POST", "/api/v1/tokens", { base, json: { email, password } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body.token as string;
    };
    const doctor = await token("doctor@demo.nexus");

    const created = await api("POST", "/api/v1/patients", {
      base,
      token: doctor,
      json: { displayName: "Patiente Rôles", email: `roles-${stamp}@test.nexus`, consents: { care: true, ai_analysis: true } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const patientId = created.body.id as string;

    const image = await png8(96, 64);
    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(image)], { type: "image/png" }), "scan.png");
    const upload = await fetch(`${base}/api/v1/patients/${patientId}/images`, { method: "POST", headers: { Authorization: `Bearer ${doctor}` }, body: form });
    expect(upload.status, await upload.clone().text()).toBe(201);
    const imageId = ((await upload.json()) as { id: string }).id;

    const read = await fetch(`${base}/api/v1/images/${imageId}`, { headers: { Authorization: `Bearer ${doctor}` } });
    expect(read.status).toBe(200);
    expect(Buffer.from(await read.arrayBuffer()).equals(image)).toBe(true);

    const reading = await api("POST", `/api/v1/images/${imageId}/predictions`, { base, token: doctor });
    expect(reading.status, JSON.stringify(reading.body)).toBe(201);

    const first = await api("POST", "/api/v1/tokens", {
      base,
      json: { email: `roles-${stamp}@test.nexus`, password: created.body.account.temporaryPassword, newPassword: "the-patient-chose-this" },
    });
    expect(first.status).toBe(201);
    const patient = (first.body as { token: string }).token;
    const revoke = await api("PUT", `/api/v1/patients/${patientId}/consents/care`, { base, token: patient, json: { granted: false } });
    expect(revoke.status).toBe(200);
    expect((await fetch(`${base}/api/v1/images/${imageId}`, { headers: { Authorization: `Bearer ${doctor}` } })).status).toBe(403);
    const log = await api("GET", `/api/v1/patients/${patientId}/access-log`, { base, token: patient });
    expect(log.status).toBe(200);
    expect(log.body.events.length).toBeGreaterThan(0);

    const erased = await api("DELETE", `/api/v1/patients/${patientId}`, { base, token: doctor });
    expect(erased.status).toBe(200);
    expect(erased.body).toEqual({ erasedImages: 1 });

    const adminToken = await token("admin@demo.nexus");
    const verify = await api("GET", "/api/v1/audit/verify", { base, token: adminToken });
    expect(verify.status).toBe(200);
    expect(verify.body.ok).toBe(true);
  });

  it("gives that role no way to rewrite the audit trail, nor to write a row of its own making", async () => {
    for (const sql of [
      "update audit_events set outcome = 'allowed'",
      "delete from audit_events",
      "truncate audit_events",
      // A back-dated, forged row (issue 11.6): appends go through nexus_audit_append_many() only.
      "insert into audit_events (at, action, outcome, prev_hash, hash) values ('2020-01-01', 'forged', 'allowed', 'a', 'b')",
    ]) {
      await expect(admin(sql, appUrl), sql).rejects.toMatchObject({ code: "42501" });
    }
    const [appended] = await admin<{ ids: string[] }>(
      `select nexus_audit_append_many('[{"action":"roles.test","outcome":"allowed"}]'::jsonb) as ids`,
      appUrl,
    );
    expect(appended!.ids).toHaveLength(1);
  });

  it("answers 503 with Retry-After while the audit chain's lock is held, and serves again once it is released", async () => {
    const base = server!.url;
    const login = await api("POST", "/api/v1/tokens", { base, json: { email: "doctor@demo.nexus", password: DEMO_PASSWORD } });
    expect(login.status).toBe(201);
    const holder = new pg.Client({ connectionString: ownerUrl });
    await holder.connect();
    try {
      await holder.query("select pg_advisory_lock(7202611231)");
      const held = await fetch(`${base}/api/v1/patients`, { headers: { Authorization: `Bearer ${login.body.token}` } });
      expect(held.status).toBe(503);
      expect(held.headers.get("Retry-After")).toBe("5");
      expect(((await held.json()) as { error: { code: string } }).error.code).toBe("busy");
      const page = await fetch(`${base}/connexion`);
      expect(page.status, "a page without an audit event is served meanwhile").toBe(200);
      await holder.query("select pg_advisory_unlock(7202611231)");
      const after = await fetch(`${base}/api/v1/patients`, { headers: { Authorization: `Bearer ${login.body.token}` } });
      expect(after.status).toBe(200);
    } finally {
      await holder.end();
    }
  });
});
