/** Start-up work after the database is open and migrated: demo data, housekeeping, what to print. */
import { pruneExpiredSessions } from "./accounts/session.server";
import { seedDemo, type DemoAccount } from "./accounts/demo.server";
import { config } from "./config.server";
import { connection } from "./db/db.server";

export interface BootInfo {
  database: "postgres" | "pglite";
  dataDir: string;
  demoAccounts: DemoAccount[];
  demoPassword: string | null;
}

export async function boot(): Promise<BootInfo> {
  await pruneExpiredSessions();
  const demoAccounts = config.demo ? await seedDemo(config.NEXUS_DEMO_PASSWORD) : [];
  return {
    database: connection.kind,
    dataDir: config.DATA_DIR,
    demoAccounts,
    demoPassword: config.demo ? config.NEXUS_DEMO_PASSWORD : null,
  };
}
