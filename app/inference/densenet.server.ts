/**
 * The demonstration model: a real DenseNet121 (Huang et al. 2017, as `keras.applications.DenseNet121`: growth rate
 * 32, dense blocks of 6/12/24/16 bottleneck layers, compression 0.5, 7,039,554 parameters with a two-class head)
 * whose weights are drawn from a seeded pseudo-random generator instead of being trained. Same seed, same bytes:
 * every installation builds the identical `model.onnx` (and SHA-256) without downloading anything.
 *
 * The network is described as a Keras model configuration (the JSON `model.to_json()` writes, with Keras' own layer
 * names) and converted by the same layer-by-layer converter that imports hospitals' Keras models, so the demo model
 * and an imported one go through one code path. TF.js can load the same JSON (the benchmark does).
 *
 * Not a clinical model: its card says `clinical: false` and that it is for demonstration only.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { makeDirectoryDurably, renameDurably, writeFileSynced } from "../durable-fs.server";
import { classesJson, KERAS_DENSENET_PREPROCESSING, type ModelCard } from "./model-card";
import { parseKerasTopology } from "./import/keras-topology";
import { kerasToOnnx, type WeightArray } from "./import/keras-to-onnx";

export const DEMO_MODEL_NAME = "densenet121-demo";
export const DEMO_MODEL_VERSION = "1.0.0-demo";
export const DEMO_CLASSES = ["Negative", "Positive"] as const;
export const DEMO_SEED = 20261123;
/** Keras' `DenseNet121(weights=None, classes=2).count_params()`. */
export const DENSENET121_PARAMETERS_2_CLASSES = 7_039_554;

const GROWTH = 32;
const BLOCKS = [6, 12, 24, 16] as const;
const BN_EPSILON = 1.001e-5;

type Json = Record<string, unknown>;

/** The Keras 2 JSON of a functional model, built layer by layer. */
class KerasJson {
  readonly layers: Json[] = [];
  readonly channels = new Map<string, number>();

  add(className: string, name: string, config: Json, inbound: string[], channels: number): string {
    this.layers.push({
      class_name: className,
      name,
      config: { name, trainable: true, dtype: "float32", ...config },
      inbound_nodes: inbound.length ? [inbound.map((n) => [n, 0, 0, {}])] : [],
    });
    this.channels.set(name, channels);
    return name;
  }
  conv(name: string, x: string, filters: number, kernel: number, strides = 1, padding = "valid"): string {
    return this.add(
      "Conv2D",
      name,
      {
        filters,
        kernel_size: [kernel, kernel],
        strides: [strides, strides],
        padding,
        data_format: "channels_last",
        dilation_rate: [1, 1],
        activation: "linear",
        use_bias: false,
      },
      [x],
      filters,
    );
  }
  bn(name: string, x: string): string {
    return this.add("BatchNormalization", name, { axis: 3, momentum: 0.99, epsilon: BN_EPSILON, center: true, scale: true }, [x], this.channels.get(x)!);
  }
  relu(name: string, x: string): string {
    return this.add("Activation", name, { activation: "relu" }, [x], this.channels.get(x)!);
  }
}

