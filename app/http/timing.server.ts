/**
 * Per-request stage timings for the benchmarks (issue 15), off unless NEXUS_TIMING=1. server.mjs then runs each
 * request inside an AsyncLocalStorage holding a plain object (shared through a global symbol: the server and the
 * app build are separate module graphs) and writes the stages into the request's access-log line when it finishes:
 * auth (session or token check), policy, domain (the route's own work: database, key unwrap, first segment),
 * audit (record() calls), decrypt (AES-GCM, also while streaming). What remains of the total is render/stream.
 */
import type { AsyncLocalStorage } from "node:async_hooks";

export type Stage = "auth" | "policy" | "domain" | "audit" | "decrypt";

const storage = (globalThis as Record<symbol, unknown>)[Symbol.for("nexus.timing")] as
  | AsyncLocalStorage<Partial<Record<Stage, number>>>
  | undefined;

/** True when timings are collected (NEXUS_TIMING=1 on server.mjs). */
export const timingEnabled = storage !== undefined;

/** Adds `ms` to a stage of the current request (no-op when timings are off or outside a request). */
export function addTiming(stage: Stage, ms: number): void {
  const t = storage?.getStore();
  if (t) t[stage] = (t[stage] ?? 0) + ms;
}

/** Runs `fn` and adds its duration to `stage`. */
export async function timed<T>(stage: Stage, fn: () => Promise<T>): Promise<T> {
  if (!timingEnabled) return fn();
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    addTiming(stage, performance.now() - t0);
  }
}
