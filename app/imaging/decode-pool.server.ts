/**
 * The one bounded pool of decode workers (worker_threads). Every image decode of the server — AI preprocessing,
 * DICOM previews, research renderings, and any later use — goes through {@link decode}:
 *
 * - at most DECODE_WORKERS decodes run at once, each in its own thread (the event loop only passes bytes);
 * - at most DECODE_QUEUE_LIMIT more wait; beyond that the caller gets 503 `decode_busy` with `Retry-After`;
 * - each decode checks the declared size (rows × columns × samples of the frame read) against
 *   DECODE_PIXEL_LIMIT_MP before decompressing anything → 422 `too_many_pixels`;
 * - a decode running longer than DECODE_TIMEOUT_SECONDS is stopped (its thread terminated, a new one started)
 *   → 422 `decode_timeout`.
 *
 * So memory is bounded by workers × budget, whatever arrives. Decisions: docs/decisions/2026-11-30-decode-pool.md.
 */
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { config } from "../config.server";
import type { DecodeJob, ReplyOf } from "./decode-protocol";
import { ImageError } from "./image-error";

export interface PoolSettings {
  workers: number;
  queueLimit: number;
  pixelLimitMp: number;
  timeoutMs: number;
}

/** From the configuration (app/config.server.ts, validated at start-up; README's table). */
export function settingsFromEnv(): PoolSettings {
  return {
    workers: config.DECODE_WORKERS ?? Math.min(2, Math.max(1, cpus().length - 1)),
    queueLimit: config.DECODE_QUEUE_LIMIT,
    pixelLimitMp: config.DECODE_PIXEL_LIMIT_MP,
    timeoutMs: config.DECODE_TIMEOUT_SECONDS * 1000,
  };
}

let settings = settingsFromEnv();

/** Tests and the benchmark change the limits (then the pool restarts with them). */
export function configureDecodePool(next: Partial<PoolSettings>): void {
  settings = { ...settings, ...next };
  void shutdownDecodePool();
}

export function decodePoolSettings(): Readonly<PoolSettings> {
  return settings;
}

/** The worker's entry: the built file next to the server bundle, else the TypeScript source through tsx. */
function workerScript(): { code: string; eval: true } | { file: string } {
  const here = import.meta.url;
  const built = new URL("decode-worker.mjs", here);
  if (!here.endsWith(".ts") && existsSync(fileURLToPath(built))) return { file: fileURLToPath(built) };
  const source = new URL("decode.worker.ts", here).href;
  return {
    eval: true,
    code: `import("tsx/esm/api").then((api) => api.tsImport(${JSON.stringify(source)}, ${JSON.stringify(here)}))`,
  };
}

/** Images above this size (width × height) retire their worker once decoded (see Slot). */
const RECYCLE_PIXELS = 20_000_000;

interface Pending {
  id: number;
  job: DecodeJob;
  resolve: (reply: unknown) => void;
  reject: (err: Error) => void;
}

class Slot {
  worker: Worker;
  current: Pending | undefined;
  timer: NodeJS.Timeout | undefined;
  dead = false;

  constructor(private readonly pool: Pool) {
    const script = workerScript();
    this.worker = "file" in script ? new Worker(script.file) : new Worker(script.code, { eval: true });
    this.worker.unref();
    this.worker.on("message", (msg: { id?: number; reply?: unknown; error?: ReturnType<ImageError["toJSON"]> }) => {
      const job = this.current;
      if (msg.id === undefined || !job || msg.id !== job.id) return;
      this.finish();
      if (msg.error) {
        const e = msg.error;
        job.reject(new ImageError(e.status, e.code, e.message, e.messageEn, e.headers));
      } else job.resolve(msg.reply);
      // WebAssembly memory never shrinks: after a large image, the thread is replaced to give its memory back.
      const size = msg.reply as { width?: number; height?: number } | undefined;
      if ((size?.width ?? 0) * (size?.height ?? 0) > RECYCLE_PIXELS) this.retire();
      this.pool.next();
    });
    this.worker.on("error", (err) => this.fail(new ImageError(422, "unreadable", `Image illisible : échec du décodeur (${err.message}).`, `Unreadable image: decoder failure (${err.message}).`)));
    this.worker.on("exit", () => this.fail(new ImageError(503, "decoder_stopped", "Décodeur arrêté : réessayez.", "Decoder stopped: retry.", { "Retry-After": "1" })));
  }

