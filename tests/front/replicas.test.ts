/**
 * Two replicas as a tested fact (issue 11, item 10): two Nexus server processes on loopback share one PostgreSQL
 * database and one S3 bucket (Ceph RGW in CI), behind Caddy (round robin, health checks).
 *  - a consent withdrawn through replica A refuses the very next read through replica B (1,000 trials, 0 leaks);
 *  - a session opened on A works on B (same SESSION_SECRET);
 *  - audit events written concurrently through both keep the hash chain valid;
 *  - killing a replica in the middle of an upload leaves nothing half-written (no image row without its object, no
 *    object without its row), and Caddy sends the next requests to the other replica.
 * Prints one "skipped: …" line and skips without Caddy, PostgreSQL (DATABASE_URL) or an S3 endpoint.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3Store, s3Client, s3OptionsFromEnv } from "../../app/vault/s3-store.server";
import { CADDY } from "../../scripts/start-https";
import { api } from "../helpers/http";
import { bigJpeg, jpeg, MiB, uploadImage } from "../helpers/images";
import { adminQuery, postgresAdminUrl } from "../helpers/own-server";
import { startServer, type RunningServer } from "../helpers/server";

const adminUrl = postgresAdminUrl();
const hasS3 = Boolean(process.env.S3_HOST || process.env.S3_ENDPOINT);
const missing = !existsSync(CADDY) ? `no caddy at ${CADDY}` : !adminUrl ? "no PostgreSQL (DATABASE_URL)" : !hasS3 ? "no S3 endpoint (S3_HOST)" : null;
if (missing) console.log(`skipped: ${missing} for the two-replica test`);

const PASSWORD = "nexus-demo-2026";
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

async function token(base: string, email: string, password = PASSWORD): Promise<string> {
  const res = await api("POST", "/api/v1/tokens", { base, json: { email, password } });
  if (res.status !== 201) throw new Error(`login ${email}: ${res.status}`);
  return res.body.token;
}

describe.skipIf(missing !== null)("two replicas behind Caddy (PostgreSQL, S3)", () => {
  const stamp = `${Date.now().toString(36)}${process.pid}`;
  const databaseName = `nexus_replicas_${stamp}`;
  const bucket = `nexus-replicas-${stamp}`;
  const dirs: string[] = [];
  let a: RunningServer;
  let b: RunningServer;
  let caddy: ChildProcess;
  let front: string;
  let databaseUrl: string;
  let store: S3Store;

  beforeAll(async () => {
    await adminQuery(adminUrl!, `create database "${databaseName}"`);
    const url = new URL(adminUrl!);
    url.pathname = `/${databaseName}`;
    databaseUrl = url.toString();
    const shared: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: "production" as const,
      HOST: "127.0.0.1",
      PORT: "0",
      NEXUS_DEMO: "1",
      NEXUS_ACCESS_LOG: "0",
      DATABASE_URL: databaseUrl,
      S3_BUCKET: bucket,
      SESSION_SECRET: randomBytes(32).toString("hex"),
      NEXUS_MASTER_KEYS: inject("masterKeys"),
    };
    const replica = () => {
      const dir = mkdtempSync(path.join(tmpdir(), "nexus-replica-"));
      dirs.push(dir);
      return startServer({ ...shared, DATA_DIR: dir });
    };
    a = await replica(); // migrates and seeds first
    b = await replica();
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), "nexus-replicas-caddy-"));
    dirs.push(dir);
    const upstreams = [a, b].map((r) => new URL(r.url).host).join(" ");
    writeFileSync(
      path.join(dir, "Caddyfile"),
      `{\n\tadmin off\n\tauto_https off\n}\nhttp://127.0.0.1:${port} {\n\treverse_proxy ${upstreams} {\n\t\tlb_policy round_robin\n\t\tlb_try_duration 5s\n\t\tlb_try_interval 100ms\n\t\tfail_duration 30s\n\t\thealth_uri /healthz\n\t\thealth_interval 1s\n\t\thealth_timeout 1s\n\t}\n}\n`,
    );
    caddy = spawn(CADDY, ["run", "--config", path.join(dir, "Caddyfile"), "--adapter", "caddyfile"], {
      env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
      stdio: "ignore",
    });
    front = `http://127.0.0.1:${port}`;
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = await fetch(`${front}/healthz`).then((r) => r.ok, () => false);
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    if (!up) throw new Error("Caddy did not start in front of the replicas");
    store = new S3Store(s3OptionsFromEnv({ ...process.env, S3_BUCKET: bucket })!);
  }, 120_000);

  afterAll(async () => {
    caddy?.kill("SIGTERM");
    await a?.stop();
    await b?.stop();
    if (adminUrl) await adminQuery(adminUrl, `drop database if exists "${databaseName}" with (force)`).catch(() => {});
    if (store) {
      const keys: string[] = [];
      for await (const key of store.list("")) keys.push(key);
      for (const key of keys) await store.delete(key).catch(() => {});
      await s3Client(s3OptionsFromEnv({ ...process.env, S3_BUCKET: bucket })!).removeBucket(bucket).catch(() => {});
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("Caddy answers through both replicas", async () => {
    const statuses = await Promise.all(Array.from({ length: 10 }, () => fetch(`${front}/healthz`).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
  });

  it("a withdrawal through A refuses the very next read through B: 1,000 trials, 0 leaks", async () => {
    const doctorA = await token(a.url, "doctor@demo.nexus");
    const doctorB = await token(b.url, "doctor@demo.nexus");
    const image = await jpeg(16, 16);
    // Ten patients in parallel, 100 trials each, every trial: withdraw on A, read on B, grant again on A.
    const lanes = await Promise.all(
      Array.from({ length: 10 }, async (_, lane) => {
        const created = await api("POST", "/api/v1/patients", {
          base: a.url,
          token: doctorA,
          json: { displayName: `Réplique ${lane}`, email: `replica-${lane}-${randomUUID().slice(0, 6)}@test.nexus`, consents: { care: true } },
        });
        // Her first sign-in replaces the temporary password (it works once) by her own.
        const first = await api("POST", "/api/v1/tokens", {
          base: a.url,
          json: { email: created.body.account.email, password: created.body.account.temporaryPassword, newPassword: `replica-${randomUUID()}` },
        });
        if (first.status !== 201) throw new Error(`first sign-in: ${first.status}`);
        const patientToken = first.body.token as string;
        const imageId = await uploadImage(b.url, doctorB, created.body.id, image);
        return { patientId: created.body.id as string, patientToken, imageId };
      }),
    );
    const leaks: string[] = [];
    let trials = 0;
    await Promise.all(
      lanes.map(async ({ patientId, patientToken, imageId }) => {
        for (let i = 0; i < 100; i++) {
          const consent = `/api/v1/patients/${patientId}/consents/care`;
          expect((await api("PUT", consent, { base: a.url, token: patientToken, json: { granted: false } })).status).toBe(200);
          const read = await fetch(`${b.url}/api/v1/images/${imageId}`, { headers: { Authorization: `Bearer ${doctorB}` } });
          await read.arrayBuffer();
          if (read.status !== 403) leaks.push(`${patientId} trial ${i}: ${read.status}`);
          expect((await api("PUT", consent, { base: a.url, token: patientToken, json: { granted: true } })).status).toBe(200);
          trials++;
        }
      }),
    );
    expect(trials).toBe(1000);
    expect(leaks).toEqual([]);
  }, 300_000);

  it("a session opened on A works on B", async () => {
    const page = await fetch(`${a.url}/connexion`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1]!;
    const cookies = page.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    const login = await fetch(`${a.url}/connexion`, {
      method: "POST",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: cookies },
      body: new URLSearchParams({ email: "doctor@demo.nexus", password: PASSWORD, csrf }),
    });
    expect(login.status).toBe(302);
    const session = login.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    const onB = await fetch(`${b.url}/patients`, { headers: { Cookie: session }, redirect: "manual" });
    expect(onB.status).toBe(200);
    expect(await onB.text()).toContain("Mes patients");
  });

  it("concurrent audit writes through both replicas keep the chain valid", async () => {
    const tokens = [await token(a.url, "doctor@demo.nexus"), await token(b.url, "doctor@demo.nexus")];
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => api("GET", "/api/v1/patients", { base: i % 2 ? b.url : a.url, token: tokens[i % 2] })),
    );
    const admin = await token(b.url, "admin@demo.nexus");
    const verify = await api("GET", "/api/v1/audit/verify", { base: a.url, token: admin });
    expect(verify.status).toBe(200);
    expect(verify.body.ok).toBe(true);
  }, 120_000);

  it("killing a replica mid-upload leaves nothing half-written, and Caddy routes to the other", async () => {
    const doctor = await token(a.url, "doctor@demo.nexus");
    const created = await api("POST", "/api/v1/patients", { base: a.url, token: doctor, json: { displayName: "Coupure", consents: { care: true } } });
    const patientId = created.body.id as string;
    const file = await bigJpeg(24 * MiB);
    const boundary = `----replica${randomUUID()}`;
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="coupure.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const target = new URL(`/api/v1/patients/${patientId}/images`, a.url);
    // Send 12 MiB of the file to A, then kill A.
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        headers: {
          Authorization: `Bearer ${doctor}`,
          "Content-Type": `multipart/form-data; boundary=${boundary}`,
          "Content-Length": String(head.length + file.length + tail.length),
        },
      });
      req.on("error", () => resolve());
      req.on("response", () => resolve());
      req.write(head);
      req.write(file.subarray(0, 12 * MiB), () => {
        setTimeout(() => {
          a.child.kill("SIGKILL");
          req.destroy();
        }, 300);
      });
    });
    await new Promise((r) => a.child.exitCode !== null || a.child.signalCode !== null ? r(null) : a.child.once("exit", r));

    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const rows = (await db.query<{ storage_key: string }>("select storage_key from images where erased_at is null")).rows.map((r) => r.storage_key).sort();
    await db.end();
    const objects: string[] = [];
    for await (const key of store.list("images/")) objects.push(key);
    objects.sort();
    // Every row has its object and every object its row.
    expect(objects).toEqual(rows);

    // Caddy skips the dead replica: every request through the front is answered by B.
    const front200 = await Promise.all(
      Array.from({ length: 20 }, () => api("GET", "/api/v1/patients", { base: front, token: doctor }).then((r) => r.status)),
    );
    expect(front200.every((s) => s === 200)).toBe(true);
  }, 120_000);
});
