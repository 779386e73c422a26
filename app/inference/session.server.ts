/**
 * The inference engine: one ONNX Runtime session, loaded once, owned by a dedicated worker thread.
 *
 * Why a worker: onnxruntime-node's `session.run()` returns a promise but runs the whole graph synchronously on the
 * calling thread (it only defers the start with `setImmediate`); DenseNet121 would block the server's event loop for
 * ≈ 35 ms per image (much more under load). In a worker, the main thread only copies the 600 KB input tensor and the
 * 200 KB feature map; ONNX Runtime's intra-op thread pool (one thread per core) does the work.
 *
 * Requests are served one at a time (each one already uses every core) from a bounded queue: when `maxQueue`
 * requests are waiting or running, the next one is refused at once with 503 and `Retry-After: 2` rather than
 * piling up latency and memory.
 */
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { HttpError } from "../http/errors.server";
import type { GradCamShape } from "./gradcam.server";
import type { ModelCard } from "./model-card";
import { ModelError, type LoadedModel } from "./model.server";
import { keepOnnxRuntimeOffline } from "./offline";

export interface ModelInfo {
  name: string;
  version: string;
  sha256: string;
  clinical: boolean;
  /** Labels in output order (classes.json). */
  classes: string[];
  card: ModelCard;
  dir: string;
}

export interface Prediction {
  /** Probability per label, in classes.json order. */
  probabilities: Record<string, number>;
  /** The most probable label. */
  label: string;
  probability: number;
  classIndex: number;
  /** The feature map for Grad-CAM (C × h × w, e.g. 1024 × 7 × 7); null for a model without Grad-CAM. */
  features: Float32Array | null;
  /** ∂ class score / ∂ features for every class (K × C × h × w); null for a model without Grad-CAM. */
  gradients: Float32Array | null;
}

export interface BatchOutput {
  /** [batch × classes] */
  probabilities: Float32Array;
  /** [batch × C × h × w], null when the model has no Grad-CAM outputs */
  features: Float32Array | null;
  /** [batch × K × C × h × w], null when the model has no Grad-CAM outputs */
  gradients: Float32Array | null;
}

export interface EngineOptions {
  /** ONNX Runtime intra-op threads (default: the number of cores). */
  threads?: number;
  /** Requests waiting or running before new ones get 503 (default 8). */
  maxQueue?: number;
}

export const DEFAULT_QUEUE = 8;

export function busyError(): HttpError {
  return new HttpError(503, "inference_busy", "Le service d'analyse est saturé : réessayez dans quelques secondes.", undefined, { "Retry-After": "2" });
}

