/**
 * ONNX classifiers imported as they are (tf2onnx exports keep Keras' NHWC input; PyTorch exports are NCHW with a
 * dynamic batch and output logits): adapted to the platform's `input` / `probabilities`, same numbers as the
 * original graph, classes from classes.json, and no heatmap — the card says so and readings carry none.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyseWith, createEngine } from "../inference.server";
import { loadModelDirectory } from "../model.server";
import { importModel } from "./import-model";
import { attr, OnnxGraphBuilder, type Dim } from "./onnx-builder";

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), "nexus-onnx-import-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

interface Spec {
  layout: "NCHW" | "NHWC";
  inputName: string;
  outputName: string;
  batch: Dim;
  size: Dim;
  classes: number;
  /** What ends the graph. */
  ending: "softmax" | "logits" | "sigmoid" | "logsoftmax";
  extraInput?: boolean;
}

/** A small CNN as exporters write it: conv → relu → global average pool → flatten → gemm (→ softmax / sigmoid). */
function exported(spec: Spec): Uint8Array {
  const g = new OnnxGraphBuilder();
  const r = random(spec.classes * 31 + spec.layout.length);
  const f32 = (n: number) => Float32Array.from({ length: n }, r);
  let x = spec.inputName;
  if (spec.layout === "NHWC") x = g.node("Transpose", [x], ["tf2onnx/nchw"], [attr.ints("perm", [0, 3, 1, 2])], "Transpose__6");
  g.initializer("conv.weight", [4, 3, 3, 3], f32(108));
  g.initializer("conv.bias", [4], f32(4));
  x = g.node("Conv", [x, "conv.weight", "conv.bias"], ["/conv/Conv_output_0"], [attr.ints("kernel_shape", [3, 3]), attr.ints("pads", [1, 1, 1, 1])], "/conv/Conv");
  x = g.node("Relu", [x], ["/relu/Relu_output_0"]);
  x = g.node("GlobalAveragePool", [x], ["/pool/GlobalAveragePool_output_0"]);
  x = g.node("Flatten", [x], ["/Flatten_output_0"], [attr.int("axis", 1)]);
  g.initializer("fc.weight", [spec.classes, 4], f32(4 * spec.classes));
  g.initializer("fc.bias", [spec.classes], f32(spec.classes));
  const ops = { softmax: "Softmax", sigmoid: "Sigmoid", logsoftmax: "LogSoftmax", logits: null } as const;
  const op = ops[spec.ending];
  x = g.node("Gemm", [x, "fc.weight", "fc.bias"], [op ? "/fc/Gemm_output_0" : spec.outputName], [attr.int("transB", 1)], "/fc/Gemm");
  if (op) g.node(op, [x], [spec.outputName], op === "Sigmoid" ? [] : [attr.int("axis", 1)]);
  const s = spec.size;
  const inputShape: Dim[] = spec.layout === "NCHW" ? [spec.batch, 3, s, s] : [spec.batch, s, s, 3];
  return g.encode({
    graphName: "exported",
    inputs: [{ name: spec.inputName, shape: inputShape }, ...(spec.extraInput ? [{ name: "mask", shape: [1] as Dim[] }] : [])],
    outputs: [{ name: spec.outputName, shape: [spec.batch, spec.classes] }],
    producer: spec.layout === "NHWC" ? "tf2onnx" : "pytorch",
  });
}

function write(name: string, bytes: Uint8Array, classes?: string[]): string {
  const dir = path.join(root, `src-${name}`);
  mkdirSync(dir, { recursive: true });
  if (classes) writeFileSync(path.join(dir, "classes.json"), JSON.stringify(Object.fromEntries(classes.map((c, i) => [String(i), c]))));
  writeFileSync(path.join(dir, `${name}.onnx`), bytes);
  return path.join(dir, `${name}.onnx`);
}

/** Runs the original export and the imported model on the same images; returns both outputs. */
async function both(original: Uint8Array, spec: Spec, dir: string, n: number, size: number) {
  const r = random(99);
  const nchw = Float32Array.from({ length: n * 3 * size * size }, r);
  const nhwc = new Float32Array(nchw.length);
  for (let b = 0; b < n; b++) for (let c = 0; c < 3; c++) for (let p = 0; p < size * size; p++) nhwc[(b * size * size + p) * 3 + c] = nchw[(b * 3 + c) * size * size + p]!;
  const a = await ort.InferenceSession.create(original);
  const ref = await a.run({ [spec.inputName]: new ort.Tensor("float32", spec.layout === "NCHW" ? nchw : nhwc, spec.layout === "NCHW" ? [n, 3, size, size] : [n, size, size, 3]) });
  await a.release();
  const b = await ort.InferenceSession.create(readFileSync(path.join(dir, "model.onnx")));
  const got = await b.run({ input: new ort.Tensor("float32", nchw, [n, 3, size, size]) });
  expect(Object.keys(got)).toEqual(["probabilities"]);
  await b.release();
  return { expected: ref[spec.outputName]!.data as Float32Array, got: got.probabilities!.data as Float32Array };
}

