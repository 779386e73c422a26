/**
 * The database connection: PostgreSQL through `pg` when DATABASE_URL is set, otherwise embedded PGlite persisted
 * under DATA_DIR. Both run the same SQL migrations from drizzle/ at start-up.
 */
import { mkdirSync } from "node:fs";
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
  close(): Promise<void>;
}

/** drizzle/ sits at the project root, next to package.json; the server build runs from build/server/. */
function migrationsFolder(): string {
  if (process.env.NEXUS_MIGRATIONS_DIR) return process.env.NEXUS_MIGRATIONS_DIR;
  return path.resolve(process.cwd(), "drizzle");
}

export async function openDatabase(options: { url?: string; dataDir: string }): Promise<Connection> {
  if (options.url) {
    const pool = new pg.Pool({ connectionString: options.url, max: 10 });
    pool.on("error", (err) => console.error("[db] idle client error:", err.message));
    const db = drizzlePg(pool, { schema });
    await migratePg(db, { migrationsFolder: migrationsFolder() });
    return {
      db,
      kind: "postgres",
      ping: async () => void (await pool.query("select 1")),
      close: () => pool.end(),
    };
  }
  const dir = path.resolve(options.dataDir, "pglite");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const client = await PGlite.create(dir);
  // Both drivers expose the same query builder; the cast keeps one Database type for the domain code.
  const db = drizzlePglite(client, { schema }) as unknown as Database;
  await migratePglite(db as unknown as Parameters<typeof migratePglite>[0], { migrationsFolder: migrationsFolder() });
  return {
    db,
    kind: "pglite",
    ping: async () => void (await client.query("select 1")),
    close: () => client.close(),
  };
}

export const connection = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR });
export const db = connection.db;
export { schema };
