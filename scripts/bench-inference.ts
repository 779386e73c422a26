/**
 * Inference benchmark: the demo DenseNet121 (same seeded weights in both runtimes)
 *
 *   1. ONNX Runtime (the production engine, in its worker thread, and a plain session) vs TF.js with the WASM
 *      backend: batch-1 latency p50/p95 over 30 runs after warm-up, batch-8 throughput, and the largest difference
 *      between their probabilities (the converter checked on the full network);
 *   2. the full path of one analysis — decrypt (vault format, in memory) → preprocess → infer → Grad-CAM + heatmap
 *      PNG — for a 4000×3000 JPEG and a 3328×4096 16-bit DICOM (≈ 27 MB), both generated in memory.
 *
 *   3. DICOM decoding (scripts/bench-decode.ts): decode time per encoding of a 3328×4096 12-bit mammogram, and a
 *      hostile-load run (8 concurrent previews of a 100-megapixel RLE DICOM: peak RSS, worst /healthz latency).
 *
 *   npx tsx scripts/bench-inference.ts            (npm run bench:inference)
 *   npx tsx scripts/bench-inference.ts --decode   (part 3 only)
 *
 * Prints a markdown report. Goals: ORT batch-1 p50 ≤ 40 ms on 2 cores; full path ≤ 300 ms. The model is built in a
 * temporary directory (removed after); nothing else touches the disk.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { writeDicom } from "../app/imaging/dicom-writer";
import { decodeBenchmark } from "./bench-decode";
import { denseNet121Json, denseNet121Weights, writeDemoModel } from "../app/inference/densenet.server";
import { gradCam, heatmapOverlay } from "../app/inference/gradcam.server";
import { loadModelDirectory } from "../app/inference/model.server";
import { keepOnnxRuntimeOffline } from "../app/inference/offline";
import { preprocess } from "../app/inference/preprocess.server";
import { InferenceEngine } from "../app/inference/session.server";
import { decryptStream, encryptStream } from "../app/vault/format.server";
import { generateDataKey } from "../app/vault/keys.server";

const RUNS = 30;
const WARMUP = 5;
const BATCH = 8;
const FULL_RUNS = 10;
const SIZE = 224;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
};
const ms = (v: number) => `${v.toFixed(v < 10 ? 1 : 0)} ms`;

async function time(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

async function latencies(run: () => Promise<unknown>, runs: number, warmup: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await run();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) out.push(await time(run));
  return out;
}

/** A smooth synthetic input, normalised like the model expects, NCHW and NHWC. */
function input(batch: number): { nchw: Float32Array; nhwc: Float32Array } {
  const nchw = new Float32Array(batch * 3 * SIZE * SIZE);
  const nhwc = new Float32Array(nchw.length);
  for (let b = 0; b < batch; b++)
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < SIZE; y++)
        for (let x = 0; x < SIZE; x++) {
          const v = Math.sin((x + b * 17) / 23) * Math.cos((y - c * 5) / 31) * 1.5;
          nchw[((b * 3 + c) * SIZE + y) * SIZE + x] = v;
          nhwc[((b * SIZE + y) * SIZE + x) * 3 + c] = v;
        }
  return { nchw, nhwc };
}

