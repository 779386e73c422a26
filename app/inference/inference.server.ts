/**
 * The inference facade: what the rest of the application calls.
 *
 *   const engine = await getEngine();        // at start-up: loads MODEL_DIR (building the demo model if needed)
 *   engine.model                             // { name, version, sha256, clinical, classes, card, dir }
 *   const result = await analyse(bytes, contentType);
 *
 * `analyse` = preprocess (decode, resize, normalise per the model card) + inference (ONNX Runtime, in its worker,
 * through the bounded queue) + Grad-CAM (from the `features` and `gradients` outputs) + the heatmap PNG. Nothing is
 * written to disk; the caller may wipe `bytes` as soon as the promise settles.
 *
 * Errors: HttpError 415 (type), 422 (unreadable image, unsupported DICOM transfer syntax), 503 + Retry-After
 * (queue full); ModelError from getEngine() when the model directory is unusable (the server must not start).
 */
import path from "node:path";
import { ensureDemoModel, writeDemoModel } from "./densenet.server";
import { gradCam, heatmapOverlay } from "./gradcam.server";
import { DEFAULT_MODEL_DIR, loadModelDirectory, ModelError, modelDirFromEnv, type LoadedModel } from "./model.server";
import { preprocess } from "./preprocess.server";
import { busyError, DEFAULT_QUEUE, InferenceEngine, type ModelInfo } from "./session.server";

export { ModelError } from "./model.server";
export { NON_CLINICAL_NOTICE } from "./model-card";
export type { InferenceEngine, ModelInfo } from "./session.server";

export interface Analysis {
  label: string;
  probability: number;
  /** Probability per label, in classes.json order. */
  probabilities: Record<string, number>;
  /** Transparent Grad-CAM overlay for `heatmapLabel`, image-sized (longest side ≤ 1024 px); null for a model
   *  without Grad-CAM (an ONNX model imported as is: its card says `heatmap: "none"`). */
  heatmapPng: Buffer | null;
  /** The class the heatmap explains: the predicted label unless another was asked for. */
  heatmapLabel: string;
  /** Wall-clock time of preprocess + inference + Grad-CAM, in milliseconds. */
  durationMs: number;
  model: Pick<ModelInfo, "name" | "version" | "sha256" | "clinical">;
}

/** `INFERENCE_QUEUE`: requests waiting or running before 503 (default 8). */
export function queueSizeFromEnv(env: Record<string, string | undefined> = process.env): number {
  const raw = env.INFERENCE_QUEUE?.trim();
  if (!raw) return DEFAULT_QUEUE;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`Invalid configuration: INFERENCE_QUEUE must be an integer from 1 to 1000 (got "${raw}")`);
  return n;
}

export interface CreateEngineOptions {
  maxQueue?: number;
  threads?: number;
  /** Build the demo model into `dir` if it is missing (default: only when `dir` is the default directory). */
  buildDemoIfMissing?: boolean;
}

/** `INFERENCE_THREADS`: ONNX Runtime intra-op threads (default: the number of cores). */
export function threadsFromEnv(env: Record<string, string | undefined> = process.env): number | undefined {
  const raw = env.INFERENCE_THREADS?.trim();
  if (!raw) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`Invalid configuration: INFERENCE_THREADS must be an integer from 1 to 256 (got "${raw}")`);
  return n;
}

/** Loads a model directory into a new engine (the demo model is built first when `dir` is the default and absent). */
export async function createEngine(dir = modelDirFromEnv(), options: CreateEngineOptions = {}): Promise<InferenceEngine> {
  const demo = options.buildDemoIfMissing ?? path.resolve(dir) === path.resolve(DEFAULT_MODEL_DIR);
  if (demo) await ensureDemoModel(dir);
  let model: LoadedModel;
  try {
    model = await loadModelDirectory(dir);
  } catch (err) {
    // A demo model built before the `gradients` output existed: rebuild it (it is deterministic and never edited).
    if (!(demo && err instanceof ModelError && err.code === "unsupported_head")) throw err;
    await writeDemoModel(dir);
    model = await loadModelDirectory(dir);
  }
  return InferenceEngine.create(model, { maxQueue: options.maxQueue ?? queueSizeFromEnv(), threads: options.threads ?? threadsFromEnv() });
}

let engine: Promise<InferenceEngine> | undefined;

/** The process-wide engine, created on first call from MODEL_DIR; rejects with ModelError if the model is unusable. */
export function getEngine(): Promise<InferenceEngine> {
  if (!engine) {
    const loading = createEngine();
    engine = loading;
    // A failed load is not cached (the next call retries), nor is an engine whose worker died.
    loading.then(
      (e) => e,
      () => {
        if (engine === loading) engine = undefined;
      },
    );
  }
  return engine.then((e) => {
    if (e.closed) {
      engine = undefined;
      return getEngine();
    }
    return e;
  });
}

/** Closes the process-wide engine (tests, shutdown). */
export async function closeEngine(): Promise<void> {
  const current = engine;
  engine = undefined;
  if (current) await (await current.catch(() => undefined))?.close();
}

export interface AnalyseOptions {
  /** Explain this label in the heatmap (e.g. always "Positive") rather than the predicted one. */
  heatmapLabel?: string;
}

/** Analyses one image with the process-wide engine. */
export async function analyse(bytes: Uint8Array, contentType: string, options: AnalyseOptions = {}): Promise<Analysis> {
  return analyseWith(await getEngine(), bytes, contentType, options);
}

/** Analyses one image with a given engine. */
export async function analyseWith(e: InferenceEngine, bytes: Uint8Array, contentType: string, options: AnalyseOptions = {}): Promise<Analysis> {
  const heatmapIndex = options.heatmapLabel === undefined ? undefined : e.model.classes.indexOf(options.heatmapLabel);
  if (heatmapIndex === -1) throw new RangeError(`unknown label ${options.heatmapLabel} (classes: ${e.model.classes.join(", ")})`);
  const start = performance.now();
  // Refuse early when the queue is full: decoding a 27 MB DICOM for nothing would make the overload worse.
  if (e.pending >= e.maxQueue) throw busyError();
  const image = await preprocess(bytes, contentType, e.model.card);
  const prediction = await e.predict(image.tensor);
  const camIndex = heatmapIndex ?? prediction.classIndex;
  const heatmapPng =
    e.gradCam && prediction.features && prediction.gradients
      ? await heatmapOverlay(gradCam(prediction.features, prediction.gradients, e.gradCam, camIndex), image.width, image.height)
      : null;
  const { name, version, sha256, clinical } = e.model;
  return {
    label: prediction.label,
    probability: prediction.probability,
    probabilities: prediction.probabilities,
    heatmapPng,
    heatmapLabel: e.model.classes[camIndex]!,
    durationMs: performance.now() - start,
    model: { name, version, sha256, clinical },
  };
}