/** Keras' DenseNet121 (include_top, `classes` outputs, softmax) as a model configuration (Keras 2 JSON layout). */
export function denseNet121Json(classes = 2, inputSize = 224): Json {
  const k = new KerasJson();
  let x = k.add("InputLayer", "input_1", { batch_input_shape: [null, inputSize, inputSize, 3], sparse: false, ragged: false }, [], 3);
  x = k.add("ZeroPadding2D", "zero_padding2d", { padding: [[3, 3], [3, 3]], data_format: "channels_last" }, [x], 3);
  x = k.conv("conv1/conv", x, 64, 7, 2);
  x = k.bn("conv1/bn", x);
  x = k.relu("conv1/relu", x);
  x = k.add("ZeroPadding2D", "zero_padding2d_1", { padding: [[1, 1], [1, 1]], data_format: "channels_last" }, [x], 64);
  x = k.add("MaxPooling2D", "pool1", { pool_size: [3, 3], strides: [2, 2], padding: "valid", data_format: "channels_last" }, [x], 64);
  BLOCKS.forEach((blocks, b) => {
    const stage = `conv${b + 2}`;
    for (let i = 1; i <= blocks; i++) {
      const name = `${stage}_block${i}`;
      let y = k.bn(`${name}_0_bn`, x);
      y = k.relu(`${name}_0_relu`, y);
      y = k.conv(`${name}_1_conv`, y, 4 * GROWTH, 1);
      y = k.bn(`${name}_1_bn`, y);
      y = k.relu(`${name}_1_relu`, y);
      y = k.conv(`${name}_2_conv`, y, GROWTH, 3, 1, "same");
      x = k.add("Concatenate", `${name}_concat`, { axis: 3 }, [x, y], k.channels.get(x)! + GROWTH);
    }
    if (b < BLOCKS.length - 1) {
      const name = `pool${b + 2}`;
      let y = k.bn(`${name}_bn`, x);
      y = k.relu(`${name}_relu`, y);
      y = k.conv(`${name}_conv`, y, Math.floor(k.channels.get(y)! * 0.5), 1);
      x = k.add("AveragePooling2D", `${name}_pool`, { pool_size: [2, 2], strides: [2, 2], padding: "valid", data_format: "channels_last" }, [y], k.channels.get(y)!);
    }
  });
  x = k.bn("bn", x);
  x = k.relu("relu", x);
  x = k.add("GlobalAveragePooling2D", "avg_pool", { data_format: "channels_last", keepdims: false }, [x], k.channels.get(x)!);
  x = k.add("Dense", "predictions", { units: classes, activation: "softmax", use_bias: true }, [x], classes);
  return {
    class_name: "Functional",
    config: { name: "densenet121", layers: k.layers, input_layers: [["input_1", 0, 0]], output_layers: [[x, 0, 0]] },
    keras_version: "2.15.0",
    backend: "tensorflow",
  };
}

/** mulberry32: a small, fast, well-mixed 32-bit generator; deterministic across platforms. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills `out` with N(0, std²) samples (Box–Muller), truncated at 2 std like Keras' he_normal. */
function fillNormal(out: Float32Array, std: number, random: () => number): Float32Array {
  for (let i = 0; i < out.length; ) {
    const u = 1 - random(); // (0, 1]
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u));
    for (const z of [r * Math.cos(2 * Math.PI * v), r * Math.sin(2 * Math.PI * v)]) {
      if (Math.abs(z) <= 2 && i < out.length) out[i++] = z * std;
    }
  }
  return out;
}

/**
 * Deterministic weights for {@link denseNet121Json}, per layer name in Keras' order: He-normal convolution kernels,
 * identity batch normalisation (γ 1, β 0, mean 0, variance 1), and a classification layer scaled so that different
 * images get clearly different probabilities.
 */
export function denseNet121Weights(json: Json, seed = DEMO_SEED): Map<string, WeightArray[]> {
  const random = mulberry32(seed);
  const layers = (json.config as { layers: Json[] }).layers;
  const channels = new Map<string, number>();
  const weights = new Map<string, WeightArray[]>();
  for (const layer of layers) {
    const name = String(layer.name);
    const c = layer.config as Json;
    const inbound = ((layer.inbound_nodes as unknown[][][])[0] ?? []).map((ref) => String(ref[0]));
    const cin = inbound.length ? channels.get(inbound[0]!)! : 3;
    let cout = cin;
    switch (layer.class_name) {
      case "Conv2D": {
        const [kh, kw] = c.kernel_size as [number, number];
        cout = Number(c.filters);
        const shape = [kh, kw, cin, cout];
        const data = fillNormal(new Float32Array(kh * kw * cin * cout), Math.sqrt(2 / (kh * kw * cin)), random);
        weights.set(name, [{ name: `${name}/kernel:0`, shape, data }]);
        break;
      }
      case "BatchNormalization":
        weights.set(name, [
          { name: `${name}/gamma:0`, shape: [cin], data: new Float32Array(cin).fill(1) },
          { name: `${name}/beta:0`, shape: [cin], data: new Float32Array(cin) },
          { name: `${name}/moving_mean:0`, shape: [cin], data: new Float32Array(cin) },
          { name: `${name}/moving_variance:0`, shape: [cin], data: new Float32Array(cin).fill(1) },
        ]);
        break;
      case "Concatenate":
        cout = inbound.reduce((sum, n) => sum + channels.get(n)!, 0);
        break;
      case "Dense": {
        cout = Number(c.units);
        const kernel = fillNormal(new Float32Array(cin * cout), DENSE_STD, random);
        weights.set(name, [
          { name: `${name}/kernel:0`, shape: [cin, cout], data: kernel },
          { name: `${name}/bias:0`, shape: [cout], data: new Float32Array(cout) },
        ]);
        break;
      }
    }
    channels.set(name, cout);
  }
  return weights;
}

