/**
 * The Keras → ONNX import, checked against TF.js itself: a small model with DenseNet121's layer types is built and
 * run with @tensorflow/tfjs (CPU backend), saved as TF.js layers files, as a Keras 2 `.h5` (h5wasm, Keras' layout)
 * and as a Keras 3 `.keras` archive, imported, and run with ONNX Runtime: same probabilities (and feature map).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { crc32 } from "node:zlib";
import * as tf from "@tensorflow/tfjs";
import h5wasm, { type Group } from "h5wasm";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModelDirectory } from "../model.server";
import { ImportError, importModel } from "./import-model";

type Json = Record<string, any>;

let root: string;

beforeAll(async () => {
  await tf.setBackend("cpu");
  root = mkdtempSync(path.join(tmpdir(), "nexus-import-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Deterministic pseudo-random numbers for weights and inputs. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** DenseNet121's layer types in miniature (odd sizes so that 'same' pooling really pads). */
function smallModel(): tf.LayersModel {
  const L = tf.layers;
  const input = tf.input({ shape: [30, 30, 3], name: "input_1" });
  let x = L.zeroPadding2d({ padding: [[1, 1], [1, 1]], name: "zero_padding2d" }).apply(input) as tf.SymbolicTensor;
  x = L.conv2d({ filters: 8, kernelSize: 3, strides: 2, useBias: false, name: "conv1/conv" }).apply(x) as tf.SymbolicTensor;
  x = L.batchNormalization({ epsilon: 1.001e-5, name: "conv1_bn" }).apply(x) as tf.SymbolicTensor;
  x = L.activation({ activation: "relu", name: "conv1_relu" }).apply(x) as tf.SymbolicTensor;
  x = L.maxPooling2d({ poolSize: 3, strides: 2, padding: "same", name: "pool1" }).apply(x) as tf.SymbolicTensor;
  const b1 = L.conv2d({ filters: 4, kernelSize: 1, name: "block_1_conv" }).apply(x) as tf.SymbolicTensor;
  const b2 = L.conv2d({ filters: 4, kernelSize: 3, padding: "same", useBias: false, activation: "relu", name: "block_2_conv" }).apply(x) as tf.SymbolicTensor;
  x = L.concatenate({ axis: -1, name: "block_concat" }).apply([x, b1, b2]) as tf.SymbolicTensor;
  x = L.averagePooling2d({ poolSize: 3, strides: 2, padding: "same", name: "pool2" }).apply(x) as tf.SymbolicTensor;
  x = L.batchNormalization({ epsilon: 1.001e-5, name: "bn" }).apply(x) as tf.SymbolicTensor;
  x = L.activation({ activation: "relu", name: "relu" }).apply(x) as tf.SymbolicTensor;
  x = L.globalAveragePooling2d({ name: "avg_pool" }).apply(x) as tf.SymbolicTensor;
  x = L.dropout({ rate: 0.3, name: "dropout" }).apply(x) as tf.SymbolicTensor;
  const output = L.dense({ units: 3, activation: "softmax", name: "predictions" }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output, name: "tiny_densenet" });
  randomiseBatchNorm(model, 7);
  return model;
}

/** Non-trivial batch-norm statistics, so that the conversion of all four vectors and epsilon is tested. */
function randomiseBatchNorm(model: tf.LayersModel, seed: number) {
  const r = random(seed);
  for (const layer of model.layers) {
    if (layer.getClassName() !== "BatchNormalization") continue;
    const n = layer.getWeights()[0]!.shape[0]!;
    const v = (f: () => number) => tf.tensor1d(Array.from({ length: n }, f));
    layer.setWeights([v(() => 0.5 + r()), v(() => r() - 0.5), v(() => (r() - 0.5) * 0.4), v(() => 0.5 + r() * 1.5)]);
  }
}

interface Saved {
  topology: Json;
  specs: Array<{ name: string; shape: number[]; dtype: string }>;
  data: Uint8Array;
}

async function save(model: tf.LayersModel): Promise<Saved> {
  let saved: Saved | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const chunks = Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData!];
      saved = {
        topology: artifacts.modelTopology as Json,
        specs: artifacts.weightSpecs as Saved["specs"],
        data: new Uint8Array(Buffer.concat(chunks.map((c) => Buffer.from(c)))),
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
  return saved!;
}

