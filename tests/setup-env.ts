/**
 * Runs before each test file: domain tests that import server modules get a database separate from the running
 * server's — the run's second throwaway PostgreSQL database, or a fresh PGlite directory for this file.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { inject } from "vitest";

const unitUrl = inject("unitDatabaseUrl");
if (unitUrl) {
  process.env.DATABASE_URL = unitUrl;
} else {
  delete process.env.DATABASE_URL;
}
process.env.DATA_DIR = mkdtempSync(path.join(tmpdir(), "nexus-unit-"));
process.env.NEXUS_DEMO = "0";
process.env.NEXUS_MASTER_KEYS = inject("masterKeys");