  private finish() {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.current = undefined;
    this.worker.unref();
  }

  /** The worker died or was stopped: its job fails, the slot is replaced. */
  private fail(err: Error) {
    if (this.dead) return;
    this.dead = true;
    const job = this.current;
    this.finish();
    job?.reject(err);
    this.pool.replace(this);
  }

  start(job: Pending) {
    this.current = job;
    this.worker.ref();
    this.timer = setTimeout(() => {
      const seconds = Math.round(settings.timeoutMs / 100) / 10;
      this.fail(
        new ImageError(
          422,
          "decode_timeout",
          `Image illisible : décodage interrompu après ${seconds} s (DECODE_TIMEOUT_SECONDS).`,
          `Unreadable image: decoding stopped after ${seconds} s (DECODE_TIMEOUT_SECONDS).`,
        ),
      );
      void this.worker.terminate();
    }, settings.timeoutMs);
    this.worker.postMessage({ id: job.id, job: job.job });
  }

  stop() {
    this.dead = true;
    return this.worker.terminate();
  }

  /** Leaves the pool (a new thread takes its place on demand) and ends its thread. */
  retire() {
    this.dead = true;
    this.pool.replace(this);
    void this.worker.terminate();
  }
}

class Pool {
  slots: Slot[] = [];
  queue: Pending[] = [];
  private ids = 0;

  constructor(readonly size: number, readonly queueLimit: number) {}

  run(job: DecodeJob): Promise<unknown> {
    const idle = this.idleSlot();
    if (!idle && this.queue.length >= this.queueLimit) {
      return Promise.reject(
        new ImageError(
          503,
          "decode_busy",
          "Trop d'images en cours de décodage : réessayez dans quelques secondes.",
          "Too many images being decoded: retry in a few seconds.",
          { "Retry-After": "2" },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const pending = { id: ++this.ids, job, resolve, reject };
      if (idle) idle.start(pending);
      else this.queue.push(pending);
    });
  }

  private idleSlot(): Slot | undefined {
    const idle = this.slots.find((s) => !s.current && !s.dead);
    if (idle) return idle;
    if (this.slots.length < this.size) {
      const slot = new Slot(this);
      this.slots.push(slot);
      return slot;
    }
    return undefined;
  }

  next() {
    while (this.queue.length > 0) {
      const slot = this.idleSlot();
      if (!slot) return;
      slot.start(this.queue.shift()!);
    }
  }

  replace(slot: Slot) {
    this.slots = this.slots.filter((s) => s !== slot);
    this.next();
  }

  async stop() {
    const slots = this.slots;
    this.slots = [];
    for (const job of this.queue.splice(0)) job.reject(new ImageError(503, "decoder_stopped", "Décodeur arrêté : réessayez.", "Decoder stopped: retry.", { "Retry-After": "1" }));
    await Promise.all(slots.map((s) => s.stop()));
  }
}

let pool: Pool | undefined;

/** Stops every worker (tests, shutdown); the next decode starts a new pool. */
export async function shutdownDecodePool(): Promise<void> {
  const current = pool;
  pool = undefined;
  await current?.stop();
}

/** Counts for the benchmark and /readyz-style diagnostics. */
export function decodePoolState() {
  return { running: pool?.slots.filter((s) => s.current).length ?? 0, queued: pool?.queue.length ?? 0 };
}

type JobInput<Op extends DecodeJob["op"]> = Omit<Extract<DecodeJob, { op: Op }>, "pixelLimit" | "op">;

/** Runs one decode in the pool (see the module comment for its limits and errors). */
export function decode<Op extends DecodeJob["op"]>(op: Op, job: JobInput<Op>): Promise<ReplyOf<Op>> {
  pool ??= new Pool(settings.workers, settings.queueLimit);
  if (job.bytes.length === 0) return Promise.reject(new ImageError(422, "unreadable", "Image illisible : fichier vide.", "Unreadable image: empty file."));
  return pool.run({ ...job, op, pixelLimit: Math.round(settings.pixelLimitMp * 1_000_000) } as DecodeJob) as Promise<ReplyOf<Op>>;
}
