/**
 * Runs before each test file: domain tests that import server modules get a database separate from the running
 * server's — the run's second throwaway PostgreSQL database, or a fresh PGlite directory for this file.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, inject } from "vitest";

const unitUrl = inject("unitDatabaseUrl");
if (unitUrl) {
  process.env.DATABASE_URL = unitUrl;
} else {
  delete process.env.DATABASE_URL;
}
const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-unit-"));
process.env.DATA_DIR = dataDir;
// Removed after the file's tests (PGlite's directory, the local object store): a run leaves no /tmp/nexus-unit-*.
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
process.env.NEXUS_DEMO = "0";
process.env.NEXUS_MASTER_KEYS = inject("masterKeys");
