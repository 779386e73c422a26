/**
 * Exam AI benchmark: four 3328×4096 12-bit DICOM views (R-CC, L-CC, R-MLO, L-MLO, written in memory with real
 * screening tags), each encrypted in the vault format, through the exam path of app/exams/exam-ai.server.ts:
 * decrypt → decode (all four at once) → one ONNX Runtime batch of 4 → Grad-CAM + heatmap PNGs (in parallel).
 * For comparison, the same four views one after the other through the single-image path (`analyseWith`).
 *
 *   npx tsx scripts/bench-exam.ts            (npm run bench:exam)
 *
 * Prints a markdown report with p50/p95 over RUNS runs after a warm-up. Goal: exam path ≤ 400 ms p50 on 2 cores.
 * The demo model is built in a temporary directory (removed after); nothing else touches the disk.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { analyseViews } from "../app/exams/exam-ai.server";
import { screeningAttributes, writeDicom } from "../app/imaging/dicom-writer";
import { writeDemoModel } from "../app/inference/densenet.server";
import { analyseWith } from "../app/inference/inference.server";
import { loadModelDirectory } from "../app/inference/model.server";
import { InferenceEngine } from "../app/inference/session.server";
import { decryptStream, encryptStream } from "../app/vault/format.server";
import { generateDataKey } from "../app/vault/keys.server";

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const WARMUP = 2;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
};
const ms = (v: number) => `${v.toFixed(0)} ms`;

async function* chunks(bytes: Uint8Array, size = 1 << 20) {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}
async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

/** One 3328×4096 12-bit view: a breast-like ellipse (mirrored for the left side) with noise. */
function view(laterality: "R" | "L", name: string, study: string, seed: number): Uint8Array {
  const rows = 4096;
  const columns = 3328;
  const pixels = new Uint16Array(rows * columns);
  let s = seed;
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < columns; x++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const fx = laterality === "R" ? x : columns - 1 - x;
      const breast = (fx / 2800) ** 2 + ((y - 2048) / 1900) ** 2 < 1 ? 2400 - fx * 0.4 : 120;
      pixels[y * columns + x] = Math.max(0, Math.min(4095, Math.round(breast + ((s >>> 16) % 160) - 80)));
    }
  return writeDicom({
    rows,
    columns,
    pixels,
    bitsStored: 12,
    windowCenter: 1600,
    windowWidth: 2800,
    sopInstanceUid: `${study}.${seed}`,
    attributes: screeningAttributes({ studyInstanceUid: study, laterality, view: name, patient: { id: "BENCH-1", name: "BENCH^EXAM" } }),
  });
}

async function main() {
  const say = (line = "") => console.log(line);
  say(`# bench:exam — ${new Date().toISOString()}`);
  say();
  say(`${cpus()[0]?.model ?? "?"} × ${availableParallelism()}, load ${loadavg().map((l) => l.toFixed(2)).join(" ")}, Node ${process.version}`);
  const dir = mkdtempSync(path.join(tmpdir(), "nexus-bench-exam-"));
  try {
    await writeDemoModel(dir);
    const model = await loadModelDirectory(dir);
    const engine = await InferenceEngine.create(model, { maxQueue: 64 });
    const study = `2.25.${Date.now()}`;
    const sealed = [
      ["R", "CC"],
      ["L", "CC"],
      ["R", "MLO"],
      ["L", "MLO"],
    ].map(([l, v], i) => {
      const bytes = view(l as "R" | "L", v!, study, 1000 + i);
      return { key: generateDataKey(), objectId: randomUUID(), bytes, size: bytes.length };
    });
    const ciphertexts = await Promise.all(sealed.map((s) => collect(encryptStream(chunks(s.bytes), s).stream)));
    const load = (i: number) => () => collect(decryptStream(chunks(ciphertexts[i]!), sealed[i]!));
    say(`four views of ${(sealed[0]!.size / 1e6).toFixed(1)} MB (3328×4096, 12 bits stored, explicit VR LE), demo DenseNet121 224²`);
    say();

    const exam = async () => analyseViews(engine, sealed.map((_, i) => ({ contentType: "application/dicom", load: load(i) })));
    const sequential = async () => {
      for (let i = 0; i < sealed.length; i++) {
        const bytes = await load(i)();
        await analyseWith(engine, bytes, "application/dicom", { heatmapLabel: "Positive" });
        bytes.fill(0);
      }
    };
    const measure = async (run: () => Promise<unknown>) => {
      for (let i = 0; i < WARMUP; i++) await run();
      const out: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const t = performance.now();
        await run();
        out.push(performance.now() - t);
      }
      return out;
    };
    const batched = await measure(exam);
    const oneByOne = await measure(sequential);
    say(`| path (4 views, decrypt → decode → infer → Grad-CAM PNG) | p50 | p95 | runs |`);
    say(`|---|---:|---:|---:|`);
    say(`| exam path: parallel decode, one batch of 4 | ${ms(percentile(batched, 50))} | ${ms(percentile(batched, 95))} | ${RUNS} |`);
    say(`| four single-image analyses in sequence | ${ms(percentile(oneByOne, 50))} | ${ms(percentile(oneByOne, 95))} | ${RUNS} |`);
    say();
    say(`Goal: exam path ≤ 400 ms p50 — ${percentile(batched, 50) <= 400 ? "met" : "NOT met"}.`);
    await engine.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
