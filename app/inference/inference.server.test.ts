import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpError } from "../http/errors.server";
import { writeDicom } from "../imaging/dicom-writer";
import { writeDemoModel } from "./densenet.server";
import { analyse, analyseWith, closeEngine, createEngine, getEngine, ModelError, NON_CLINICAL_NOTICE, queueSizeFromEnv, threadsFromEnv, type InferenceEngine } from "./inference.server";

let root: string;
let dir: string;
let engine: InferenceEngine;
const savedModelDir = process.env.MODEL_DIR;

/** A 4000×3000 synthetic "mammogram": dark background, a bright elliptical breast and a brighter spot. */
async function bigJpeg(): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="3000">
    <rect width="4000" height="3000" fill="#101010"/>
    <ellipse cx="1400" cy="1500" rx="1300" ry="1400" fill="#909090"/>
    <circle cx="1800" cy="1100" r="150" fill="#f0f0f0"/></svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer();
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), "nexus-inference-"));
  dir = path.join(root, "densenet121-demo");
  await writeDemoModel(dir);
  engine = await createEngine(dir);
});
afterAll(async () => {
  await engine?.close();
  await closeEngine();
  if (savedModelDir === undefined) delete process.env.MODEL_DIR;
  else process.env.MODEL_DIR = savedModelDir;
  rmSync(root, { recursive: true, force: true });
});

describe("analyse", () => {
  it("JPEG 4000×3000: label, probabilities in classes.json order, heatmap PNG, duration and model traceability", async () => {
    const result = await analyseWith(engine, await bigJpeg(), "image/jpeg");
    expect(Object.keys(result.probabilities)).toEqual(["Negative", "Positive"]);
    expect(result.probability).toBe(result.probabilities[result.label]);
    expect(result.probability).toBeGreaterThanOrEqual(0.5);
    expect(result.model).toEqual({ name: "densenet121-demo", version: "1.0.0-demo", sha256: engine.model.sha256, clinical: false });
    expect(result.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    const heatmap = await sharp(result.heatmapPng!).metadata();
    expect(heatmap).toMatchObject({ format: "png", width: 1024, height: 768, channels: 4 });
    expect(result.durationMs).toBeGreaterThan(0);
    expect(result.heatmapLabel).toBe(result.label);
    const positive = await analyseWith(engine, await bigJpeg(), "image/jpeg", { heatmapLabel: "Positive" });
    expect(positive.heatmapLabel).toBe("Positive");
    await expect(analyseWith(engine, await bigJpeg(), "image/jpeg", { heatmapLabel: "Maybe" })).rejects.toThrow(RangeError);
    console.log(`analyse(4000×3000 JPEG) on the demo model: ${result.durationMs.toFixed(0)} ms → ${result.label} ${result.probability.toFixed(3)}`);
  });

  it("DICOM (16-bit, windowed) and 16-bit PNG", async () => {
    const pixels = Array.from({ length: 512 * 400 }, (_, i) => ((i % 400) * 7 + Math.floor(i / 400) * 3) % 4096);
    const dicom = await analyseWith(engine, writeDicom({ rows: 512, columns: 400, pixels, bitsStored: 12, windowCenter: 2000, windowWidth: 3000 }), "application/dicom");
    expect(await sharp(dicom.heatmapPng!).metadata()).toMatchObject({ width: 400, height: 512 });
    const png16 = await sharp(Uint16Array.from(pixels, (v) => v * 16), { raw: { width: 400, height: 512, channels: 1 } }).toColourspace("grey16").png().toBuffer();
    const png = await analyseWith(engine, png16, "image/png");
    expect(Object.values(png.probabilities).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it("unreadable image → 422, nothing run", async () => {
    const err = await analyseWith(engine, Buffer.from("not a jpeg"), "image/jpeg").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect(err).toMatchObject({ status: 422, code: "unreadable" });
    expect((err as Error).message).toMatch(/^Image illisible : /);
  });

  it("full queue → 503 with Retry-After", async () => {
    const small = await createEngine(dir, { maxQueue: 1, threads: 1 });
    try {
      const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: "#777" } }).png().toBuffer();
      const settled = await Promise.allSettled([1, 2, 3, 4].map(() => analyseWith(small, png, "image/png")));
      const refused = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
      expect(refused.length).toBeGreaterThanOrEqual(1);
      expect(settled.length - refused.length).toBeGreaterThanOrEqual(1);
      for (const r of refused) expect(r.reason).toMatchObject({ status: 503, headers: { "Retry-After": "2" } });
    } finally {
      await small.close();
    }
  });

  it("says what a non-clinical model is", () => {
    expect(engine.model.clinical).toBe(false);
    expect(NON_CLINICAL_NOTICE).toBe("modèle de démonstration — non validé cliniquement");
  });
});

describe("getEngine (process-wide, from MODEL_DIR)", () => {
  it("refuses a wrong MODEL_DIR with a ModelError, and recovers once it is fixed", async () => {
    process.env.MODEL_DIR = path.join(root, "missing");
    await expect(getEngine()).rejects.toBeInstanceOf(ModelError);
    await expect(analyse(Buffer.alloc(1), "image/png")).rejects.toThrow(/Répertoire de modèle introuvable/);
    process.env.MODEL_DIR = dir;
    const e = await getEngine();
    expect(await getEngine()).toBe(e);
    expect(e.model.dir).toBe(dir);
    const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: "#333" } }).png().toBuffer();
    expect((await analyse(png, "image/png")).model.name).toBe("densenet121-demo");
    await closeEngine();
  });

  it("builds the demo model when asked and it is missing", async () => {
    const fresh = path.join(root, "fresh-demo");
    const e = await createEngine(fresh, { buildDemoIfMissing: true, threads: 1 });
    try {
      expect(existsSync(path.join(fresh, "model.onnx"))).toBe(true);
      expect(e.model.sha256).toBe(engine.model.sha256);
    } finally {
      await e.close();
    }
  });

  it("validates INFERENCE_QUEUE and INFERENCE_THREADS", () => {
    expect(queueSizeFromEnv({})).toBe(8);
    expect(queueSizeFromEnv({ INFERENCE_QUEUE: "3" })).toBe(3);
    expect(() => queueSizeFromEnv({ INFERENCE_QUEUE: "0" })).toThrow(/INFERENCE_QUEUE/);
    expect(() => queueSizeFromEnv({ INFERENCE_QUEUE: "many" })).toThrow(/INFERENCE_QUEUE/);
    expect(threadsFromEnv({})).toBeUndefined();
    expect(threadsFromEnv({ INFERENCE_THREADS: "1" })).toBe(1);
    expect(() => threadsFromEnv({ INFERENCE_THREADS: "-2" })).toThrow(/INFERENCE_THREADS/);
  });
});