async function* chunks(bytes: Uint8Array, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

async function bigJpeg(): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="3000">
    <defs><radialGradient id="g"><stop offset="0" stop-color="#e0e0e0"/><stop offset="1" stop-color="#505050"/></radialGradient></defs>
    <rect width="4000" height="3000" fill="#0a0a0a"/><ellipse cx="1300" cy="1500" rx="1250" ry="1400" fill="url(#g)"/>
    <circle cx="1700" cy="1150" r="120" fill="#f5f5f5"/></svg>`;
  const noise = await sharp({ create: { width: 4000, height: 3000, channels: 3, background: "#000", noise: { type: "gaussian", mean: 0, sigma: 12 } } }).png().toBuffer();
  return sharp(Buffer.from(svg)).composite([{ input: noise, blend: "add" }]).jpeg({ quality: 90 }).toBuffer();
}

function bigDicom(): Uint8Array {
  const rows = 4096;
  const columns = 3328;
  const pixels = new Uint16Array(rows * columns);
  let s = 12345;
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < columns; x++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const breast = (x / 2800) ** 2 + ((y - 2048) / 1900) ** 2 < 1 ? 2400 - x * 0.4 : 120;
      pixels[y * columns + x] = Math.max(0, Math.min(4095, Math.round(breast + ((s >>> 16) % 160) - 80)));
    }
  return writeDicom({ rows, columns, pixels, bitsStored: 12, windowCenter: 1600, windowWidth: 2800, photometric: "MONOCHROME2" });
}

async function main() {
  keepOnnxRuntimeOffline();
  const out: string[] = [];
  const say = (line = "") => {
    out.push(line);
    console.log(line);
  };
  const cpu = cpus()[0]?.model ?? "?";
  say(`# Inference benchmark — ${new Date().toISOString()}`);
  say();
  say(`${availableParallelism()} cores (${cpu}), Node ${process.version}, onnxruntime-node ${ort.env.versions.common}, TF.js ${tf.version.tfjs}; load average at start ${loadavg().map((l) => l.toFixed(2)).join(" / ")}`);
  say();

  const dir = mkdtempSync(path.join(tmpdir(), "nexus-bench-"));
  try {
    const buildMs = await time(() => writeDemoModel(dir));
    const model = await loadModelDirectory(dir);
    say(`Demo model (DenseNet121, 7,039,554 parameters, ${(model.onnx.length / 1e6).toFixed(1)} MB ONNX) built and written in ${ms(buildMs)}.`);
    say();

    // --- runtimes ------------------------------------------------------------------------------------------
    const engine = await InferenceEngine.create(model, { maxQueue: 64 });
    const session = await ort.InferenceSession.create(model.onnx, { intraOpNumThreads: availableParallelism(), graphOptimizationLevel: "all" });
    const one = input(1);
    const eight = input(BATCH);
    const ortEngine1 = await latencies(() => engine.run(one.nchw, 1), RUNS, WARMUP);
    const ortEngine8 = await latencies(() => engine.run(eight.nchw, BATCH), 10, 2);
    const tensor1 = new ort.Tensor("float32", one.nchw, [1, 3, SIZE, SIZE]);
    const tensor8 = new ort.Tensor("float32", eight.nchw, [BATCH, 3, SIZE, SIZE]);
    const ortDirect1 = await latencies(() => session.run({ input: tensor1 }), RUNS, WARMUP);
    const ortDirect8 = await latencies(() => session.run({ input: tensor8 }), 10, 2);
    const ortProbabilities = (await engine.run(one.nchw, 1)).probabilities;

    const wasmDir = path.dirname(createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm"));
    setWasmPaths(`${wasmDir}/`);
    await tf.setBackend("wasm");
    const json = denseNet121Json();
    const weights = denseNet121Weights(json);
    const tfModel = await tf.models.modelFromJSON(json as unknown as tf.io.ModelJSON);
    for (const layer of tfModel.layers) {
      const w = weights.get(layer.name);
      if (w) layer.setWeights(w.map((a) => tf.tensor(a.data, a.shape)));
    }
    const x1 = tf.tensor4d(one.nhwc, [1, SIZE, SIZE, 3]);
    const x8 = tf.tensor4d(eight.nhwc, [BATCH, SIZE, SIZE, 3]);
    const tfRun = (x: tf.Tensor4D) => async () => {
      const y = tfModel.predict(x) as tf.Tensor;
      await y.data();
      y.dispose();
    };
    const tf1 = await latencies(tfRun(x1), RUNS, 3);
    const tf8 = await latencies(tfRun(x8), 3, 1);
    const tfProbabilities = (tfModel.predict(x1) as tf.Tensor).dataSync();
    let delta = 0;
    for (let i = 0; i < ortProbabilities.length; i++) delta = Math.max(delta, Math.abs(ortProbabilities[i]! - tfProbabilities[i]!));

    say(`## Runtimes (batch-1 latency over ${RUNS} runs after warm-up; batch-${BATCH} throughput)`);
    say();
    say(`| runtime | batch-1 p50 | batch-1 p95 | batch-${BATCH} per batch (p50) | batch-${BATCH} images/s |`);
    say("|---|---:|---:|---:|---:|");
    const row = (name: string, b1: number[], b8: number[]) =>
      say(`| ${name} | ${ms(percentile(b1, 50))} | ${ms(percentile(b1, 95))} | ${ms(percentile(b8, 50))} | ${((BATCH * 1000) / percentile(b8, 50)).toFixed(1)} |`);
    row(`ONNX Runtime 1.30, production engine (worker thread, ${availableParallelism()} intra-op threads)`, ortEngine1, ortEngine8);
    row("ONNX Runtime 1.30, plain session on the main thread", ortDirect1, ortDirect8);
    row(`TF.js ${tf.version.tfjs}, WASM backend`, tf1, tf8);
    say();
    say(`Same weights, same input: max |P_ORT − P_TF.js| = ${delta.toExponential(1)}. ORT p50 goal ≤ 40 ms: ${percentile(ortEngine1, 50) <= 40 ? "met" : "NOT met"}.`);
    say();
    await session.release();
    x1.dispose();
    x8.dispose();
    tfModel.dispose();

    // --- full path ------------------------------------------------------------------------------------------
    say(`## Full path of one analysis (median of ${FULL_RUNS} runs; decrypt = vault format in memory)`);
    say();
    say("| image | size | decrypt | preprocess | infer | Grad-CAM + PNG | total p50 | total p95 |");
    say("|---|---:|---:|---:|---:|---:|---:|---:|");
    const cases: Array<{ name: string; contentType: string; bytes: Uint8Array }> = [
      { name: "JPEG 4000×3000", contentType: "image/jpeg", bytes: await bigJpeg() },
      { name: "DICOM 3328×4096 16-bit", contentType: "application/dicom", bytes: bigDicom() },
    ];
    const totals: number[] = [];
    for (const c of cases) {
      const key = generateDataKey();
      const objectId = randomUUID();
      const encrypted = encryptStream(chunks(c.bytes), { key, objectId });
      const ciphertext = await collect(encrypted.stream);
      const stages = { decrypt: [] as number[], preprocess: [] as number[], infer: [] as number[], cam: [] as number[], total: [] as number[] };
      for (let i = 0; i < FULL_RUNS + 1; i++) {
        const t0 = performance.now();
        const plain = await collect(decryptStream(chunks(ciphertext), { key, objectId }));
        const t1 = performance.now();
        const image = await preprocess(plain, c.contentType, model.card);
        const t2 = performance.now();
        const prediction = await engine.predict(image.tensor);
        const t3 = performance.now();
        await heatmapOverlay(gradCam(prediction.features!, prediction.gradients!, model.gradCam!, prediction.classIndex), image.width, image.height);
        const t4 = performance.now();
        plain.fill(0);
        if (i === 0) continue; // warm-up
        stages.decrypt.push(t1 - t0);
        stages.preprocess.push(t2 - t1);
        stages.infer.push(t3 - t2);
        stages.cam.push(t4 - t3);
        stages.total.push(t4 - t0);
      }
      totals.push(percentile(stages.total, 50));
      const p50 = (v: number[]) => ms(percentile(v, 50));
      say(
        `| ${c.name} | ${(c.bytes.length / 1e6).toFixed(1)} MB | ${p50(stages.decrypt)} | ${p50(stages.preprocess)} | ${p50(stages.infer)} | ${p50(stages.cam)} | ${p50(stages.total)} | ${ms(percentile(stages.total, 95))} |`,
      );
    }
    say();
    say(`Full path goal ≤ 300 ms: ${totals.every((t) => t <= 300) ? "met" : "NOT met"} (p50). Load average at end ${loadavg().map((l) => l.toFixed(2)).join(" / ")}.`);
    await engine.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// `--decode`: only the DICOM decode part (scripts/bench-decode.ts), which otherwise follows the inference part.
if (!process.argv.includes("--decode")) await main();
await decodeBenchmark((line = "") => console.log(line));
