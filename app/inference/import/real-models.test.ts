/**
 * Models written by real Keras (not by this project, not by a script imitating it): see tests/fixtures/keras2/real/.
 * The reference outputs were computed by Keras itself when the file was made.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { ImportError, importModel } from "./import-model";
import { readKerasModel } from "./keras-files";
import { kerasToOnnx } from "./keras-to-onnx";

const REAL = path.resolve("tests/fixtures/keras2/real");

/** A little-endian float64 / float32 `.npy` array (format version 1 or 2). */
function readNpy(file: string): { shape: number[]; data: Float64Array } {
  const bytes = readFileSync(file);
  if (bytes.subarray(0, 6).toString("latin1") !== "\x93NUMPY") throw new Error(`${file}: not a .npy file`);
  const major = bytes[6]!;
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = bytes.subarray(start, start + headerLength).toString("latin1");
  const descr = /'descr':\s*'([<>|]?[fi]\d)'/.exec(header)?.[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? "").split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
  const body = bytes.subarray(start + headerLength);
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(count);
  for (let i = 0; i < count; i++) data[i] = descr === "<f8" ? body.readDoubleLE(i * 8) : descr === "<f4" ? body.readFloatLE(i * 4) : NaN;
  if (descr !== "<f8" && descr !== "<f4") throw new Error(`${file}: dtype ${descr}`);
  return { shape, data };
}

describe("a Keras 2.1.3 .h5 saved by Keras itself (Deeplearning4j's test resources)", () => {
  const file = path.join(REAL, "cnn_batch_norm.h5");

  it("is read (empty weight_names of activation_1 / flatten_1 are zero-length float64 arrays)", async () => {
    const source = await readKerasModel(file);
    expect(source.producer).toBe("Keras 2.1.3 (tensorflow)");
    expect(source.topology.layers.map((l) => l.className)).toEqual(["InputLayer", "Conv2D", "BatchNormalization", "Activation", "Conv2D", "Flatten", "Dense"]);
    expect(source.weights(["activation_1"])).toEqual([]);
    expect(source.weights(["batch_normalization_1"]).map((w) => w.name)).toEqual([
      "batch_normalization_1/gamma:0",
      "batch_normalization_1/beta:0",
      "batch_normalization_1/moving_mean:0",
      "batch_normalization_1/moving_variance:0",
    ]);
  });

  it("is refused as a classifier, naming the layer: its output is a linear Dense (a regression)", async () => {
    const err = await importModel({ source: file, name: "real-cnn", classes: ["a", "b"], modelsDir: path.join(REAL, "never-written") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/couche dense_1 : activation de sortie « linear »/);
    expect(err).not.toBeInstanceOf(ImportError); // a ConversionError, reported by the CLI as « Import refusé : … »
  });

  it("with a sigmoid appended, ONNX Runtime gives sigmoid(Keras' own predictions) on Keras' own inputs", async () => {
    const source = await readKerasModel(file);
    const last = source.topology.outputs[0]!;
    source.topology.layers.push({ className: "Activation", name: "test_sigmoid", config: { activation: "sigmoid" }, inbound: [last], weightPath: ["test_sigmoid"] });
    source.topology.outputs = ["test_sigmoid"];
    const converted = kerasToOnnx(source.topology, source.weights);
    expect(converted.parameterCount).toBe(28 + 4 + 10 + 37); // Keras' model.count_params(): conv 3·3·3+1, BN 4, conv 9+1, dense 36+1
    const input = readNpy(path.join(REAL, "input.npy"));
    const expected = readNpy(path.join(REAL, "predictions.npy"));
    expect(input.shape).toEqual([5, 10, 10, 3]);
    const [n, h, w, c] = input.shape as [number, number, number, number];
    const nchw = new Float32Array(n * c * h * w);
    for (let b = 0; b < n; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) nchw[((b * c + k) * h + y) * w + x] = input.data[((b * h + y) * w + x) * c + k]!;
    const session = await ort.InferenceSession.create(converted.onnx);
    const out = await session.run({ input: new ort.Tensor("float32", nchw, [n, c, h, w]) });
    await session.release();
    const p = out.probabilities!.data as Float32Array;
    for (let i = 0; i < n; i++) expect(Math.abs(p[i * 2 + 1]! - 1 / (1 + Math.exp(-expected.data[i]!)))).toBeLessThan(1e-6);
    expect(out.gradients!.dims).toEqual([5, 2, 1, 6, 6]); // Grad-CAM through the Flatten → Dense head
  });
});
