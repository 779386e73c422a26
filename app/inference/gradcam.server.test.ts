import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeDemoModel } from "./densenet.server";
import { gradCam, gradCamWeights, heatmapOverlay, jet, upsampleBilinear, type GradCamShape } from "./gradcam.server";
import { attr, onnx, OnnxGraphBuilder } from "./import/onnx-builder";
import { loadModelDirectory, type LoadedModel } from "./model.server";

describe("Grad-CAM from crafted gradients", () => {
  // 3 channels, 7×7; class 1 is driven by channel 0 (and a little channel 1), class 0 by the opposite of channel 0:
  // the gradients a GlobalAveragePooling → Dense head with W = [[-1, 0, 0], [1, 0.5, 0]] would give.
  const shape: GradCamShape = { channels: 3, height: 7, width: 7 };
  const W = [
    [-1, 0, 0],
    [1, 0.5, 0],
  ];
  const gradients = new Float32Array(2 * 3 * 49);
  for (let c = 0; c < 2; c++) for (let k = 0; k < 3; k++) for (let p = 0; p < 49; p++) gradients[(c * 3 + k) * 49 + p] = W[c]![k]! / 49;
  const features = new Float32Array(3 * 49);
  features[0 * 49 + 2 * 7 + 5] = 3; // channel 0: a hot spot at row 2, column 5
  features[0 * 49 + 2 * 7 + 4] = 1;
  for (let p = 0; p < 49; p++) features[2 * 49 + p] = 5; // channel 2: everywhere, but no weight

  it("finds the hot spot of the class's evidence, normalised to [0, 1]", () => {
    const cam = gradCam(features, gradients, shape, 1);
    expect(cam).toMatchObject({ width: 7, height: 7 });
    const argmax = cam.values.indexOf(Math.max(...cam.values));
    expect([Math.floor(argmax / 7), argmax % 7]).toEqual([2, 5]);
    expect(cam.values[2 * 7 + 5]).toBe(1);
    expect(cam.values[2 * 7 + 4]).toBeCloseTo(1 / 3, 6);
    expect(cam.values[0]).toBe(0);
  });

  it("keeps only positive evidence (ReLU): nothing speaks for class 0 here", () => {
    expect(Array.from(gradCam(features, gradients, shape, 0).values).every((v) => v === 0)).toBe(true);
  });

  it("α_k is the spatial mean of the gradient (here W[c,k] / (h·w)), even when it varies over positions", () => {
    const a = gradCamWeights(gradients, shape, 1);
    [1 / 49, 0.5 / 49, 0].forEach((v, k) => expect(a[k]).toBeCloseTo(v, 9));
    const uneven = new Float32Array(2 * 3 * 49);
    uneven[(1 * 3 + 2) * 49 + 10] = 4.9; // one position of channel 2, class 1 (as a GlobalMaxPooling head gives)
    expect(gradCamWeights(uneven, shape, 1)[2]).toBeCloseTo(0.1, 6);
    expect(() => gradCamWeights(gradients, shape, 2)).toThrow(RangeError);
  });
});

