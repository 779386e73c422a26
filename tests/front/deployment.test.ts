/**
 * The deployment files, checked without a Docker engine: the production Caddyfile is valid for Caddy (Debian's
 * 2.6.2 here) and keeps its promises; docker-compose.yml is valid for docker-compose 1.29 with .env.example and only
 * Caddy is reachable from outside; the Dockerfile keeps the shape the README describes. Each part is skipped, with
 * one line, when its tool is absent (.ci/run installs caddy and docker-compose).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CADDY } from "../../scripts/start-https";

const hasCaddy = existsSync(CADDY);
const composeBin = spawnSync("sh", ["-c", "command -v docker-compose"], { encoding: "utf8" }).stdout.trim();
if (!hasCaddy) console.log(`skipped: no caddy at ${CADDY}`);
if (!composeBin) console.log("skipped: no docker-compose (apt-get install docker-compose)");

const PRODUCTION_ENV = { NEXUS_DOMAIN: "nexus.hopital.example", NEXUS_ACME_EMAIL: "dsi@hopital.example" };

describe.skipIf(!hasCaddy)("production Caddyfile", () => {
  const adapt = () => {
    const run = spawnSync(CADDY, ["adapt", "--config", "Caddyfile", "--adapter", "caddyfile"], {
      env: { ...process.env, ...PRODUCTION_ENV },
      encoding: "utf8",
    });
    expect(run.status, run.stderr).toBe(0);
    return JSON.parse(run.stdout);
  };

  it("is valid for Caddy", () => {
    const run = spawnSync(CADDY, ["validate", "--config", "Caddyfile", "--adapter", "caddyfile"], {
      env: { ...process.env, ...PRODUCTION_ENV },
      encoding: "utf8",
    });
    expect(run.status, run.stderr).toBe(0);
  });

  it("serves the domain over TLS 1.2–1.3 with automatic certificates and the ACME e-mail, HTTP/1.1 and HTTP/2", () => {
    const config = adapt();
    const json = JSON.stringify(config);
    const server = Object.values(config.apps.http.servers as Record<string, any>)[0];
    expect(server.listen).toEqual([":443"]);
    expect(server.protocols).toEqual(["h1", "h2"]);
    expect(server.automatic_https?.disable_redirects, "the automatic HTTP → HTTPS redirect stays on").toBeUndefined();
    expect(server.tls_connection_policies[0]).toMatchObject({ match: { sni: ["nexus.hopital.example"] }, protocol_min: "tls1.2", protocol_max: "tls1.3" });
    // Let's Encrypt (ACME's default directory) with the e-mail, and nothing else: no local CA, no ZeroSSL fallback.
    expect(config.apps.tls.automation.policies).toEqual([
      { subjects: ["nexus.hopital.example"], issuers: [{ module: "acme", email: "dsi@hopital.example" }] },
    ]);
    expect(json).toContain('"dynamic_upstreams":{"name":"app","port":"3000"');
    expect(json).toContain("Strict-Transport-Security");
    expect(json).toContain("frame-ancestors 'none'");
  });
});

describe.skipIf(!composeBin)("docker-compose.yml", () => {
  const config = (envFile = ".env.example") => spawnSync(composeBin, ["-f", "docker-compose.yml", "--env-file", envFile, "config"], { encoding: "utf8" });

  /** The resolved configuration, as JSON (docker-compose 1.29 prints YAML; its own Python reads it). */
  function resolved(): any {
    const run = config();
    expect(run.status, run.stderr).toBe(0);
    const toJson = spawnSync("python3", ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"], {
      input: run.stdout,
      encoding: "utf8",
    });
    expect(toJson.status, toJson.stderr).toBe(0);
    return JSON.parse(toJson.stdout);
  }

  it("is valid with .env.example", () => {
    const run = spawnSync(composeBin, ["-f", "docker-compose.yml", "--env-file", ".env.example", "config", "-q"], { encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
  });

  it("publishes only Caddy (80, 443) and MinIO's console on the host's loopback; the rest is on an internal network", () => {
    const c = resolved();
    // docker-compose 1.29 prints "80:80" as {published, target} and "127.0.0.1:9001:9001" as a string.
    const ports = (name: string) =>
      (c.services[name].ports ?? []).map((p: string | { host_ip?: string; published: number; target: number }) =>
        typeof p === "string" ? p.replace(/\/tcp$/, "") : `${p.host_ip ?? ""}:${p.published}:${p.target}`,
      );
    expect(ports("caddy").sort()).toEqual([":443:443", ":80:80"].sort());
    expect(ports("minio")).toEqual(["127.0.0.1:9001:9001"]);
    expect(ports("app")).toEqual([]);
    expect(ports("postgres")).toEqual([]);
    expect(c.networks.backend.internal).toBe(true);
    expect(Object.keys(c.services.app.networks)).toEqual(["backend"]);
    expect(Object.keys(c.services.postgres.networks)).toEqual(["backend"]);
    expect(Object.keys(c.services.caddy.networks).sort()).toEqual(["backend", "edge"]);
  });

  it("lets the app believe forwarded headers from Caddy's fixed address only, and gives it every secret from .env", () => {
    const c = resolved();
    const env = c.services.app.environment;
    expect(env.TRUST_PROXY).toBe(c.services.caddy.networks.backend.ipv4_address);
    expect(env).toMatchObject({ HOST: "0.0.0.0", PORT: "3000", S3_ENDPOINT: "http://minio:9000", S3_BUCKET: "sante-data", NEXUS_DEMO: "0" });
    expect(env.DATABASE_URL).toMatch(/^postgres:\/\/[^:]+:[^@]+@postgres:5432\/\w+$/);
    for (const name of ["SESSION_SECRET", "PSEUDONYM_SECRET", "AUDIT_CHECKPOINT_KEY", "NEXUS_MASTER_KEYS", "S3_ACCESS_KEY", "S3_SECRET_KEY"]) expect(env[name], name).toBeTruthy();
    for (const name of ["postgres", "minio"]) expect(c.services[name].healthcheck?.test, `${name} healthcheck`).toBeTruthy();
    expect(c.services.app.depends_on).toEqual({ postgres: { condition: "service_healthy" }, minio: { condition: "service_healthy" } });
    for (const volume of ["caddy-data", "postgres-data", "minio-data"]) expect(c.volumes, volume).toHaveProperty(volume);
  });

  it("refuses to run while a secret is missing from .env", async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(`${tmpdir()}/nexus-env-`);
    try {
      const file = `${dir}/.env`;
      writeFileSync(file, readFileSync(".env.example", "utf8").replace(/^SESSION_SECRET=.*$/m, ""));
      const run = config(file);
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain("SESSION_SECRET");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Dockerfile", () => {
  const text = readFileSync("Dockerfile", "utf8");
  const stages = text.split(/^FROM /m).slice(1);
  const final = stages[stages.length - 1]!;

  it("is multi-stage, skips onnxruntime's download, builds the demo model, and ships production dependencies only", () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(text).toMatch(/ONNXRUNTIME_NODE_INSTALL=skip/);
    expect(text).toMatch(/npm run model:demo/);
    const prodDeps = stages.find((s) => /npm install --omit=dev/.test(s));
    expect(prodDeps, "a stage installs production dependencies only").toBeTruthy();
    const stageName = /^\S+ AS (\S+)/.exec(prodDeps!)![1];
    expect(final).toContain(`COPY --from=${stageName} /app/node_modules`);
    expect(final).not.toMatch(/npm (install|ci)/);
  });

  it("runs as a non-root user with a HEALTHCHECK on /healthz", () => {
    const user = /^USER (\S+)/m.exec(final);
    expect(user?.[1]).toBeTruthy();
    expect(["root", "0"]).not.toContain(user![1]);
    expect(final).toMatch(/^HEALTHCHECK .*\/healthz/ms);
    expect(final).toMatch(/^CMD \["node", "server.mjs"\]/m);
  });
});