/** Worker source (CommonJS, evaluated): loads the session, then runs requests in arrival order. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const ort = require(workerData.ortPath);
let session;
let chain = Promise.resolve();
async function start() {
  try {
    session = await ort.InferenceSession.create(workerData.model, {
      intraOpNumThreads: workerData.threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
    });
    workerData.model = null;
    parentPort.postMessage({ type: "ready" });
  } catch (err) {
    parentPort.postMessage({ type: "failed", message: String((err && err.message) || err) });
  }
}
parentPort.on("message", (msg) => {
  chain = chain.then(async () => {
    try {
      const input = new ort.Tensor("float32", msg.data, msg.dims);
      const out = await session.run({ input });
      const probabilities = new Float32Array(out.probabilities.data);
      const features = out.features ? new Float32Array(out.features.data) : null;
      const gradients = out.gradients ? new Float32Array(out.gradients.data) : null;
      const transfer = [probabilities.buffer];
      if (features) transfer.push(features.buffer);
      if (gradients) transfer.push(gradients.buffer);
      parentPort.postMessage({ type: "result", id: msg.id, probabilities, features, gradients }, transfer);
    } catch (err) {
      parentPort.postMessage({ type: "result", id: msg.id, error: String((err && err.message) || err) });
    }
  });
});
start();
`;

type WorkerReply =
  | { type: "ready" }
  | { type: "failed"; message: string }
  | { type: "result"; id: number; probabilities?: Float32Array; features?: Float32Array | null; gradients?: Float32Array | null; error?: string };

interface Job {
  resolve: (out: BatchOutput) => void;
  reject: (err: Error) => void;
}

export class InferenceEngine {
  readonly model: ModelInfo;
  /** Shape of the Grad-CAM feature map; null when the model has none (readings carry no heatmap). */
  readonly gradCam: GradCamShape | null;
  readonly inputSize: number;
  readonly maxQueue: number;
  private readonly worker: Worker;
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;
  private failure: Error | undefined;

  private constructor(model: LoadedModel, worker: Worker, maxQueue: number) {
    this.model = {
      name: model.card.name,
      version: model.card.version,
      sha256: model.sha256,
      clinical: model.card.clinical,
      classes: model.classes,
      card: model.card,
      dir: model.dir,
    };
    this.gradCam = model.gradCam;
    this.inputSize = model.card.inputSize;
    this.maxQueue = maxQueue;
    this.worker = worker;
    worker.on("message", (msg: WorkerReply) => this.onReply(msg));
    worker.on("error", (err) => this.fail(err));
    worker.on("exit", (code) => this.fail(new Error(`inference worker exited (code ${code})`)));
    worker.unref();
  }

  /** Starts the worker and loads the (already verified) model into ONNX Runtime. */
  static async create(model: LoadedModel, options: EngineOptions = {}): Promise<InferenceEngine> {
    const threads = options.threads ?? availableParallelism();
    const maxQueue = options.maxQueue ?? DEFAULT_QUEUE;
    if (!Number.isInteger(maxQueue) || maxQueue < 1) throw new RangeError("maxQueue must be a positive integer");
    keepOnnxRuntimeOffline();
    const ortPath = createRequire(import.meta.url).resolve("onnxruntime-node");
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath, model: model.onnx, threads } });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (msg: WorkerReply) => {
        worker.off("error", onError);
        if (msg.type === "ready") resolve();
        else {
          void worker.terminate();
          reject(new ModelError("invalid_model", `ONNX Runtime refuse ${model.dir}/model.onnx : ${msg.type === "failed" ? msg.message : "réponse inattendue"}.`));
        }
      };
      const onError = (err: Error) => reject(err);
      worker.once("message", onMessage);
      worker.once("error", onError);
    });
    return new InferenceEngine(model, worker, maxQueue);
  }

  /** Requests waiting or running. */
  get pending(): number {
    return this.jobs.size;
  }

  /** Runs a batch: `tensor` is [batch, 3, S, S] float32 (copied, the caller keeps it). */
  run(tensor: Float32Array, batch = 1): Promise<BatchOutput> {
    if (this.failure) return Promise.reject(this.failure);
    const size = this.inputSize;
    if (tensor.length !== batch * 3 * size * size) {
      return Promise.reject(new RangeError(`input: ${tensor.length} values, expected ${batch}×3×${size}×${size}`));
    }
    if (this.jobs.size >= this.maxQueue) return Promise.reject(busyError());
    const id = this.nextId++;
    return new Promise<BatchOutput>((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      if (this.jobs.size === 1) this.worker.ref();
      this.worker.postMessage({ id, data: tensor, dims: [batch, 3, size, size] });
    });
  }

  /** One image → probabilities per label (classes.json order), the top label, and the Grad-CAM feature map. */
  async predict(tensor: Float32Array): Promise<Prediction> {
    const out = await this.run(tensor, 1);
    const classes = this.model.classes;
    let best = 0;
    for (let i = 1; i < classes.length; i++) if (out.probabilities[i]! > out.probabilities[best]!) best = i;
    return {
      probabilities: Object.fromEntries(classes.map((label, i) => [label, out.probabilities[i]!])),
      label: classes[best]!,
      probability: out.probabilities[best]!,
      classIndex: best,
      features: out.features,
      gradients: out.gradients,
    };
  }

  /** Stops the worker; pending requests are rejected. */
  async close(): Promise<void> {
    this.fail(new Error("inference engine closed"));
    await this.worker.terminate();
  }

  /** True once the worker has failed or the engine was closed. */
  get closed(): boolean {
    return this.failure !== undefined;
  }

  private onReply(msg: WorkerReply): void {
    if (msg.type !== "result") return;
    const job = this.jobs.get(msg.id);
    if (!job) return;
    this.jobs.delete(msg.id);
    if (this.jobs.size === 0) this.worker.unref();
    if (msg.error || !msg.probabilities) job.reject(new Error(`inference failed: ${msg.error ?? "no output"}`));
    else job.resolve({ probabilities: msg.probabilities, features: msg.features ?? null, gradients: msg.gradients ?? null });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const job of this.jobs.values()) job.reject(err);
    this.jobs.clear();
  }
}
