/**
 * A Nexus server of a test file's own (the production build), on a throwaway PostgreSQL database when the run has
 * one (DATABASE_URL), else on PGlite in a temp directory; removed again by `stop()`. For tests that watch the
 * server process itself (memory, descriptors) or break its database.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { inject } from "vitest";
import { startServer, type RunningServer } from "./server";

export interface OwnServer extends RunningServer {
  /** The server's own database (PostgreSQL), or null on PGlite. */
  databaseName: string | null;
  /** A connection string to the cluster's `postgres` database, for administration (PostgreSQL only). */
  adminUrl: string | null;
  dataDir: string;
}

export function postgresAdminUrl(): string | null {
  const unit = inject("unitDatabaseUrl");
  if (!unit) return null;
  const url = new URL(unit);
  url.pathname = "/postgres";
  return url.toString();
}

export async function adminQuery(adminUrl: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/** `localStore`: the local object store even when the run has S3; `pglite`: the embedded database even with PostgreSQL. */
/** The environment of a test's own server: any free port on loopback, the demo accounts, the run's master key. */
export function serverEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PORT: "0",
    HOST: "127.0.0.1",
    NEXUS_DEMO: "1",
    NEXUS_ACCESS_LOG: "0",
    DATA_DIR: dataDir,
    NEXUS_MASTER_KEYS: inject("masterKeys"),
    ...extra,
  };
}

export async function startOwnServer(extraEnv: Record<string, string> = {}, options: { localStore?: boolean; pglite?: boolean } = {}): Promise<OwnServer> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-own-"));
  const adminUrl = options.pglite ? null : postgresAdminUrl();
  let databaseName: string | null = null;
  const env = serverEnv(dataDir, extraEnv);
  env.NODE_ENV = "production";
  if (options.localStore) for (const name of ["S3_HOST", "S3_PORT", "S3_ENDPOINT", "S3_ACCESS", "S3_SECRET"]) delete env[name];
  if (adminUrl) {
    databaseName = `nexus_own_${Date.now().toString(36)}_${process.pid}`;
    await adminQuery(adminUrl, `create database "${databaseName}"`);
    const url = new URL(adminUrl);
    url.pathname = `/${databaseName}`;
    env.DATABASE_URL = url.toString();
  } else {
    delete env.DATABASE_URL;
  }
  const server = await startServer(env);
  return {
    ...server,
    databaseName,
    adminUrl,
    dataDir,
    stop: async () => {
      await server.stop();
      if (adminUrl && databaseName) await adminQuery(adminUrl, `drop database if exists "${databaseName}" with (force)`);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Resident memory of a process, in MiB (Linux /proc). */
export async function rssMiB(pid: number): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}
