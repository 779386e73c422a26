/**
 * Operational logs are not the audit trail: a second server (own embedded database, access log on, a proxy address
 * that is not the test client's) shows that each request leaves one pino JSON line with its X-Request-Id, and that
 * no line carries a body, a query string, a password, a token or an id from the path; that X-Forwarded-For from
 * an untrusted peer is ignored in the audit event; and that the app's logger redacts what must never be logged.
 * The server also runs with NEXUS_TIMING=1 (the benchmarks' stage timings): an image read's line carries each stage,
 * an upload's its object store write.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { createLogger, logPath } from "../app/log.server";
import { DEMO_PASSWORD } from "./helpers/http";
import { png8 } from "./helpers/images";
import { startServer, type RunningServer } from "./helpers/server";

let server: RunningServer | undefined;
let base = "";
const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-logs-"));

beforeAll(async () => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: "production",
    PORT: "0",
    HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    NEXUS_DEMO: "1",
    NEXUS_ACCESS_LOG: "1",
    NEXUS_TIMING: "1",
    NEXUS_MASTER_KEYS: inject("masterKeys"),
    // The proxy is elsewhere: this client (loopback) may not set the client address.
    TRUST_PROXY: "10.9.8.7",
  };
  delete env.DATABASE_URL;
  server = await startServer(env);
  base = server.url;
}, 90_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The access-log lines written so far, parsed. */
function accessLines(): Record<string, unknown>[] {
  return server!.output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === "request");
}

describe("operational logs", () => {
  it("one JSON line per request with its request id; no body, query string, secret or id", async () => {
    const secretQuery = `secret-${randomUUID()}`;
    const patientId = randomUUID();
    const login = await fetch(`${base}/api/v1/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "admin@demo.nexus", password: DEMO_PASSWORD }),
    });
    expect(login.status).toBe(201);
    const { token } = (await login.json()) as { token: string };
    const probe = await fetch(`${base}/api/v1/patients/${patientId}/images?access_token=${secretQuery}`, {
      headers: { Authorization: `Bearer ${token}`, "X-Forwarded-For": "203.0.113.50" },
    });
    expect(probe.status).toBe(403);
    const page = await fetch(`${base}/connexion?redirectTo=${encodeURIComponent(`/patients/${patientId}`)}`);
    expect(page.status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));

    const lines = accessLines();
    const ids = [login, probe, page].map((r) => r.headers.get("X-Request-Id"));
    for (const id of ids) expect(lines.filter((l) => l.requestId === id), `log line of ${id}`).toHaveLength(1);
    const probeLine = lines.find((l) => l.requestId === ids[1])!;
    expect(probeLine).toMatchObject({ level: "info", service: "nexus", method: "GET", path: "/api/v1/patients/:id/images", status: 403 });
    expect(typeof probeLine.ms).toBe("number");
    expect(Number.isNaN(Date.parse(String(probeLine.time)))).toBe(false);
    expect(lines.find((l) => l.requestId === ids[2])).toMatchObject({ path: "/connexion", status: 200 });

    const text = server!.output();
    expect(text).not.toContain(secretQuery);
    expect(text).not.toContain(token);
    expect(text).not.toContain(patientId);
    for (const l of lines) {
      // (The demo password is printed once at start-up, by design of the demo mode; never in a request's line.)
      expect(JSON.stringify(l)).not.toContain(DEMO_PASSWORD);
      expect(String(l.path)).not.toMatch(/\?|[0-9a-f]{8}-[0-9a-f]{4}-/);
    }

    // The audit event of the probe has the real peer: X-Forwarded-For from a non-proxy is not believed.
    const audit = await fetch(`${base}/api/v1/audit?requestId=${ids[1]}`, { headers: { Authorization: `Bearer ${token}` } });
    const [event] = ((await audit.json()) as { events: { ip: string; patientId: string }[] }).events;
    expect(event!.ip).toMatch(/127\.0\.0\.1/);
    expect(event!.patientId).toBe(patientId);
  });

  it("with NEXUS_TIMING=1 an image read's line carries its stages (auth, policy, domain, audit, decrypt), an upload's its store", async () => {
    const login = await fetch(`${base}/api/v1/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "doctor@demo.nexus", password: DEMO_PASSWORD }),
    });
    const { token } = (await login.json()) as { token: string };
    const auth = { Authorization: `Bearer ${token}` };
    const patient = await fetch(`${base}/api/v1/patients`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ displayName: "Timing Test", consents: { care: true } }),
    });
    expect(patient.status).toBe(201);
    const { id: patientId } = (await patient.json()) as { id: string };
    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(await png8(256, 256))], { type: "image/png" }), "t.png");
    const upload = await fetch(`${base}/api/v1/patients/${patientId}/images`, { method: "POST", headers: auth, body: form });
    expect(upload.status).toBe(201);
    const { id: imageId } = (await upload.json()) as { id: string };
    const read = await fetch(`${base}/api/v1/images/${imageId}`, { headers: auth });
    expect(read.status).toBe(200);
    await read.arrayBuffer();
    await new Promise((r) => setTimeout(r, 200)); // lines are written in batches, within 100 ms

    const line = accessLines().find((l) => l.requestId === read.headers.get("X-Request-Id"));
    expect(line, "the read's access-log line").toBeDefined();
    const timing = line!.timing as Record<string, number>;
    for (const stage of ["auth", "policy", "domain", "audit", "decrypt"]) expect(timing[stage], stage).toBeGreaterThan(0);
    // Stages are parts of the request, measured inside it.
    expect(timing.auth! + timing.policy! + timing.domain!).toBeLessThanOrEqual(Number(line!.ms) + 0.1);
    expect(timing.store, "a read stores nothing").toBeUndefined();

    // The upload's encryption and durable write into the object store: a part of its domain stage.
    const stored = accessLines().find((l) => l.requestId === upload.headers.get("X-Request-Id"));
    const stages = stored!.timing as Record<string, number>;
    expect(stages.store, "store").toBeGreaterThan(0);
    expect(stages.store!).toBeLessThanOrEqual(stages.domain! + 0.01);
  });

  it("the app's logger redacts secrets and personal data, and paths lose ids and query strings", () => {
    let written = "";
    const sink = new Writable({
      write(chunk, _enc, done) {
        written += chunk.toString();
        done();
      },
    });
    const log = createLogger(sink);
    log.child({ requestId: "r-1" }).info(
      { password: "hunter2-secret", token: "tok-secret", user: { email: "x@y.fr", name: "Camille Dupont" }, count: 3 },
      "something happened",
    );
    const line = JSON.parse(written) as Record<string, any>;
    expect(line).toMatchObject({ level: "info", service: "nexus", requestId: "r-1", msg: "something happened", count: 3 });
    expect(written).not.toMatch(/hunter2|tok-secret|x@y\.fr|Camille/);
    expect(line.user).toEqual({ email: "[redacted]", name: "[redacted]" });
    expect(logPath(`/patients/${randomUUID()}/televersement?x=1`)).toBe("/patients/:id/televersement");
    expect(logPath(`/api/v1/share/${"a".repeat(43)}`)).toBe("/api/v1/share/:token");
  });
});