describe("ONNX models imported directly", () => {
  it("tf2onnx export: NHWC input 'input_1:0' [unk, 16, 16, 3], softmax output; classes from classes.json", async () => {
    const spec: Spec = { layout: "NHWC", inputName: "input_1:0", outputName: "dense_1/Softmax:0", batch: "unk__12", size: 16, classes: 3, ending: "softmax" };
    const original = exported(spec);
    const result = await importModel({ source: write("tf2onnx", original, ["Bénin", "Incertain", "Malin"]), modelsDir: root });
    expect(result).toMatchObject({ format: "onnx", classes: ["Bénin", "Incertain", "Malin"] });
    expect(result.card).toMatchObject({ inputSize: 16, heatmap: "none", clinical: false });
    expect(result.card.heatmapNote).toMatch(/pas de carte de chaleur/);
    expect(result.card.source).toMatch(/ONNX NHWC, tf2onnx 1, sortie softmax/);
    const loaded = await loadModelDirectory(result.dir);
    expect(loaded.gradCam).toBeNull();
    const { expected, got } = await both(original, spec, result.dir, 2, 16);
    expect(Array.from(got)).toEqual(Array.from(expected));
  });

  it("PyTorch export: NCHW 'input.1' with a dynamic batch and size, logits output → softmax added with --logits", async () => {
    const spec: Spec = { layout: "NCHW", inputName: "input.1", outputName: "logits", batch: "batch_size", size: "height", classes: 2, ending: "logits" };
    const original = exported(spec);
    const file = write("pytorch", original);
    await expect(importModel({ source: file, classes: ["N", "P"], modelsDir: root })).rejects.toThrow(/sortie logits produite par Gemm \(nœud \/fc\/Gemm\) et non par un Softmax.*--logits/);
    const result = await importModel({ source: file, classes: ["N", "P"], modelsDir: root, logits: true, inputSize: 20 });
    expect(result.card.inputSize).toBe(20);
    const { expected, got } = await both(original, spec, result.dir, 3, 20);
    for (let i = 0; i < 3; i++) {
      const [z0, z1] = [expected[i * 2]!, expected[i * 2 + 1]!];
      expect(got[i * 2 + 1]).toBeCloseTo(1 / (1 + Math.exp(z0 - z1)), 6);
    }
  });

  it("one-unit sigmoid output → [1 − p, p]; a reading has no heatmap", async () => {
    const spec: Spec = { layout: "NCHW", inputName: "x", outputName: "y", batch: 1, size: 32, classes: 1, ending: "sigmoid" };
    const original = exported(spec);
    const result = await importModel({ source: write("sigmoid", original), name: "onnx-sigmoid", classes: ["Négatif", "Positif"], modelsDir: root });
    const { expected, got } = await both(original, spec, result.dir, 1, 32);
    expect(got[1]).toBeCloseTo(expected[0]!, 6);
    expect(got[0]).toBeCloseTo(1 - expected[0]!, 6);
    const engine = await createEngine(result.dir, { buildDemoIfMissing: false, threads: 1 });
    try {
      const image = await sharp({ create: { width: 40, height: 30, channels: 3, background: "#808080" } }).png().toBuffer();
      const reading = await analyseWith(engine, image, "image/png");
      expect(reading.heatmapPng).toBeNull();
      expect(Object.keys(reading.probabilities)).toEqual(["Négatif", "Positif"]);
    } finally {
      await engine.close();
    }
  });

  it("refusals say what is wrong with which input, output or node", async () => {
    const base: Spec = { layout: "NCHW", inputName: "x", outputName: "y", batch: "N", size: 16, classes: 2, ending: "softmax" };
    const refused = async (name: string, spec: Partial<Spec>, pattern: RegExp, options: { logits?: boolean } = {}) => {
      await expect(importModel({ source: write(name, exported({ ...base, ...spec })), classes: ["a", "b"], modelsDir: root, ...options })).rejects.toThrow(pattern);
      expect(() => readFileSync(path.join(root, name, "card.json"))).toThrow(); // nothing written
    };
    await refused("two-inputs", { extraInput: true }, /2 entrées \(x, mask\)/);
    await refused("fixed-batch", { batch: 4 }, /entrée x : lot fixe de 4 images/);
    await refused("log-softmax", { ending: "logsoftmax" }, /sortie y : LogSoftmax/);
    await refused("multi-label", { ending: "sigmoid", classes: 3 }, /sigmoïde sur 3 unités/);
    await refused("wrong-count", { classes: 3 }, /3 sorties mais 2 classes/);
    writeFileSync(path.join(root, "junk.onnx"), "not a protobuf at all, clearly");
    await expect(importModel({ source: path.join(root, "junk.onnx"), classes: ["a", "b"], modelsDir: root })).rejects.toThrow(/ONNX/);
  });
});