/** TF.js layers format: model.json + two weight shards. */
function writeTfjs(dir: string, s: Saved): string {
  mkdirSync(dir, { recursive: true });
  const half = Math.floor(s.data.length / 2);
  writeFileSync(path.join(dir, "group1-shard1of2.bin"), s.data.subarray(0, half));
  writeFileSync(path.join(dir, "group1-shard2of2.bin"), s.data.subarray(half));
  const manifest = [{ paths: ["group1-shard1of2.bin", "group1-shard2of2.bin"], weights: s.specs }];
  writeFileSync(path.join(dir, "model.json"), JSON.stringify({ format: "layers-model", generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`, modelTopology: s.topology, weightsManifest: manifest }));
  return path.join(dir, "model.json");
}

/** Weights per layer, in the layer's order, with Keras-style names ("<layer>/<weight>:0"). */
function layerWeights(model: tf.LayersModel) {
  return model.layers
    .map((layer) => ({
      layer: layer.name,
      weights: layer.weights.map((w, i) => ({
        name: `${layer.name}/${w.originalName.split("/").pop()}:0`,
        shape: w.shape as number[],
        data: layer.getWeights()[i]!.dataSync() as Float32Array,
      })),
    }));
}

async function h5Bytes(build: (file: Group) => void): Promise<Uint8Array> {
  const module = await h5wasm.ready;
  const name = `/test-${Date.now()}-${Math.random().toString(36).slice(2)}.h5`;
  const file = new h5wasm.File(name, "w");
  build(file);
  file.close();
  const bytes = module.FS!.readFile(name) as Uint8Array;
  module.FS!.unlink(name);
  return bytes;
}

function ensureGroup(parent: Group, groupPath: string): Group {
  let g = parent;
  for (const part of groupPath.split("/")) g = (g.get(part) as Group | null) ?? g.create_group(part);
  return g;
}

const fixedStrings = (values: string[]) => [values, null, `S${Math.max(1, ...values.map((v) => Buffer.byteLength(v)))}`] as const;

/** Keras 2 `model.save("x.h5")` layout. */
async function writeKeras2H5(file: string, model: tf.LayersModel, topology: Json) {
  const layers = layerWeights(model);
  const bytes = await h5Bytes((f) => {
    f.create_attribute("keras_version", "2.15.0");
    f.create_attribute("backend", "tensorflow");
    f.create_attribute("model_config", JSON.stringify({ class_name: "Functional", config: topology.config }));
    const weights = f.create_group("model_weights");
    weights.create_attribute("layer_names", ...fixedStrings(layers.map((l) => l.layer)));
    for (const { layer, weights: ws } of layers) {
      const g = ensureGroup(weights, layer);
      g.create_attribute("weight_names", ...fixedStrings(ws.map((w) => w.name)));
      for (const w of ws) {
        const parent = w.name.slice(0, w.name.lastIndexOf("/"));
        ensureGroup(g, parent).create_dataset({ name: w.name.slice(w.name.lastIndexOf("/") + 1), data: w.data, shape: w.shape, dtype: "<f" });
      }
    }
  });
  writeFileSync(file, bytes);
}

function zip(entries: Record<string, Uint8Array>): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(entries)) {
    const n = Buffer.from(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(n.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, n, Buffer.from(data));
    centrals.push(central, n);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(entries).length, 8);
  end.writeUInt16LE(Object.keys(entries).length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** Keras 3 `.keras`: config.json (Keras 3 serialisation) + model.weights.h5 (layers/<name>/vars/<i>). */
async function writeKeras3(file: string, model: tf.LayersModel, topology: Json) {
  const clean = (name: string) => name.replace(/\//g, "_"); // Keras 3 forbids "/" in layer names
  const tensor = (ref: unknown[]) => ({ class_name: "__keras_tensor__", config: { shape: null, dtype: "float32", keras_history: [clean(String(ref[0])), ref[1], ref[2]] } });
  const layers = (topology.config.layers as Json[]).map((l) => {
    const config = { ...l.config, name: clean(l.config.name) };
    if (l.class_name === "InputLayer") {
      config.batch_shape = config.batch_input_shape;
      delete config.batch_input_shape;
    }
    const nodes = (l.inbound_nodes as unknown[][][]).map((node) => ({ args: [node.length === 1 ? tensor(node[0]!) : node.map(tensor)], kwargs: {} }));
    return { module: "keras.layers", class_name: l.class_name, config, registered_name: null, name: clean(l.name), inbound_nodes: nodes };
  });
  const config = {
    module: "keras",
    class_name: "Functional",
    config: {
      name: topology.config.name,
      layers,
      input_layers: [clean(topology.config.input_layers[0][0]), 0, 0],
      output_layers: [clean(topology.config.output_layers[0][0]), 0, 0],
    },
    registered_name: "Functional",
  };
  // Keras 3 stores each layer under layers/<snake_case(class)>[_n] (numbered per class, in model order), not its name.
  const used = new Map<string, number>();
  const weightsH5 = await h5Bytes((f) => {
    const base = f.create_group("layers");
    model.layers.forEach((layer, index) => {
      const stem = layer.getClassName().replace(/(.)([A-Z][a-z0-9]+)/g, "$1_$2").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
      const n = used.has(stem) ? used.get(stem)! + 1 : 0;
      used.set(stem, n);
      const vars = base.create_group(n === 0 ? stem : `${stem}_${n}`).create_group("vars");
      layerWeights(model)[index]!.weights.forEach((w, i) => vars.create_dataset({ name: String(i), data: w.data, shape: w.shape, dtype: "<f" }));
    });
  });
  const text = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  writeFileSync(file, zip({ "metadata.json": text({ keras_version: "3.6.0" }), "config.json": text(config), "model.weights.h5": weightsH5 }));
}

/** [n, 30, 30, 3] random NHWC input, and its NCHW copy for ONNX. */
function inputs(n: number, size: number, seed: number): { nhwc: tf.Tensor4D; nchw: Float32Array } {
  const r = random(seed);
  const data = Float32Array.from({ length: n * size * size * 3 }, () => r() * 4 - 2);
  return { nhwc: tf.tensor4d(data, [n, size, size, 3]), nchw: toNchw(data, n, size, size, 3) };
}

function toNchw(data: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let b = 0; b < n; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + x] = data[((b * h + y) * w + x) * c + k]!;
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

async function runOnnx(dir: string, nchw: Float32Array, n: number, size: number) {
  const session = await ort.InferenceSession.create(path.join(dir, "model.onnx"));
  try {
    const out = await session.run({ input: new ort.Tensor("float32", nchw, [n, 3, size, size]) });
    return { probabilities: out.probabilities!.data as Float32Array, features: out.features!.data as Float32Array, featureDims: out.features!.dims };
  } finally {
    await session.release();
  }
}

describe("Keras / TF.js → ONNX equals TF.js", () => {
  let model: tf.LayersModel;
  let saved: Saved;
  let expected: { probabilities: Float32Array; features: Float32Array };
  let input: ReturnType<typeof inputs>;

  beforeAll(async () => {
    model = smallModel();
    saved = await save(model);
    input = inputs(4, 30, 11);
    const features = tf.model({ inputs: model.inputs, outputs: model.getLayer("relu").output as tf.SymbolicTensor });
    const f = features.predict(input.nhwc) as tf.Tensor4D;
    expected = { probabilities: (model.predict(input.nhwc) as tf.Tensor).dataSync() as Float32Array, features: toNchw(f.dataSync() as Float32Array, 4, f.shape[1], f.shape[2], f.shape[3]) };
  });

  const check = async (dir: string, clinical = false) => {
    const got = await runOnnx(dir, input.nchw, 4, 30);
    expect(got.featureDims).toEqual([4, 16, 4, 4]);
    const dp = maxDiff(got.probabilities, expected.probabilities);
    const df = maxDiff(got.features, expected.features);
    console.log(`${path.basename(dir)}: max |Δ| probabilities ${dp.toExponential(1)}, features ${df.toExponential(1)}`);
    expect(dp).toBeLessThan(1e-5);
    expect(df).toBeLessThan(1e-5);
    // the platform's loader accepts it, Grad-CAM head included
    const loaded = await loadModelDirectory(dir);
    expect(loaded.gradCam).toEqual({ channels: 16, height: 4, width: 4 });
    expect(loaded.card.clinical).toBe(clinical);
  };

  it("TF.js layers model.json (+ 2 shards)", async () => {
    const file = writeTfjs(path.join(root, "src-tfjs"), saved);
    const result = await importModel({ source: file, name: "tiny-tfjs", classes: ["A", "B", "C"], modelsDir: root });
    expect(result).toMatchObject({ format: "tfjs-layers", classes: ["A", "B", "C"] });
    expect(result.parameterCount).toBe(model.countParams());
    await check(result.dir);
  });

  it("Keras 2 .h5 (model_config + model_weights, as Keras writes it)", async () => {
    const file = path.join(root, "tiny.h5");
    await writeKeras2H5(file, model, saved.topology);
    writeFileSync(path.join(root, "classes.json"), '{"0":"A","1":"B","2":"C"}'); // beside the source
    const result = await importModel({ source: file, name: "tiny-h5", version: "2.1.0", modelsDir: root });
    expect(result).toMatchObject({ format: "keras-h5", classes: ["A", "B", "C"] });
    expect(result.card).toMatchObject({ name: "tiny-h5", version: "2.1.0", clinical: false, inputSize: 30 });
    await check(result.dir);
  });

  it("Keras 3 .keras (config.json + model.weights.h5 in a ZIP)", async () => {
    const file = path.join(root, "tiny.keras");
    await writeKeras3(file, model, saved.topology);
    const result = await importModel({ source: file, name: "tiny-keras3", classes: ["A", "B", "C"], modelsDir: root, clinical: true });
    expect(result.format).toBe("keras-v3");
    expect(result.card.clinical).toBe(true);
    await check(result.dir, true);
  });

  it("npm run model:import (the script) imports and says where", async () => {
    const file = writeTfjs(path.join(root, "src-cli"), saved);
    const run = spawnSync(
      process.execPath,
      ["--import", "tsx", path.resolve("scripts/model-import.ts"), file, "--name", "tiny-cli", "--version", "0.1", "--classes", "A,B,C", "--models-dir", root],
      { encoding: "utf8", cwd: process.cwd() },
    );
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.stdout).toMatch(/tiny-cli 0\.1 \(tfjs-layers\) → /);
    expect(run.stdout).toMatch(/clinical: false/);
    await expect(importModel({ source: file, name: "tiny-cli", classes: ["A", "B", "C"], modelsDir: root })).rejects.toThrow(/existe déjà \(--force/);
  });
});

describe("heads and layouts met in transfer learning", () => {
  it("a one-unit sigmoid head becomes the equivalent two-class softmax", async () => {
    const L = tf.layers;
    const input = tf.input({ shape: [12, 12, 3] });
    let x = L.conv2d({ filters: 5, kernelSize: 3, activation: "relu", name: "c" }).apply(input) as tf.SymbolicTensor;
    x = L.globalAveragePooling2d({ name: "gap" }).apply(x) as tf.SymbolicTensor;
    const out = L.dense({ units: 1, activation: "sigmoid", name: "p" }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    const file = writeTfjs(path.join(root, "src-sigmoid"), await save(model));
    // 12×12: the card accepts small test inputs (≥ 8)
    const result = await importModel({ source: file, name: "sigmoid", classes: ["Négatif", "Positif"], modelsDir: root });
    const data = inputs(3, 12, 5);
    const p = (model.predict(data.nhwc) as tf.Tensor).dataSync();
    const got = await runOnnx(result.dir, data.nchw, 3, 12);
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(got.probabilities[i * 2 + 1]! - p[i]!)).toBeLessThan(1e-5);
      expect(Math.abs(got.probabilities[i * 2]! - (1 - p[i]!))).toBeLessThan(1e-5);
    }
  });

  it("a base model nested as a layer (Keras' DenseNet121(include_top=False) + new head) is flattened", async () => {
    const L = tf.layers;
    const baseInput = tf.input({ shape: [16, 16, 3] });
    let b = L.conv2d({ filters: 6, kernelSize: 3, useBias: false, name: "base_conv" }).apply(baseInput) as tf.SymbolicTensor;
    b = L.batchNormalization({ name: "base_bn" }).apply(b) as tf.SymbolicTensor;
    b = L.activation({ activation: "relu", name: "base_relu" }).apply(b) as tf.SymbolicTensor;
    const base = tf.model({ inputs: baseInput, outputs: b, name: "densenet121" });
    const input = tf.input({ shape: [16, 16, 3], name: "image" });
    let x = base.apply(input) as tf.SymbolicTensor;
    x = L.globalAveragePooling2d({ name: "gap" }).apply(x) as tf.SymbolicTensor;
    const out = L.dense({ units: 2, activation: "softmax", name: "head" }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    randomiseBatchNorm(base, 3);
    const file = writeTfjs(path.join(root, "src-nested"), await save(model));
    const result = await importModel({ source: file, name: "nested", classes: ["N", "P"], modelsDir: root });
    const data = inputs(2, 16, 9);
    const got = await runOnnx(result.dir, data.nchw, 2, 16);
    expect(maxDiff(got.probabilities, (model.predict(data.nhwc) as tf.Tensor).dataSync())).toBeLessThan(1e-5);
    expect(got.featureDims).toEqual([2, 6, 14, 14]);
  });
});

describe("refusals", () => {
  it("a branching head, an unsupported layer, unknown label order — each refusal names the layer", async () => {
    const L = tf.layers;
    const input = tf.input({ shape: [8, 8, 3] });
    const pooled = L.globalAveragePooling2d({ name: "gap" }).apply(L.conv2d({ filters: 2, kernelSize: 3 }).apply(input)) as tf.SymbolicTensor;
    const a = L.dense({ units: 3, name: "branch_a" }).apply(pooled) as tf.SymbolicTensor;
    const b = L.dense({ units: 3, name: "branch_b" }).apply(pooled) as tf.SymbolicTensor;
    const sum = L.add({ name: "head_sum" }).apply([a, b]) as tf.SymbolicTensor;
    const m1 = tf.model({ inputs: input, outputs: L.dense({ units: 2, activation: "softmax", name: "out" }).apply(sum) as tf.SymbolicTensor });
    const f1 = writeTfjs(path.join(root, "src-branch"), await save(m1));
    await expect(importModel({ source: f1, name: "branch", classes: ["a", "b"], modelsDir: root })).rejects.toThrow(/couche head_sum \(Add\) : 2 entrées .*Grad-CAM/);

    const input2 = tf.input({ shape: [8, 8, 3] });
    const sep = L.separableConv2d({ kernelSize: 3, filters: 2, name: "sep" }).apply(input2) as tf.SymbolicTensor;
    const m2 = tf.model({ inputs: input2, outputs: L.dense({ units: 2, activation: "softmax" }).apply(L.globalAveragePooling2d({}).apply(sep)) as tf.SymbolicTensor });
    const f2 = writeTfjs(path.join(root, "src-separable"), await save(m2));
    await expect(importModel({ source: f2, name: "separable", classes: ["a", "b"], modelsDir: root })).rejects.toThrow(/couche sep : type SeparableConv2D non pris en charge/);

    await expect(importModel({ source: f2, name: "noclasses", modelsDir: root })).rejects.toThrow(ImportError);
    await expect(importModel({ source: f2, name: "wrongcount", classes: ["a", "b", "c"], modelsDir: root })).rejects.toThrow(/SeparableConv2D|3 classes/);
    writeFileSync(path.join(root, "junk.h5"), "definitely not HDF5");
    await expect(importModel({ source: path.join(root, "junk.h5"), name: "junk", classes: ["a", "b"], modelsDir: root })).rejects.toThrow(/ni HDF5/);
    expect(() => readFileSync(path.join(root, "junk", "card.json"))).toThrow();
  });
});

/**
 * ONNX outputs against TF.js for one model: probabilities, and the `gradients` output (∂ class score / ∂ feature
 * map, computed in the ONNX graph) against `tf.grad` of the head applied by TF.js itself. `head` lists the layers
 * from the pooling to the final Dense, whose logits are computed by hand (x·W + b) for the class scores.
 */
async function compareWithTfjs(model: tf.LayersModel, opts: { dir: string; size: number; features: tf.SymbolicTensor; head: string[]; sigmoid?: boolean; n?: number }) {
  const n = opts.n ?? 2;
  const data = inputs(n, opts.size, opts.size * 13 + opts.head.length);
  const session = await ort.InferenceSession.create(path.join(opts.dir, "model.onnx"));
  const out = await session.run({ input: new ort.Tensor("float32", data.nchw, [n, 3, opts.size, opts.size]) });
  await session.release();
  const expected = (model.predict(data.nhwc) as tf.Tensor).dataSync();
  const got = out.probabilities!.data as Float32Array;
  const k = got.length / n;
  const dp = maxDiff(opts.sigmoid ? Float32Array.from({ length: n }, (_, i) => got[i * 2 + 1]!) : got, expected);
  const A = tf.model({ inputs: model.inputs, outputs: opts.features }).predict(data.nhwc) as tf.Tensor4D;
  const [, h, w, c] = A.shape as [number, number, number, number];
  const final = model.getLayer(opts.head[opts.head.length - 1]!);
  const [kernel, bias] = final.getWeights();
  const logits = (a: tf.Tensor) => {
    let t: tf.Tensor = a;
    for (const name of opts.head.slice(0, -1)) t = model.getLayer(name).apply(t) as tf.Tensor;
    const z = tf.matMul(t as tf.Tensor2D, kernel as tf.Tensor2D);
    return bias ? tf.add(z, bias) : z;
  };
  expect(out.gradients!.dims).toEqual([n, k, c, h, w]);
  const gradients = out.gradients!.data as Float32Array;
  let dg = 0;
  let scale = 0;
  for (let cls = 0; cls < k; cls++) {
    const unit = opts.sigmoid ? 0 : cls;
    const sign = opts.sigmoid ? (cls === 1 ? 0.5 : -0.5) : 1;
    const g = toNchw(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.slice(logits(a), [0, unit], [-1, 1]), sign)))(A).dataSync() as Float32Array, n, h, w, c);
    for (let b = 0; b < n; b++) {
      const size = c * h * w;
      const ref = g.subarray(b * size, (b + 1) * size);
      dg = Math.max(dg, maxDiff(gradients.subarray((b * k + cls) * size, (b * k + cls + 1) * size), ref));
      for (const v of ref) scale = Math.max(scale, Math.abs(v));
    }
  }
  console.log(`${path.basename(opts.dir)}: max |Δ| probabilities ${dp.toExponential(1)}, gradients ${dg.toExponential(1)} (max |∂| ${scale.toExponential(1)})`);
  expect(dp).toBeLessThan(1e-5);
  expect(scale).toBeGreaterThan(0);
  expect(dg).toBeLessThan(1e-6 + 1e-4 * scale);
}

describe("Grad-CAM through any head: the graph's gradients equal tf.grad", () => {
  const L = tf.layers;
  const body = (size: number) => {
    const input = tf.input({ shape: [size, size, 3], name: "image" });
    let x = L.conv2d({ filters: 6, kernelSize: 3, name: "c1" }).apply(input) as tf.SymbolicTensor;
    x = L.batchNormalization({ name: "bn1" }).apply(x) as tf.SymbolicTensor;
    x = L.activation({ activation: "relu", name: "last_conv" }).apply(x) as tf.SymbolicTensor;
    return { input, x };
  };

  it("Flatten → Dense(relu) → BatchNormalization → Dropout → Dense(softmax)", async () => {
    const { input, x } = body(9);
    let y = L.flatten({ name: "flat" }).apply(x) as tf.SymbolicTensor;
    y = L.dense({ units: 10, activation: "relu", name: "hidden" }).apply(y) as tf.SymbolicTensor;
    y = L.batchNormalization({ name: "head_bn" }).apply(y) as tf.SymbolicTensor;
    y = L.dropout({ rate: 0.5, name: "drop" }).apply(y) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: L.dense({ units: 3, activation: "softmax", name: "out" }).apply(y) as tf.SymbolicTensor });
    randomiseBatchNorm(model, 11);
    const result = await importModel({ source: writeTfjs(path.join(root, "src-head-flatten"), await save(model)), name: "head-flatten", classes: ["a", "b", "c"], modelsDir: root });
    await compareWithTfjs(model, { dir: result.dir, size: 9, features: x, head: ["flat", "hidden", "head_bn", "drop", "out"] });
  });

  it("GlobalMaxPooling2D → Dense(tanh) → ReLU(max 6) → Dense(elu) → Activation(sigmoid) → Dense → Activation(softmax)", async () => {
    const { input, x } = body(10);
    let y = L.globalMaxPooling2d({ name: "gmp" }).apply(x) as tf.SymbolicTensor;
    y = L.dense({ units: 8, activation: "tanh", name: "d1" }).apply(y) as tf.SymbolicTensor;
    y = L.reLU({ maxValue: 6, name: "relu6" }).apply(y) as tf.SymbolicTensor;
    y = L.dense({ units: 7, activation: "elu", name: "d2" }).apply(y) as tf.SymbolicTensor;
    y = L.activation({ activation: "sigmoid", name: "sig" }).apply(y) as tf.SymbolicTensor;
    y = L.dense({ units: 4, name: "logits" }).apply(y) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: L.activation({ activation: "softmax", name: "probs" }).apply(y) as tf.SymbolicTensor });
    randomiseBatchNorm(model, 12);
    const result = await importModel({ source: writeTfjs(path.join(root, "src-head-gmp"), await save(model)), name: "head-gmp", classes: ["a", "b", "c", "d"], modelsDir: root });
    await compareWithTfjs(model, { dir: result.dir, size: 10, features: x, head: ["gmp", "d1", "relu6", "d2", "sig", "logits"] });
  });

  it("GlobalAveragePooling2D → LeakyReLU → Dense(softplus) → Dense(1, sigmoid)", async () => {
    const { input, x } = body(8);
    let y = L.globalAveragePooling2d({ name: "gap" }).apply(x) as tf.SymbolicTensor;
    y = L.leakyReLU({ alpha: 0.1, name: "leaky" }).apply(y) as tf.SymbolicTensor;
    y = L.dense({ units: 5, activation: "softplus", name: "soft" }).apply(y) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: L.dense({ units: 1, activation: "sigmoid", name: "p" }).apply(y) as tf.SymbolicTensor });
    randomiseBatchNorm(model, 13);
    const result = await importModel({ source: writeTfjs(path.join(root, "src-head-sigmoid"), await save(model)), name: "head-sigmoid", classes: ["N", "P"], modelsDir: root });
    await compareWithTfjs(model, { dir: result.dir, size: 8, features: x, head: ["gap", "leaky", "soft", "p"], sigmoid: true });
  });

  it("a Teachable Machine model: Sequential[Sequential[MobileNet-like model, GAP], Sequential[Dense relu, Dense softmax]]", async () => {
    // As @teachablemachine/image builds it: the truncated network and its pooling in one Sequential, the trained
    // head in another, joined in a third; only the innermost model declares its input shape.
    const baseInput = tf.input({ shape: [12, 12, 3], name: "input_1" });
    let b = L.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: "same", useBias: false, name: "Conv1" }).apply(baseInput) as tf.SymbolicTensor;
    b = L.reLU({ maxValue: 6, name: "Conv1_relu" }).apply(b) as tf.SymbolicTensor;
    b = L.depthwiseConv2d({ kernelSize: 3, padding: "same", useBias: false, name: "expanded_conv_depthwise" }).apply(b) as tf.SymbolicTensor;
    b = L.reLU({ maxValue: 6, name: "out_relu" }).apply(b) as tf.SymbolicTensor;
    const truncated = tf.model({ inputs: baseInput, outputs: b, name: "model1" });
    const features = tf.sequential({ layers: [truncated, L.globalAveragePooling2d({ name: "gap" })], name: "sequential_1" });
    const head = tf.sequential({
      layers: [L.dense({ inputShape: [4], units: 6, activation: "relu", name: "dense_Dense1" }), L.dense({ units: 3, useBias: false, activation: "softmax", name: "dense_Dense2" })],
      name: "sequential_3",
    });
    const model = tf.sequential({ layers: [features, head], name: "sequential_4" });
    const saved = await save(model);
    expect(JSON.stringify(saved.topology)).not.toMatch(/"name":"sequential_4","layers":\[\{"class_name":"InputLayer"/);
    const result = await importModel({ source: writeTfjs(path.join(root, "src-tm"), saved), name: "tm", classes: ["x", "y", "z"], modelsDir: root, preprocessing: "tf" });
    expect(result.card.preprocessing).toMatchObject({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    const data = inputs(2, 12, 21);
    const got = await runOnnx(result.dir, data.nchw, 2, 12);
    expect(maxDiff(got.probabilities, (model.predict(data.nhwc) as tf.Tensor).dataSync())).toBeLessThan(1e-5);
    expect(got.featureDims).toEqual([2, 4, 6, 6]); // the feature map entering the GAP, for Grad-CAM
  });
});

describe("preprocessing and augmentation layers", () => {
  it("Rescaling is applied (the card then feeds pixels 0–255); random augmentation layers of Keras 2 and 3 are identity", async () => {
    const L = tf.layers;
    const input = tf.input({ shape: [10, 10, 3], name: "img" });
    let x = L.rescaling({ scale: 1 / 127.5, offset: -1, name: "rescaling" }).apply(input) as tf.SymbolicTensor;
    x = L.conv2d({ filters: 3, kernelSize: 3, activation: "relu", name: "conv" }).apply(x) as tf.SymbolicTensor;
    x = L.globalAveragePooling2d({ name: "gap" }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: L.dense({ units: 2, activation: "softmax", name: "out" }).apply(x) as tf.SymbolicTensor });
    const saved = await save(model);
    // Insert augmentation layers between the input and Rescaling, as `data_augmentation = Sequential([...])` does.
    const layers = saved.topology.config.layers as Json[];
    const augment = ["RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast", "RandomTranslation"].map((cls, i) => ({
      class_name: cls,
      name: `aug_${i}`,
      config: { name: `aug_${i}`, mode: "horizontal", factor: 0.2, seed: null },
      inbound_nodes: [[[i === 0 ? "img" : `aug_${i - 1}`, 0, 0, {}]]],
    }));
    const rescaling = layers.find((l) => l.name === "rescaling")!;
    rescaling.inbound_nodes = [[[`aug_${augment.length - 1}`, 0, 0, {}]]];
    layers.splice(1, 0, ...augment);
    const result = await importModel({ source: writeTfjs(path.join(root, "src-augment"), saved), name: "augment", classes: ["N", "P"], modelsDir: root });
    expect(result.card.preprocessing).toEqual({ scale: "0-1", mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] });
    const r = random(4);
    const pixels = Float32Array.from({ length: 2 * 10 * 10 * 3 }, () => Math.round(r() * 255));
    const got = await runOnnx(result.dir, toNchw(pixels, 2, 10, 10, 3), 2, 10);
    expect(maxDiff(got.probabilities, (model.predict(tf.tensor4d(pixels, [2, 10, 10, 3])) as tf.Tensor).dataSync())).toBeLessThan(1e-5);
  });

  it("Normalization (mean/variance as weights, ε = 1e-7) is applied", async () => {
    const L = tf.layers;
    const input = tf.input({ shape: [8, 8, 3], name: "img" });
    let x = L.conv2d({ filters: 3, kernelSize: 3, name: "conv" }).apply(input) as tf.SymbolicTensor;
    x = L.globalAveragePooling2d({ name: "gap" }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: L.dense({ units: 2, activation: "softmax", name: "out" }).apply(x) as tf.SymbolicTensor });
    const saved = await save(model);
    // A Normalization layer after the input (Keras 2 weights: mean, variance, count); TF.js has no such layer, so the
    // reference is the same model fed with (x − mean) / √variance.
    const mean = [100, 120, 90];
    const variance = [900, 1600, 0];
    const layers = saved.topology.config.layers as Json[];
    layers.splice(1, 0, { class_name: "Normalization", name: "normalization", config: { name: "normalization", axis: -1 }, inbound_nodes: [[["img", 0, 0, {}]]] });
    layers.find((l) => l.name === "conv")!.inbound_nodes = [[["normalization", 0, 0, {}]]];
    const extra = new Float32Array([...mean, ...variance, 50]);
    saved.specs = [
      { name: "normalization/mean", shape: [3], dtype: "float32" },
      { name: "normalization/variance", shape: [3], dtype: "float32" },
      { name: "normalization/count", shape: [], dtype: "float32" },
      ...saved.specs,
    ];
    saved.data = new Uint8Array(Buffer.concat([Buffer.from(extra.buffer), Buffer.from(saved.data)]));
    const result = await importModel({ source: writeTfjs(path.join(root, "src-normalization"), saved), name: "normalization", classes: ["N", "P"], modelsDir: root });
    const r = random(5);
    const pixels = Float32Array.from({ length: 8 * 8 * 3 }, () => Math.round(r() * 255));
    const normalised = pixels.map((v, i) => (v - mean[i % 3]!) / Math.max(Math.sqrt(variance[i % 3]!), 1e-7));
    const got = await runOnnx(result.dir, toNchw(pixels, 1, 8, 8, 3), 1, 8);
    expect(maxDiff(got.probabilities, (model.predict(tf.tensor4d(normalised, [1, 8, 8, 3])) as tf.Tensor).dataSync())).toBeLessThan(1e-5);
  });
});

describe("tf.keras 2.13–2.15 .keras: weights under _layer_checkpoint_dependencies, mapped by order", () => {
  /** Two Dense layers of the same shape whose config names are the reverse of the checkpoint's numbering. */
  function model(): tf.LayersModel {
    const L = tf.layers;
    const input = tf.input({ shape: [8, 8, 3], name: "input_1" });
    let x = L.conv2d({ filters: 4, kernelSize: 3, activation: "relu", name: "conv2d" }).apply(input) as tf.SymbolicTensor;
    x = L.globalAveragePooling2d({ name: "global_average_pooling2d" }).apply(x) as tf.SymbolicTensor;
    x = L.dense({ units: 4, activation: "relu", name: "dense_2" }).apply(x) as tf.SymbolicTensor; // 1st Dense: checkpoint "dense"
    x = L.dropout({ rate: 0.2, name: "dropout" }).apply(x) as tf.SymbolicTensor;
    const out = L.dense({ units: 4, activation: "softmax", name: "dense" }).apply(x) as tf.SymbolicTensor; // 2nd: "dense_2"
    return tf.model({ inputs: input, outputs: out, name: "model" });
  }

  /**
   * tf.keras 2.13's saving_lib: each layer under `_layer_checkpoint_dependencies/<snake_case(class)>[_n]/vars/<i>`,
   * numbered per class while walking `layer_with_weights-i` then `layer-i` (a layer with weights is met twice, so
   * the second Dense is `dense_2`); saved on Windows, the path separator is a backslash inside ONE group name.
   */
  async function writeTfKeras213(file: string, m: tf.LayersModel, topology: Json, separator: "\\" | "/") {
    const counters = new Map<string, number>();
    const weightsH5 = await h5Bytes((f) => {
      for (const layer of m.layers) {
        const stem = layer.getClassName().replace(/(.)([A-Z][a-z0-9]+)/g, "$1_$2").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
        const visits = layer.weights.length ? 2 : 1;
        const n = counters.get(stem) ?? 0;
        counters.set(stem, n + visits);
        const name = n === 0 ? stem : `${stem}_${n}`;
        const group = separator === "\\" ? f.create_group(`_layer_checkpoint_dependencies\\${name}`) : ensureGroup(f, `_layer_checkpoint_dependencies/${name}`);
        const vars = group.create_group("vars");
        layer.getWeights().forEach((w, i) => vars.create_dataset({ name: String(i), data: w.dataSync() as Float32Array, shape: w.shape, dtype: "<f" }));
      }
    });
    const config = { module: "keras", class_name: "Functional", config: topology.config, registered_name: "Functional" };
    const text = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    writeFileSync(file, zip({ "metadata.json": text({ keras_version: "2.13.1" }), "config.json": text(config), "model.weights.h5": weightsH5 }));
    return weightsH5;
  }

  for (const separator of ["\\", "/"] as const) {
    it(`maps by order, not by name (separator ${JSON.stringify(separator)}): a name match would swap the two Dense layers`, async () => {
      const m = model();
      const saved = await save(m);
      const file = path.join(root, `tfkeras213-${separator === "/" ? "slash" : "backslash"}.keras`);
      const weightsH5 = await writeTfKeras213(file, m, saved.topology, separator);
      // The hazard: the checkpoint group named like the config's "dense_2" holds the OTHER layer's weights.
      const groupOf = await readGroupKernel(weightsH5, separator, "dense_2");
      const kernelOfLayer = (name: string) => Array.from(m.getLayer(name).getWeights()[0]!.dataSync());
      expect(groupOf).toEqual(kernelOfLayer("dense"));
      expect(groupOf).not.toEqual(kernelOfLayer("dense_2"));

      const result = await importModel({ source: file, name: `tfkeras213-${separator === "/" ? "slash" : "backslash"}`, classes: ["a", "b", "c", "d"], modelsDir: root });
      expect(result.format).toBe("keras-v3");
      expect(result.card.source).toMatch(/associés par ordre/);
      const data = inputs(3, 8, 17);
      const got = await runOnnx(result.dir, data.nchw, 3, 8);
      expect(maxDiff(got.probabilities, (m.predict(data.nhwc) as tf.Tensor).dataSync())).toBeLessThan(1e-5);
    });
  }

  async function readGroupKernel(bytes: Uint8Array, separator: string, name: string): Promise<number[]> {
    const module = await h5wasm.ready;
    const file = `/check-${Date.now()}.h5`;
    module.FS!.writeFile(file, bytes);
    const f = new h5wasm.File(file, "r");
    try {
      const path = separator === "\\" ? `_layer_checkpoint_dependencies\\${name}` : `_layer_checkpoint_dependencies/${name}`;
      const group = separator === "\\" ? (f.get(path) as Group) : (f.get(path) as Group);
      return Array.from((group.get("vars/0") as unknown as { value: Float32Array }).value);
    } finally {
      f.close();
      module.FS!.unlink(file);
    }
  }
});
