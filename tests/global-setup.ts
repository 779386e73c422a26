/**
 * Starts one real Nexus server (the production build, `node server.mjs`) for the whole run, on a database of its
 * own: a throwaway PostgreSQL database when DATABASE_URL is set, an embedded PGlite directory otherwise. Domain
 * tests that import server modules get a second, separate database (see tests/setup-env.ts).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { startServer, type RunningServer } from "./helpers/server";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    unitDatabaseUrl: string | null;
    /** The server's DATA_DIR (its local object store lives in `objects/` when no S3 endpoint is set). */
    serverDataDir: string;
    /** The server's master keys, as NEXUS_MASTER_KEYS. */
    masterKeys: string;
  }
}

let server: RunningServer | undefined;
const cleanups: (() => Promise<void> | void)[] = [];

async function throwawayDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  await admin.end();
  cleanups.push(async () => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`drop database if exists "${name}" with (force)`);
    await c.end();
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export default async function setup(project: TestProject) {
  if (!existsSync("build/server/index.js")) {
    throw new Error("No production build: run `npm test` (it builds first) or `npm run build`.");
  }
  const stamp = `${Date.now().toString(36)}_${process.pid}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: "production",
    PORT: "0",
    HOST: "127.0.0.1",
    NEXUS_DEMO: "1",
    NEXUS_ACCESS_LOG: "0",
    LOGIN_MAX_FAILURES: "5",
    LOGIN_LOCK_MINUTES: "15",
  };
  const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-test-"));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  env.DATA_DIR = dataDir;
  // A throwaway master key for this run (on a real deployment it comes from a secret store).
  const masterKeys = `test-${Date.now().toString(36)}:${randomBytes(32).toString("base64")}`;
  env.NEXUS_MASTER_KEYS = masterKeys;

  let unitDatabaseUrl: string | null = null;
  if (process.env.DATABASE_URL) {
    env.DATABASE_URL = await throwawayDatabase(process.env.DATABASE_URL, `nexus_test_${stamp}_server`);
    unitDatabaseUrl = await throwawayDatabase(process.env.DATABASE_URL, `nexus_test_${stamp}_unit`);
  } else {
    delete env.DATABASE_URL;
  }
  server = await startServer(env, { echo: Boolean(process.env.NEXUS_TEST_SERVER_LOG) });
  const baseUrl = server.url;
  project.provide("baseUrl", baseUrl);
  project.provide("unitDatabaseUrl", unitDatabaseUrl);
  project.provide("serverDataDir", dataDir);
  project.provide("masterKeys", masterKeys);
  const storage = env.S3_HOST || env.S3_ENDPOINT ? `S3 ${env.S3_HOST ?? env.S3_ENDPOINT}:${env.S3_PORT ?? ""}` : "local directory";
  console.log(`[nexus tests] server ${baseUrl} on ${env.DATABASE_URL ? "PostgreSQL" : "PGlite"}, images in ${storage}`);
  if (!env.S3_HOST && !env.S3_ENDPOINT) console.log("skipped: no S3 endpoint for the server (integration tests use the local store)");

  return async () => {
    await server?.stop();
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
}
