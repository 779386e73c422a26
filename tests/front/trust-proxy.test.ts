/**
 * The app believes X-Forwarded-For only from the proxy. The test server trusts loopback (TRUST_PROXY's default,
 * right for Caddy on the same machine), and every test client is on loopback too, so it cannot show a refusal.
 * This file starts a second app the way docker-compose.yml runs it — TRUST_PROXY set to the proxy's one address
 * (there Caddy's fixed address on the internal network; here 127.0.0.1) — and talks to it from another loopback
 * address (127.0.0.5), like a client that reached the app without going through Caddy. The second app has an
 * embedded database of its own, so this runs the same on PGlite and PostgreSQL.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_PASSWORD } from "../helpers/http";
import { startServer, type RunningServer } from "../helpers/server";

const PROXY = "127.0.0.1";
const OUTSIDER = "127.0.0.5";

function call(
  base: string,
  method: string,
  pathname: string,
  options: { token?: string; json?: unknown; headers?: Record<string, string>; from?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: any }> {
  const body = options.json === undefined ? undefined : Buffer.from(JSON.stringify(options.json));
  return new Promise((resolve, reject) => {
    const req = http.request(
      base + pathname,
      {
        method,
        localAddress: options.from,
        agent: false,
        headers: {
          ...(body ? { "Content-Type": "application/json", "Content-Length": String(body.length) } : {}),
          ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("forwarded headers are believed only from the proxy's address (TRUST_PROXY as in docker-compose.yml)", () => {
  let app: RunningServer | undefined;
  let base = "";
  let dataDir = "";
  let admin = "";

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "nexus-trust-"));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      PORT: "0",
      TRUST_PROXY: PROXY,
      DATA_DIR: dataDir,
      NEXUS_DEMO: "1",
      NEXUS_ACCESS_LOG: "0",
      NEXUS_MASTER_KEYS: `trust:${randomBytes(32).toString("base64")}`,
    };
    for (const name of ["DATABASE_URL", "S3_ENDPOINT", "S3_HOST", "MINIO_ENDPOINT"]) delete env[name];
    app = await startServer(env, { timeoutMs: 50_000 });
    base = app.url;
    const login = await call(base, "POST", "/api/v1/tokens", { json: { email: "admin@demo.nexus", password: DEMO_PASSWORD }, from: PROXY });
    expect(login.status).toBe(201);
    admin = login.json.token;
  }, 60_000);

  afterAll(async () => {
    await app?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function recordedIp(requestId: unknown): Promise<string | null> {
    const audit = await call(base, "GET", `/api/v1/audit?requestId=${String(requestId)}`, { token: admin, from: PROXY });
    expect(audit.status).toBe(200);
    expect(audit.json.events).toHaveLength(1);
    return audit.json.events[0].ip;
  }

  it("ignores X-Forwarded-For from any other address: the audit records the real peer", async () => {
    const res = await call(base, "GET", "/api/v1/me", { token: admin, from: OUTSIDER, headers: { "X-Forwarded-For": "203.0.113.9" } });
    expect(res.status).toBe(200);
    expect(await recordedIp(res.headers["x-request-id"])).toBe(OUTSIDER);
  });

  it("believes X-Forwarded-For from the proxy's address: the audit records the client behind it", async () => {
    const res = await call(base, "GET", "/api/v1/me", { token: admin, from: PROXY, headers: { "X-Forwarded-For": "198.51.100.7" } });
    expect(res.status).toBe(200);
    expect(await recordedIp(res.headers["x-request-id"])).toBe("198.51.100.7");
  });

  it("ignores X-Forwarded-Proto from any other address (no Secure cookie over plain HTTP)", async () => {
    const page = await call(base, "GET", "/connexion", { from: OUTSIDER, headers: { "X-Forwarded-Proto": "https" } });
    const cookies = page.headers["set-cookie"] ?? [];
    expect(cookies.length).toBeGreaterThan(0);
    for (const cookie of cookies) expect(cookie).not.toMatch(/;\s*Secure/i);
    const proxied = await call(base, "GET", "/connexion", { from: PROXY, headers: { "X-Forwarded-Proto": "https" } });
    for (const cookie of proxied.headers["set-cookie"] ?? []) expect(cookie).toMatch(/;\s*Secure/i);
  });
});