describe("the demo model's `gradients` output = numerical gradient through ONNX Runtime", () => {
  let root: string;
  let model: LoadedModel;
  let full: ort.InferenceSession;
  let headOnly: ort.InferenceSession;

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), "nexus-gradcam-"));
    await writeDemoModel(root);
    model = await loadModelDirectory(root);
    full = await ort.InferenceSession.create(path.join(root, "model.onnx"));
    // The head, cut out of the demo's ONNX file itself: features → GlobalAveragePool → Flatten → Gemm (its own
    // initializers, by name) → logits. Numerical derivatives of these logits are the reference.
    const decoded = onnx.ModelProto.decode(readFileSync(path.join(root, "model.onnx")));
    const init = (name: string) => decoded.graph!.initializer!.find((t) => t.name === name)!;
    const kernel = init("predictions/kernel");
    const bias = init("predictions/bias");
    const g = new OnnxGraphBuilder();
    const f32 = (t: typeof kernel) => new Float32Array(new Uint8Array(t.rawData!).buffer);
    g.initializer("k", kernel.dims!.map(Number), f32(kernel));
    g.initializer("b", bias.dims!.map(Number), f32(bias));
    g.node("GlobalAveragePool", ["features"], ["pooled"]);
    g.node("Flatten", ["pooled"], ["flat"], [attr.int("axis", 1)]);
    g.node("Gemm", ["flat", "k", "b"], ["logits"]);
    const bytes = g.encode({ graphName: "head", inputs: [{ name: "features", shape: [1, 1024, 7, 7] }], outputs: [{ name: "logits", shape: [1, 2] }] });
    headOnly = await ort.InferenceSession.create(bytes);
  });
  afterAll(async () => {
    await full?.release();
    await headOnly?.release();
    rmSync(root, { recursive: true, force: true });
  });

  async function realOutputs(): Promise<{ features: Float32Array; gradients: Float32Array; probabilities: Float32Array }> {
    const input = new Float32Array(3 * 224 * 224);
    for (let i = 0; i < input.length; i++) input[i] = Math.sin(i / 97) * 1.5 + ((i % 224) / 224 - 0.5); // a smooth synthetic image
    const out = await full.run({ input: new ort.Tensor("float32", input, [1, 3, 224, 224]) });
    return {
      features: out.features!.data as Float32Array,
      gradients: out.gradients!.data as Float32Array,
      probabilities: out.probabilities!.data as Float32Array,
    };
  }
  const logits = async (features: Float32Array) =>
    (await headOnly.run({ features: new ort.Tensor("float32", features, [1, 1024, 7, 7]) })).logits!.data as Float32Array;

  it("the extracted head reproduces the model's probabilities", async () => {
    const { features, probabilities } = await realOutputs();
    const z = await logits(features);
    const softmax = [Math.exp(z[0]!), Math.exp(z[1]!)].map((e, _, all) => e / (all[0]! + all[1]!));
    expect(softmax[0]).toBeCloseTo(probabilities[0]!, 5);
    expect(softmax[1]).toBeCloseTo(probabilities[1]!, 5);
  });

  it("∂y_c/∂A_k[i,j] measured by central differences equals the graph's `gradients`", async () => {
    const { features, gradients } = await realOutputs();
    const eps = 0.25;
    const shape = model.gradCam!;
    // the channels with the largest weights for class 1, plus channel 0; a few positions each
    const alpha1 = gradCamWeights(gradients, shape, 1);
    const channels = [0, ...Array.from(alpha1.keys()).sort((a, b) => Math.abs(alpha1[b]!) - Math.abs(alpha1[a]!)).slice(0, 3)];
    for (const k of channels) {
      for (const [i, j] of [[0, 0], [3, 4], [6, 2]] as const) {
        const index = k * 49 + i * 7 + j;
        const plus = Float32Array.from(features);
        const minus = Float32Array.from(features);
        plus[index]! += eps;
        minus[index]! -= eps;
        const [zp, zm] = [await logits(plus), await logits(minus)];
        for (const c of [0, 1]) {
          const numerical = (zp[c]! - zm[c]!) / (2 * eps);
          const graph = gradients[c * 1024 * 49 + index]!;
          expect(Math.abs(numerical - graph)).toBeLessThan(2e-4 + 0.01 * Math.abs(graph));
        }
      }
    }
  });

  it("the CAM equals ReLU(Σ_k α_k A_k) / max computed independently in float64", async () => {
    const { features, gradients } = await realOutputs();
    for (const c of [0, 1]) {
      const alpha = new Float64Array(1024);
      for (let k = 0; k < 1024; k++) for (let p = 0; p < 49; p++) alpha[k]! += gradients[(c * 1024 + k) * 49 + p]! / 49;
      const expected = new Float64Array(49);
      for (let k = 0; k < 1024; k++) for (let p = 0; p < 49; p++) expected[p]! += alpha[k]! * features[k * 49 + p]!;
      const relu = Array.from(expected, (v) => Math.max(0, v));
      const max = Math.max(...relu);
      const cam = gradCam(features, gradients, model.gradCam!, c);
      relu.forEach((v, p) => expect(cam.values[p]).toBeCloseTo(max > 0 ? v / max : 0, 4));
    }
  });
});

describe("heatmap overlay", () => {
  const cam = { width: 7, height: 7, values: new Float32Array(49) };
  cam.values[0] = 1; // top-left corner hot, everything else cold

  it("is a transparent PNG at the image's proportions, at most 1024 px, alpha following the activation", async () => {
    const png = await heatmapOverlay(cam, 4000, 3000);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect((await sharp(png).metadata()).format).toBe("png");
    expect(info).toMatchObject({ width: 1024, height: 768, channels: 4 });
    const at = (x: number, y: number) => Array.from(data.subarray((y * 1024 + x) * 4, (y * 1024 + x) * 4 + 4));
    const hot = at(40, 40);
    const cold = at(900, 700);
    expect(hot[3]).toBeGreaterThan(120); // ≈ 0.6 × 255 at activation 1
    expect(hot[0]).toBeGreaterThan(hot[2]!); // red end of the colour map
    expect(cold[3]).toBe(0);
  });

  it("keeps a small image's size", async () => {
    const info = await sharp(await heatmapOverlay(cam, 300, 200)).metadata();
    expect([info.width, info.height]).toEqual([300, 200]);
  });

  it("upsamples bilinearly with pixel centres aligned", () => {
    // 2×1 → 8×1: centres of the two source pixels fall at x = 1.5 and 5.5; clamped outside
    const up = upsampleBilinear({ width: 2, height: 1, values: Float32Array.from([0, 1]) }, 8, 2);
    expect(Array.from(up.subarray(0, 8))).toEqual([0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1]);
    expect(Array.from(up.subarray(8))).toEqual(Array.from(up.subarray(0, 8)));
    const same = upsampleBilinear(cam, 7, 7);
    expect(Array.from(same)).toEqual(Array.from(cam.values));
  });

  it("maps 0 → blue, 0.5 → green, 1 → red", () => {
    expect(jet(0)).toEqual([0, 0, 128]);
    expect(jet(0.5)).toEqual([128, 255, 128]);
    expect(jet(1)).toEqual([128, 0, 0]);
  });
});
