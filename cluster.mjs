// One Nexus process per core (WEB_CONCURRENCY), with PostgreSQL only.
//
// Node serves a request on one thread; on a machine with several cores the other cores sit idle while it renders,
// decrypts and waits. With WEB_CONCURRENCY=n (or "auto": one per core) `node server.mjs` becomes a small primary
// process that forks n workers sharing the listening socket (node:cluster). Everything the workers share lives in
// PostgreSQL already — sessions, tokens, consent, throttling counters, the audit chain (appended under one advisory
// lock, as with replicas behind Caddy: docs/decisions/2026-11-30-cluster-workers.md) — so a request may land on any
// worker.
//
// One worker is the leader: it alone migrates the database, seeds the demo accounts, listens for DIMSE (DICOM_PORT),
// sends queued results to the PACS (PACS_PUSH) and writes the audit checkpoints; the others start once it listens,
// so they find the schema ready. A worker that dies is replaced (a dead leader by a new leader). SIGTERM or SIGINT
// stops the workers, then the primary.
import cluster from "node:cluster";
import { availableParallelism } from "node:os";

/** The number of processes asked for: WEB_CONCURRENCY = a count or "auto"; 1 without PostgreSQL or in dev. */
export function workerCount(env, dev) {
  const asked = (env.WEB_CONCURRENCY ?? "").trim();
  if (asked === "" || asked === "1") return 1;
  const n = asked === "auto" ? availableParallelism() : Number(asked);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    console.error(`Nexus cannot start: WEB_CONCURRENCY must be a number of processes (1–64) or "auto", not "${asked}"`);
    process.exit(1);
  }
  if (n > 1 && dev) {
    console.warn("WEB_CONCURRENCY is ignored with --dev: one process");
    return 1;
  }
  if (n > 1 && !env.DATABASE_URL) {
    console.warn("WEB_CONCURRENCY needs PostgreSQL (DATABASE_URL): the embedded PGlite database serves one process");
    return 1;
  }
  return n;
}

/** The role of this process when it is a worker: "leader", "follower" or null (no cluster). */
export const workerRole = cluster.isWorker ? (process.env.NEXUS_WORKER_ROLE ?? "follower") : null;

/** Runs the primary: forks the leader, then the followers once it listens; replaces dead workers. */
export function runPrimary(count) {
  let stopping = false;
  let leaderListening = false;
  const fork = (role) => {
    const worker = cluster.fork({ NEXUS_WORKER_ROLE: role });
    worker.nexusRole = role;
    worker.once("listening", () => {
      if (role !== "leader" || leaderListening) return;
      leaderListening = true;
      for (let i = 1; i < count; i++) fork("follower");
    });
    return worker;
  };
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    // A leader that could not start (configuration, database, model) has said why: the start fails.
    if (worker.nexusRole === "leader" && !leaderListening) process.exit(code || 1);
    console.error(`Nexus worker ${worker.process.pid} (${worker.nexusRole}) stopped (${signal ?? `code ${code}`}); starting another`);
    fork(worker.nexusRole);
  });
  fork("leader");
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => {
      stopping = true;
      const workers = Object.values(cluster.workers ?? {});
      if (workers.length === 0) process.exit(0);
      for (const w of workers) w?.process.kill("SIGTERM");
      setTimeout(() => process.exit(0), 6000).unref();
    });
  }
}
