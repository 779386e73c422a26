import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpError } from "../http/errors.server";
import { writeDemoModel } from "./densenet.server";
import { loadModelDirectory, type LoadedModel } from "./model.server";
import { InferenceEngine } from "./session.server";

let root: string;
let model: LoadedModel;
let engine: InferenceEngine;

/** A normalised input with a bright disc at (cx, cy) on a dark background. */
function disc(cx: number, cy: number, r = 30): Float32Array {
  const size = 224;
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const t = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const v = (x - cx) ** 2 + (y - cy) ** 2 < r * r ? 0.9 : 0.1;
        t[c * size * size + y * size + x] = (v - mean[c]!) / std[c]!;
      }
  return t;
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), "nexus-session-"));
  await writeDemoModel(root);
  model = await loadModelDirectory(root);
  engine = await InferenceEngine.create(model);
});
afterAll(async () => {
  await engine?.close();
  rmSync(root, { recursive: true, force: true });
});

describe("InferenceEngine", () => {
  it("predicts probabilities per label (classes.json order), the top label and the 1024×7×7 feature map", async () => {
    const p = await engine.predict(disc(60, 60));
    expect(Object.keys(p.probabilities)).toEqual(["Negative", "Positive"]);
    const values = Object.values(p.probabilities);
    expect(values[0]! + values[1]!).toBeCloseTo(1, 5);
    expect(p.probability).toBe(Math.max(...values));
    expect(p.label).toBe(values[0]! >= values[1]! ? "Negative" : "Positive");
    expect(p.features).toHaveLength(1024 * 7 * 7);
    expect(Math.min(...p.features!)).toBeGreaterThanOrEqual(0); // after the final ReLU
    expect(p.gradients).toHaveLength(2 * 1024 * 7 * 7);
  });

  it("gives different images different probabilities (the demo weights are not degenerate)", async () => {
    const results = await Promise.all([disc(60, 60), disc(160, 170), disc(112, 112, 80), disc(30, 190, 10)].map((t) => engine.predict(t)));
    const positives = results.map((r) => r.probabilities.Positive!);
    console.log(`demo model P(Positive) for four synthetic images: ${positives.map((v) => v.toFixed(3)).join(", ")}`);
    expect(new Set(positives.map((v) => v.toFixed(3))).size).toBe(4);
    expect(Math.max(...positives) - Math.min(...positives)).toBeGreaterThan(0.05);
  });

  it("gives the same outputs as ONNX Runtime on the main thread, batch 1 and batch 2", async () => {
    const a = disc(80, 100);
    const b = disc(150, 60);
    const session = await ort.InferenceSession.create(model.onnx);
    try {
      const direct = await session.run({ input: new ort.Tensor("float32", a, [1, 3, 224, 224]) });
      const viaWorker = await engine.run(a);
      expect(Array.from(viaWorker.probabilities)).toEqual(Array.from(direct.probabilities!.data as Float32Array));
      const batch = new Float32Array(2 * a.length);
      batch.set(a);
      batch.set(b, a.length);
      const two = await engine.run(batch, 2);
      expect(two.probabilities).toHaveLength(4);
      expect(two.features).toHaveLength(2 * 1024 * 49);
      expect(Array.from(two.probabilities.subarray(0, 2))).toEqual(Array.from(viaWorker.probabilities).map((v) => expect.closeTo(v, 5)));
    } finally {
      await session.release();
    }
  });

  it("refuses an input of the wrong size", async () => {
    await expect(engine.run(new Float32Array(10))).rejects.toThrow(/expected 1×3×224×224/);
  });

  it("keeps the event loop responsive during inference (ONNX Runtime runs in a worker thread)", async () => {
    let worstLag = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstLag = Math.max(worstLag, now - last - 5);
      last = now;
    }, 5);
    const start = performance.now();
    for (let i = 0; i < 4; i++) await engine.predict(disc(40 + i * 40, 100));
    const elapsed = performance.now() - start;
    clearInterval(timer);
    console.log(`4 inferences in ${elapsed.toFixed(0)} ms; worst event-loop lag meanwhile ${worstLag.toFixed(1)} ms`);
    expect(worstLag).toBeLessThan(200);
  });
});

describe("bounded queue", () => {
  it("answers 503 with Retry-After: 2 when the queue is full, and serves again afterwards", async () => {
    const small = await InferenceEngine.create(model, { maxQueue: 2, threads: 1 });
    try {
      const input = disc(100, 100);
      const settled = await Promise.allSettled([0, 1, 2, 3, 4].map(() => small.predict(input)));
      const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
      expect(settled.filter((s) => s.status === "fulfilled")).toHaveLength(2);
      expect(rejected).toHaveLength(3);
      for (const r of rejected) {
        expect(r.reason).toBeInstanceOf(HttpError);
        expect(r.reason).toMatchObject({ status: 503, code: "inference_busy", headers: { "Retry-After": "2" } });
      }
      expect(small.pending).toBe(0);
      await expect(small.predict(input)).resolves.toMatchObject({ label: expect.any(String) });
    } finally {
      await small.close();
    }
  });

  it("rejects pending and later requests once closed", async () => {
    const e = await InferenceEngine.create(model, { threads: 1 });
    const pending = e.predict(disc(100, 100)).then(
      () => null,
      (err: Error) => err,
    );
    await e.close();
    expect((await pending)?.message).toMatch(/closed/);
    await expect(e.predict(disc(100, 100))).rejects.toThrow(/closed/);
    expect(e.closed).toBe(true);
  });
});
