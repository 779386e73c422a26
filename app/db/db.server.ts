/**
 * The database connection: PostgreSQL through `pg` when DATABASE_URL is set, otherwise embedded PGlite persisted
 * under DATA_DIR. Both run the same SQL migrations from drizzle/ at start-up — unless NEXUS_MIGRATE=0, where the
 * owner applied them beforehand (`npm run db:migrate`) and the server, running as the unprivileged `nexus_app`
 * role, only checks that none is pending.
 */
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { config } from "../config.server";
import * as schema from "./schema";

export type Database = ReturnType<typeof drizzlePg<typeof schema>>;

export interface Connection {
  db: Database;
  kind: "postgres" | "pglite";
  ping(): Promise<void>;
  /**
   * Runs a statement drizzle cannot prepare (a function call, e.g. the audit append) as a named prepared statement
   * on PostgreSQL — parsed and planned once per connection — and as a plain query on PGlite; returns its rows.
   */
  prepared<T>(name: string, text: string, values: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

/** drizzle/ sits at the project root, next to package.json; the server build runs from build/server/. */
function migrationsFolder(): string {
  return path.resolve(process.cwd(), "drizzle");
}

/** The migrations in drizzle/, oldest first (drizzle-kit's journal). */
export function migrations(): { tag: string; when: number }[] {
  return (JSON.parse(readFileSync(path.join(migrationsFolder(), "meta", "_journal.json"), "utf8")) as { entries: { tag: string; when: number }[] })
    .entries;
}

/**
 * The migrations of drizzle/ that this database has not applied. drizzle's migrator applies every journal entry
 * newer than the last one it recorded, so that is what is pending.
 */
async function pendingMigrations(query: (sql: string) => Promise<{ rows: unknown[] }>): Promise<string[]> {
  let last = -1;
  try {
    const { rows } = await query("select coalesce(max(created_at), -1)::text as last from drizzle.__drizzle_migrations");
    last = Number((rows[0] as { last: string }).last);
  } catch (err) {
    // No migration table yet (an empty database) means everything is pending; anything else is the real problem.
    if ((err as { code?: string }).code !== "42P01" && (err as { code?: string }).code !== "3F000") throw err;
  }
  return migrations()
    .filter((e) => e.when > last)
    .map((e) => e.tag);
}

/** Migrates, or with NEXUS_MIGRATE=0 checks that nothing is pending; closes the connection when that fails. */
async function prepareSchema(
  migrate: boolean,
  driver: { migrate(): Promise<void>; query: Parameters<typeof pendingMigrations>[0]; close(): Promise<void> },
): Promise<void> {
  try {
    if (migrate) return await driver.migrate();
    const pending = await pendingMigrations(driver.query);
    if (pending.length > 0) {
      throw new Error(
        `NEXUS_MIGRATE=0 but the database is behind: ${pending.length} migration(s) pending (${pending.join(", ")}). ` +
          "Run `npm run db:migrate` as the database owner, then start again.",
      );
    }
  } catch (err) {
    await driver.close();
    throw err;
  }
}

interface DatabaseOptions {
  url?: string;
  dataDir: string;
  migrate: boolean;
  /** PostgreSQL only: the longest a statement waits for a lock, and runs (ms). */
  lockTimeoutMs: number;
  statementTimeoutMs: number;
}

async function openDatabase(options: DatabaseOptions): Promise<Connection> {
  if (options.url) {
    // Migrations run on a connection of their own, without the serving timeouts (a migration may wait for a lock
    // as long as it takes); the serving pool's sessions never wait forever: a held lock (the audit chain's, a row's)
    // or a runaway query ends with SQLSTATE 55P03 / 57014, which perform() answers 503 with Retry-After.
    const migrator = new pg.Pool({ connectionString: options.url, max: 1 });
    migrator.on("error", (err) => console.error("[db] idle client error:", err.message));
    await prepareSchema(options.migrate, {
      migrate: () => migratePg(drizzlePg(migrator, { schema }), { migrationsFolder: migrationsFolder() }),
      query: (sql) => migrator.query(sql),
      close: () => migrator.end(),
    });
    await migrator.end();
    const pool = new pg.Pool({
      connectionString: options.url,
      max: 10,
      lock_timeout: options.lockTimeoutMs,
      statement_timeout: options.statementTimeoutMs,
    });
    pool.on("error", (err) => console.error("[db] idle client error:", err.message));
    const db = drizzlePg(pool, { schema });
    return {
      db,
      kind: "postgres",
      ping: async () => void (await pool.query("select 1")),
      prepared: async <T,>(name: string, text: string, values: unknown[]) => (await pool.query({ name, text, values })).rows as T[],
      close: () => pool.end(),
    };
  }
  const dir = path.resolve(options.dataDir, "pglite");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const client = await PGlite.create(dir);
  // Both drivers expose the same query builder; the cast keeps one Database type for the domain code.
  const db = drizzlePglite(client, { schema }) as unknown as Database;
  await prepareSchema(options.migrate, {
    migrate: () => migratePglite(db as unknown as Parameters<typeof migratePglite>[0], { migrationsFolder: migrationsFolder() }),
    query: (sql) => client.query(sql),
    close: () => client.close(),
  });
  return {
    db,
    kind: "pglite",
    ping: async () => void (await client.query("select 1")),
    prepared: async <T,>(_name: string, text: string, values: unknown[]) => (await client.query<T>(text, values)).rows,
    close: () => client.close(),
  };
}

export const connection = await openDatabase({
  url: config.DATABASE_URL,
  dataDir: config.DATA_DIR,
  migrate: config.NEXUS_MIGRATE,
  lockTimeoutMs: config.DB_LOCK_TIMEOUT_MS,
  statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
});
export const db = connection.db;
export { schema };
