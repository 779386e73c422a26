/** Start-up work after the database is open and migrated: demo data, housekeeping, what to print. */
import { pruneExpiredSessions } from "./accounts/session.server";
import { seedDemo, type DemoAccount } from "./accounts/demo.server";
import { startCheckpoints } from "./audit/checkpoint.server";
import { config } from "./config.server";
import { connection } from "./db/db.server";
import { getEngine } from "./inference/inference.server";
import { vault } from "./vault/instance.server";
import { dimseOptionsFromConfig, startDimse } from "./dimse/scp.server";
import { startPushWorker } from "./results/outbox.server";

export interface BootInfo {
  database: "postgres" | "pglite";
  dataDir: string;
  demoAccounts: DemoAccount[];
  demoPassword: string | null;
  storage: string;
  model: string;
  /** The DIMSE SCP, when DICOM_PORT is set: "AE NEXUS on 127.0.0.1:11112". */
  dicom: string | null;
  /** Where final results are pushed (PACS_PUSH), when set: "PACS@10.0.0.5:104 (calling NEXUS)". */
  pacsPush: string | null;
}

/**
 * With WEB_CONCURRENCY workers (cluster.mjs), the leader alone does what must happen once: demo accounts, the DIMSE
 * listener, audit checkpoints, the PACS push worker. A single process is its own leader.
 */
const leader = process.env.NEXUS_WORKER_ROLE !== "follower";

export async function boot(): Promise<BootInfo> {
  if (leader) await pruneExpiredSessions();
  // Storage down at start-up is not fatal: /readyz reports it and uploads answer 503 until it is back.
  await vault.store.ensureReady().catch((err: Error) => console.warn(`[vault] object store not ready: ${err.message}`));
  // The model is loaded (and the demo model built on first start) before listening: a wrong model directory,
  // inconsistent classes.json or a tampered model file stops the start with its reason (ModelError).
  const engine = await getEngine();
  const demoAccounts = config.demo && leader ? await seedDemo(config.NEXUS_DEMO_PASSWORD) : [];
  // DIMSE (C-ECHO, C-STORE) only when DICOM_PORT is set; a port already taken stops the start with its reason.
  const dimse = leader ? dimseOptionsFromConfig() : null;
  const scp = dimse ? await startDimse(dimse) : null;
  // Signed checkpoints of the audit chain's head, outside the database (store and log), every AUDIT_CHECKPOINT_SECONDS.
  if (leader) startCheckpoints();
  // Results out: final reports queued in the outbox go to PACS_PUSH by C-STORE, retried with back-off (a restart
  // picks up where the last process stopped: the queue is a table).
  const push = leader ? startPushWorker() : null;
  return {
    database: connection.kind,
    dataDir: config.DATA_DIR,
    demoAccounts,
    demoPassword: config.demo ? config.NEXUS_DEMO_PASSWORD : null,
    storage: `${vault.store.kind} (${vault.store.location})`,
    dicom: scp && dimse ? `AE ${dimse.aeTitle} on ${dimse.host}:${scp.port}` : null,
    pacsPush: push ? `${config.PACS_PUSH} (calling ${config.DICOM_AE_TITLE})` : null,
    model: `${engine.model.name} ${engine.model.version}${engine.model.clinical ? "" : " — modèle de démonstration, non validé cliniquement"}`,
  };
}
