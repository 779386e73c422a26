/**
 * Keras 2 `.h5` files written by h5py (Debian's python3-h5py) exactly as Keras 2 writes them — empty `weight_names`
 * as zero-length float64 arrays, bytes attributes, `layer_names0/1…` / `weight_names0/1…` / `model_config0/1`
 * chunks — by tests/fixtures/keras2/make_keras2_h5.py, imported, and compared with TF.js running the same
 * configuration with the same weights (read from the script's own plain float32 dump, not from the HDF5 file):
 * probabilities, and Grad-CAM's gradients from the ONNX graph against `tf.grad` through the same head.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModelDirectory } from "../model.server";
import { importModel } from "./import-model";

const SCRIPT = path.resolve("tests/fixtures/keras2/make_keras2_h5.py");

/** A python3 that has h5py (Debian: python3-h5py), or null. */
function pythonWithH5py(): string | null {
  for (const candidate of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(candidate, ["-c", "import h5py, numpy"], { encoding: "utf8" });
    if (r.status === 0) return candidate;
  }
  return null;
}

const python = pythonWithH5py();
if (!python) console.log("skipped: Keras 2 .h5 files written by h5py (install Debian's python3-h5py to run app/inference/import/keras2-h5.test.ts)");

type Json = Record<string, any>;

/** Keras 2 JSON → what TF.js' deserialiser accepts ("Functional" was called "Model" before Keras 2.4). */
function forTfjs(json: unknown): unknown {
  if (Array.isArray(json)) return json.map(forTfjs);
  if (json && typeof json === "object") {
    const out: Json = {};
    for (const [k, v] of Object.entries(json)) out[k] = k === "class_name" && v === "Functional" ? "Model" : forTfjs(v);
    return out;
  }
  return json;
}

interface Fixture {
  config: Json;
  model: tf.LayersModel;
}

