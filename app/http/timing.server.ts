/**
 * Per-request stage timings for the benchmarks (issue 15), off unless NEXUS_TIMING=1. server.mjs then gives each
 * request a plain object (through the load context; `requestInfo()` carries it as `RequestInfo.timing`) and writes
 * the stages into the request's access-log line when it finishes: auth (session or token check), policy, domain (the
 * route's own work: database, key unwrap, first segment), audit (record() calls), decrypt (AES-GCM, also while
 * streaming), store (an upload's encryption and durable write into the object store: part of domain). What remains
 * of the total is render/stream.
 *
 * The object is passed explicitly, not through an AsyncLocalStorage: on Node 20 an AsyncLocalStorage turns on
 * promise hooks for every promise of the process, ≈ 0.18 ms of CPU per JSON request (a third of it), so the
 * benchmark that reads these timings would have measured a slower server than the one it describes.
 */
export type Stage = "auth" | "policy" | "domain" | "audit" | "decrypt" | "store";

/** One request's stages in ms; undefined when timings are off. */
export type Timing = Partial<Record<Stage, number>>;

/** Adds `ms` to a stage (no-op when timings are off). */
export function addTiming(timing: Timing | undefined, stage: Stage, ms: number): void {
  if (timing) timing[stage] = (timing[stage] ?? 0) + ms;
}

/** Runs `fn` and adds its duration to `stage`. */
export async function timed<T>(timing: Timing | undefined, stage: Stage, fn: () => Promise<T>): Promise<T> {
  if (!timing) return fn();
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    addTiming(timing, stage, performance.now() - t0);
  }
}
