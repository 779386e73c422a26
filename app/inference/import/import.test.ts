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
  const weightsH5 = await h5Bytes((f) => {
    const base = f.create_group("layers");
    for (const { layer, weights } of layerWeights(model)) {
      const vars = base.create_group(clean(layer)).create_group("vars");
      weights.forEach((w, i) => vars.create_dataset({ name: String(i), data: w.data, shape: w.shape, dtype: "<f" }));
    }
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