async function reference(dir: string, name: string): Promise<Fixture> {
  const h5config = spawnSync(python!, ["-c", `import h5py,sys; f=h5py.File(sys.argv[1]); a=f.attrs; t=lambda v: v.decode() if isinstance(v, bytes) else str(v); print(t(a['model_config']) if 'model_config' in a else t(a['model_config0'])+t(a['model_config1']))`, path.join(dir, `${name}.h5`)], {
    encoding: "utf8",
  });
  expect(h5config.status).toBe(0);
  const config = JSON.parse(h5config.stdout) as Json;
  const model = await tf.models.modelFromJSON({ modelTopology: forTfjs(config) as tf.io.ModelJSON["modelTopology"] });
  const manifest = JSON.parse(readFileSync(path.join(dir, `${name}.reference.json`), "utf8")) as Array<{ path: string[]; shape: number[]; offset: number }>;
  const bin = readFileSync(path.join(dir, `${name}.reference.bin`));
  const byLayer = new Map<string, tf.Tensor[]>();
  for (const w of manifest) {
    const count = w.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(bin.buffer.slice(bin.byteOffset + w.offset, bin.byteOffset + w.offset + count * 4));
    const key = w.path.join("/");
    if (!byLayer.has(key)) byLayer.set(key, []);
    byLayer.get(key)!.push(tf.tensor(data, w.shape));
  }
  for (const [key, tensors] of byLayer) {
    const [outer, inner] = key.split("/").length > 1 && model.layers.some((l) => l.name === key.split("/")[0] && "layers" in l) ? [key.split("/")[0]!, key.slice(key.indexOf("/") + 1)] : [key, undefined];
    const layer = inner ? (model.getLayer(outer) as tf.LayersModel).getLayer(inner) : model.getLayer(outer);
    layer.setWeights(tensors);
  }
  return { config, model };
}

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const nhwcToNchw = (data: Float32Array | Int32Array | Uint8Array, n: number, h: number, w: number, c: number) => {
  const out = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + x] = data[((b * h + y) * w + x) * c + k]!;
  return out;
};

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe.skipIf(!python)("Keras 2 .h5 written by h5py → ONNX equals TF.js (probabilities and Grad-CAM gradients)", () => {
  let root: string;
  beforeAll(async () => {
    await tf.setBackend("cpu");
    root = mkdtempSync(path.join(tmpdir(), "nexus-keras2-"));
    for (const variant of ["plain", "chunked"]) {
      const out = path.join(root, variant);
      spawnSync("mkdir", ["-p", out]);
      const r = spawnSync(python!, [SCRIPT, out, ...(variant === "chunked" ? ["--chunk-limit", "100"] : [])], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    }
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /**
   * Imports `<variant>/<name>.h5`, runs it with ONNX Runtime on `n` images and compares with TF.js: probabilities,
   * and ∂(class score)/∂(feature map) against tf.grad of the head's logits (the head's layers applied by TF.js).
   */
  async function compare(variant: string, name: string, classes: string[], opts: { features: string; head: string[]; pixels: number; sigmoid?: boolean }) {
    const dir = path.join(root, variant);
    const { model } = await reference(dir, name);
    const result = await importModel({ source: path.join(dir, `${name}.h5`), name: `${variant}-${name}`, classes, modelsDir: path.join(root, "models") });
    expect(result.format).toBe("keras-h5");
    const loaded = await loadModelDirectory(result.dir);
    expect(loaded.card.heatmap).toBe("grad-cam");
    const size = loaded.card.inputSize;
    const n = 2;
    const r = random(name.length * 7 + variant.length);
    const nhwc = Float32Array.from({ length: n * size * size * 3 }, () => r() * opts.pixels);
    const session = await ort.InferenceSession.create(loaded.onnx);
    const out = await session.run({ input: new ort.Tensor("float32", nhwcToNchw(nhwc, n, size, size, 3), [n, 3, size, size]) });
    await session.release();

    const x = tf.tensor4d(nhwc, [n, size, size, 3]);
    const expected = (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
    const got = out.probabilities!.data as Float32Array;
    const probabilities = opts.sigmoid ? Float32Array.from({ length: n }, (_, i) => got[i * 2 + 1]!) : got;
    const dp = maxDiff(probabilities, expected);

    // TF.js: A = the feature map, then the head layer by layer; the final Dense's logits by hand (x·W + b).
    const featureLayer = model.getLayer(opts.features);
    // A nested model's node 0 is its own graph; its call inside this model is the last node.
    const featureOutput = featureLayer.inboundNodes.length > 1 ? featureLayer.getOutputAt(featureLayer.inboundNodes.length - 1) : featureLayer.output;
    const features = tf.model({ inputs: model.inputs, outputs: featureOutput as tf.SymbolicTensor });
    const A = features.predict(x) as tf.Tensor4D;
    const [, h, w, c] = A.shape;
    const final = model.getLayer(opts.head[opts.head.length - 1]!);
    const [kernel, bias] = final.getWeights();
    const k = got.length / n;
    const logits = (a: tf.Tensor) => {
      let t: tf.Tensor = a;
      for (const layerName of opts.head.slice(0, -1)) t = model.getLayer(layerName).apply(t) as tf.Tensor;
      return tf.add(tf.matMul(t as tf.Tensor2D, kernel as tf.Tensor2D), bias!);
    };
    let dg = 0;
    let scale = 0;
    const gradients = out.gradients!.data as Float32Array;
    expect(out.gradients!.dims).toEqual([n, k, c, h, w]);
    for (let cls = 0; cls < k; cls++) {
      const unit = opts.sigmoid ? 0 : cls;
      const sign = opts.sigmoid ? (cls === 1 ? 0.5 : -0.5) : 1; // sigmoid head: logits (−z/2, z/2)
      const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.slice(logits(a), [0, unit], [-1, 1]), sign)))(A);
      const g = nhwcToNchw(grad.dataSync() as Float32Array, n, h!, w!, c!);
      for (let b = 0; b < n; b++) {
        const slice = gradients.subarray((b * k + cls) * c! * h! * w!, (b * k + cls + 1) * c! * h! * w!);
        const ref = g.subarray(b * c! * h! * w!, (b + 1) * c! * h! * w!);
        dg = Math.max(dg, maxDiff(slice, ref));
        scale = Math.max(scale, ...Array.from(ref, Math.abs));
      }
    }
    console.log(`${variant}/${name}: max |Δ| probabilities ${dp.toExponential(1)}, gradients ${dg.toExponential(1)} (max |∂| ${scale.toExponential(1)})`);
    expect(dp).toBeLessThan(1e-5);
    expect(scale).toBeGreaterThan(0);
    expect(dg).toBeLessThan(1e-5 + 1e-4 * scale);
    return loaded;
  }

  for (const variant of ["plain", "chunked"]) {
    it(`${variant}: small DenseNet (Keras 2.4, layers without weights, names with '/') — GAP → Dense softmax`, async () => {
      await compare(variant, "densenet_like", ["A", "B", "C"], { features: "relu", head: ["avg_pool", "predictions"], pixels: 1 });
    });
    it(`${variant}: transfer learning (Keras 2.10): Rescaling, nested DenseNet base, GAP → Dense relu → Dropout → BN → Dense softmax`, async () => {
      const loaded = await compare(variant, "transfer", ["Négatif", "Positif"], {
        features: "densenet121",
        head: ["global_average_pooling2d", "dense", "dropout", "batch_normalization", "dense_1"],
        pixels: 255,
      });
      // The model scales its own input: the card feeds it pixel values 0–255.
      expect(loaded.card.preprocessing).toMatchObject({ mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] });
    });
    it(`${variant}: Keras 2.0.5 Sequential: LeakyReLU, GlobalMaxPooling2D → Dense tanh → Dense(1, sigmoid)`, async () => {
      await compare(variant, "sequential_2_0_5", ["Négatif", "Positif"], { features: "leaky_re_lu_1", head: ["global_max_pooling2d_1", "dense_1", "dense_2"], pixels: 1, sigmoid: true });
    });
  }

  it("the chunked file really has chunks, and empty weight lists as zero-length float64 arrays", () => {
    const r = spawnSync(
      python!,
      [
        "-c",
        `import h5py,sys; f=h5py.File(sys.argv[1]); g=f['model_weights']; print(sorted(f.attrs.keys())); print(sorted(g.attrs.keys())); a=g['dropout'].attrs['weight_names']; print(a.dtype, a.shape)`,
        path.join(root, "chunked", "transfer.h5"),
      ],
      { encoding: "utf8" },
    );
    expect(r.stdout).toMatch(/'model_config0', 'model_config1'/);
    expect(r.stdout).toMatch(/'layer_names0', 'layer_names1'/);
    expect(r.stdout).toMatch(/float64 \(0,\)/);
  });
});