/**
 * Standard deviation of the demo's classification weights. The pooled features of this untrained network vary
 * little from image to image (each is an average over 7×7 positions of rectified activations); He-normal weights
 * (√(2/1024) ≈ 0.044) would put every probability within a few hundredths of 0.5, so they are scaled up.
 */
const DENSE_STD = 0.5;

export interface DemoModelFiles {
  onnx: Uint8Array;
  card: ModelCard;
  classes: Record<string, string>;
  parameterCount: number;
}

/** Builds the demo model in memory (≈ 28 MB of ONNX). */
export function buildDemoModel(): DemoModelFiles {
  const json = denseNet121Json(DEMO_CLASSES.length);
  const weights = denseNet121Weights(json);
  const converted = kerasToOnnx(parseKerasTopology(json), (p) => weights.get(p[p.length - 1]!) ?? [], {
    producer: "nexus model:demo",
    docString: "DenseNet121, deterministic seeded weights: demonstration only, not clinically validated.",
  });
  const sha256 = createHash("sha256").update(converted.onnx).digest("hex");
  const card: ModelCard = {
    name: DEMO_MODEL_NAME,
    version: DEMO_MODEL_VERSION,
    inputSize: converted.inputSize,
    preprocessing: KERAS_DENSENET_PREPROCESSING,
    intendedUse:
      "Démonstration de la plateforme uniquement — modèle de démonstration, non validé cliniquement. Ses poids sont " +
      "pseudo-aléatoires : ses résultats n'ont aucune valeur médicale et ne doivent jamais servir au dépistage ni au diagnostic.",
    trainingData: `Aucune : poids pseudo-aléatoires déterministes (graine ${DEMO_SEED}), le modèle n'a vu aucune image.`,
    clinical: false,
    sha256,
    source: "npm run model:demo (DenseNet121, Keras architecture, seeded weights)",
  };
  return { onnx: converted.onnx, card, classes: classesJson(DEMO_CLASSES), parameterCount: converted.parameterCount };
}

/**
 * Writes a model directory's three files; each appears atomically (temporary file + rename) and is durable under its
 * name once this returns (app/durable-fs.server.ts).
 */
export async function writeModelDirectory(dir: string, files: { onnx: Uint8Array; card: ModelCard; classes: Record<string, string> }): Promise<void> {
  await makeDirectoryDurably(dir, 0o755);
  const put = async (name: string, data: Uint8Array | string) => {
    const tmp = path.join(dir, `.${name}.${process.pid}.${Date.now()}.tmp`);
    try {
      await writeFileSynced(tmp, data, 0o644);
      await renameDurably(tmp, path.join(dir, name));
    } finally {
      await rm(tmp, { force: true });
    }
  };
  // The weights first and the card last: a directory with a card always has the weights the card describes.
  await put("model.onnx", files.onnx);
  await put("classes.json", JSON.stringify(files.classes, null, 2) + "\n");
  await put("card.json", JSON.stringify(files.card, null, 2) + "\n");
}

/** Builds the demo model into `dir`. */
export async function writeDemoModel(dir: string): Promise<DemoModelFiles> {
  const files = buildDemoModel();
  await writeModelDirectory(dir, files);
  return files;
}

/** Builds the demo model into `dir` unless its three files are already there. Returns whether it built it. */
export async function ensureDemoModel(dir: string): Promise<boolean> {
  if (["model.onnx", "classes.json", "card.json"].every((f) => existsSync(path.join(dir, f)))) return false;
  await writeDemoModel(dir);
  return true;
}
