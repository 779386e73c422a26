/**
 * Keras layers (NHWC, channels last) → an ONNX graph (NCHW), layer by layer:
 *
 *   InputLayer · ZeroPadding2D → Pad (int64 pads) · Conv2D (bias or not, 'valid' / 'same' → SAME_UPPER, groups,
 *   dilation) · DepthwiseConv2D (grouped Conv) · BatchNormalization (epsilon from the config) · Activation / ReLU /
 *   LeakyReLU / Softmax · MaxPooling2D · AveragePooling2D (count_include_pad = 0, as TensorFlow) · Concatenate
 *   (axis −1 → 1) · Add · GlobalAveragePooling2D · GlobalMaxPooling2D · Flatten (NHWC order kept) · Dense → Gemm ·
 *   Rescaling, Normalization (applied) · Dropout & co. and random augmentation layers (identity at inference).
 *
 * Weights are transposed from Keras' layouts (Conv2D kernel [kh, kw, in, out] → [out, in, kh, kw]).
 *
 * The graph has one input `input` [N, 3, S, S] and three outputs: `probabilities` [N, K], `features` [N, C, h, w]
 * (the last convolutional feature map: what enters the head's first GlobalAveragePooling2D / GlobalMaxPooling2D /
 * Flatten) and `gradients` [N, K, C, h, w] (∂ class score / ∂ features, emitted as the ONNX backward pass of the head:
 * see {@link headGradients}) for Grad-CAM. The head is any chain of Dense / Dropout / BatchNormalization /
 * Activation after the pooling, ending in a Dense with softmax, or a one-unit sigmoid rewritten as the equivalent
 * two-class softmax (logits −z/2, z/2), so that classes.json always has one label per output.
 */
import type { LayerSpec, Topology } from "./keras-topology";
import { attr, OnnxGraphBuilder, type Attribute } from "./onnx-builder";

export interface WeightArray {
  /** The stored name ("conv1/conv/kernel:0", "kernel", "vars/0", …). */
  name: string;
  shape: number[];
  data: Float32Array;
}

/** The weights of one layer, in Keras' order (kernel, bias / gamma, beta, moving_mean, moving_variance). */
export type WeightSource = (weightPath: string[]) => WeightArray[];

export interface ConvertOptions {
  /** Square input size used when the model's input shape leaves height/width open. */
  inputSize?: number;
  producer?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

export interface ConvertedModel {
  onnx: Uint8Array;
  inputSize: number;
  /** Number of outputs of `probabilities` (2 for a rewritten sigmoid head). */
  classes: number;
  /** Shape of `features` without the batch axis: [C, h, w]. */
  featureShape: [number, number, number];
  /** Elements of all float initializers (Keras' parameter count, BN's four vectors included). */
  parameterCount: number;
  /** The model starts with its own preprocessing (Rescaling / Normalization): it expects pixel values 0–255. */
  rawPixels: boolean;
}

export class ConversionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConversionError";
  }
}

const PASS_THROUGH = new Set([
  "Alias",
  "Dropout",
  "SpatialDropout1D",
  "SpatialDropout2D",
  "GaussianNoise",
  "GaussianDropout",
  "AlphaDropout",
  "ActivityRegularization",
]);

/**
 * Random augmentation layers, Keras 2 (`tf.keras.layers.*`, `…experimental.preprocessing.*`) and Keras 3 class names:
 * identity at inference (Keras returns its input unchanged when `training` is false).
 */
export const AUGMENTATION = new Set([
  "RandomFlip",
  "RandomRotation",
  "RandomZoom",
  "RandomTranslation",
  "RandomContrast",
  "RandomBrightness",
  "RandomHeight",
  "RandomWidth",
  "RandomGrayscale",
  "RandomHue",
  "RandomSaturation",
  "RandomSharpness",
  "RandomShear",
  "RandomColorJitter",
  "RandomColorDegeneration",
  "RandomPosterization",
  "RandomInvert",
  "RandomErasing",
  "RandomGaussianBlur",
  "RandomPerspective",
  "RandomElasticTransform",
  "RandomApply",
  "RandomChoice",
  "Solarization",
]);

const isIdentity = (className: string) => PASS_THROUGH.has(className) || AUGMENTATION.has(className);

interface Tensor {
  name: string;
  /** Shape without the batch axis: [C, H, W] (rank 4) or [F] (rank 2). */
  shape: number[];
}

type Json = Record<string, unknown>;

function pair(value: unknown, fallback: [number, number], what: string): [number, number] {
  if (value === undefined || value === null) return fallback;
  if (typeof value === "number") return [value, value];
  if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === "number")) return [value[0] as number, value[1] as number];
  throw new ConversionError(`${what} illisible : ${JSON.stringify(value)}`);
}

const ROLE = /(?:^|\/)(kernel|bias|gamma|beta|moving_mean|moving_variance)(?::\d+)?$/;

/** Analysis of the head's end: which layers produce the logits and the probabilities. */
interface Head {
  /** The final Dense layer: its pre-activation output is the class scores Grad-CAM differentiates. */
  dense: LayerSpec;
  /** A one-unit sigmoid head rewritten as a two-class softmax. */
  sigmoid: boolean;
  /** The layer (possibly a separate Activation) whose output is the model's probabilities. */
  output: LayerSpec;
}

function activationOf(layer: LayerSpec): string | undefined {
  if (layer.className === "Activation") return String(layer.config.activation ?? "linear");
  if (layer.className === "Softmax") return "softmax";
  if (layer.className === "Dense") return String(layer.config.activation ?? "linear");
  return undefined;
}

const HEAD_HELP =
  "attendu : GlobalAveragePooling2D / GlobalMaxPooling2D / Flatten → Dense, Dropout, BatchNormalization, Activation… → Dense final avec softmax (ou sigmoïde à une unité) / expected pooling → dense stack → final Dense with softmax or sigmoid";

function findHead(topology: Topology, byName: Map<string, LayerSpec>): Head {
  const fail = (layer: string, why: string) => new ConversionError(`couche ${layer} : ${why} ; ${HEAD_HELP}`);
  if (topology.outputs.length !== 1) throw new ConversionError(`le modèle a ${topology.outputs.length} sorties : une seule est prise en charge (${topology.outputs.join(", ")})`);
  const skip = (name: string): LayerSpec => {
    let layer = byName.get(name)!;
    while (isIdentity(layer.className)) layer = byName.get(layer.inbound[0]!)!;
    return layer;
  };
  const output = skip(topology.outputs[0]!);
  let dense: LayerSpec;
  let kind = activationOf(output);
  if (output.className === "Dense") {
    dense = output;
  } else if (kind === "softmax" || kind === "sigmoid") {
    dense = skip(output.inbound[0]!);
    if (dense.className !== "Dense") throw fail(output.name, `la sortie ${kind} suit une couche ${dense.className} (${dense.name}) et non une couche Dense`);
    if (activationOf(dense) !== "linear") throw fail(dense.name, `activation ${activationOf(dense)} avant la sortie ${kind}`);
  } else {
    throw fail(output.name, `la sortie du modèle est une couche ${output.className} et non une couche Dense`);
  }
  if (output.className === "Dense") kind = activationOf(dense);
  const units = Number(dense.config.units);
  let sigmoid = false;
  if (kind === "sigmoid") {
    if (units !== 1) throw fail(dense.name, `sigmoïde sur ${units} unités (multi-étiquette) non prise en charge`);
    sigmoid = true;
  } else if (kind !== "softmax") {
    throw fail(output.name, `activation de sortie « ${kind} » (des probabilités sont attendues)`);
  }
  return { dense, sigmoid, output };
}

/** What the backward pass of the head needs to know about a layer's forward computation. */
interface Forward {
  /** Input and output tensor names (for an activation: x and y). */
  input: string;
  output: string;
  /** Rank without the batch axis of the input. */
  inputShape: number[];
  /** Activation applied (Dense with activation, Activation, ReLU, LeakyReLU): its kind and pre-activation tensor. */
  activation?: { kind: string; pre: string; alpha?: number; max?: number };
  /** Dense: the kernel initializer [fin, units]. */
  kernel?: string;
  /** BatchNormalization: γ / √(σ² + ε) per feature. */
  bnScale?: Float32Array;
  /** GlobalMaxPooling2D: the pooled [N, C, 1, 1] tensor. */
  pooled?: string;
}

export function kerasToOnnx(topology: Topology, weightSource: WeightSource, options: ConvertOptions = {}): ConvertedModel {
  const g = new OnnxGraphBuilder();
  const byName = new Map(topology.layers.map((l) => [l.name, l]));
  if (topology.inputs.length !== 1) throw new ConversionError(`${topology.inputs.length} entrées : une seule image est attendue`);
  const head = findHead(topology, byName);
  const tensors = new Map<string, Tensor>();
  let parameterCount = 0;
  let inputSize = 0;

  const tensorOf = (name: string): Tensor => {
    const t = tensors.get(name);
    if (!t) throw new ConversionError(`tenseur ${name} introuvable`);
    return t;
  };
  const forward = new Map<string, Forward>();
  let rawPixels = false;
  const outputName = (layer: LayerSpec) => (layer === head.output ? "probabilities" : layer.name);
  const constant = (name: string, shape: number[], data: Float32Array) => {
    parameterCount += data.length;
    return g.initializer(name, shape, data);
  };

  const weightsOf = (layer: LayerSpec, roles: string[]): Record<string, WeightArray> => {
    const arrays = weightSource(layer.weightPath);
    if (arrays.length !== roles.length) {
      throw new ConversionError(`couche ${layer.name} (${layer.className}) : ${arrays.length} tableaux de poids trouvés, ${roles.length} attendus (${roles.join(", ")})`);
    }
    const named = arrays.map((a) => ROLE.exec(a.name)?.[1]);
    const byRole: Record<string, WeightArray> = {};
    if (named.every((n, i) => n !== undefined && roles.includes(n) && named.indexOf(n) === i)) {
      arrays.forEach((a, i) => (byRole[named[i]!] = a));
    } else {
      roles.forEach((role, i) => (byRole[role] = arrays[i]!));
    }
    for (const [role, a] of Object.entries(byRole)) {
      if (a.data.length !== a.shape.reduce((x, y) => x * y, 1)) throw new ConversionError(`couche ${layer.name} : poids ${role} incohérent`);
    }
    return byRole;
  };

  /** Applies a Keras activation by name; returns the output tensor name (the input for "linear"). */
  const activate = (kind: string, input: string, output: string, nodeName: string, rank: number): string => {
    switch (kind) {
      case "linear":
        return input;
      case "relu":
        return g.node("Relu", [input], [output], [], nodeName);
      case "sigmoid":
        return g.node("Sigmoid", [input], [output], [], nodeName);
      case "tanh":
        return g.node("Tanh", [input], [output], [], nodeName);
      case "softmax":
        return g.node("Softmax", [input], [output], [attr.int("axis", rank === 4 ? 1 : -1)], nodeName);
      case "relu6":
        return clip(input, output, nodeName, 6);
      case "elu":
        return g.node("Elu", [input], [output], [attr.float("alpha", 1)], nodeName);
      case "softplus":
        return g.node("Softplus", [input], [output], [], nodeName);
      case "swish":
      case "silu": {
        const sig = g.node("Sigmoid", [input], [`${nodeName}/sigmoid`], [], `${nodeName}/sigmoid`);
        return g.node("Mul", [input, sig], [output], [], nodeName);
      }
      default:
        throw new ConversionError(`couche ${nodeName.split("/")[0]} : activation « ${kind} » non prise en charge / unsupported activation`);
    }
  };
  const clip = (input: string, output: string, nodeName: string, max: number) => {
    const lo = g.hasInitializer("clip/zero") ? "clip/zero" : g.initializer("clip/zero", [], new Float32Array([0]));
    const hiName = `clip/${max}`;
    const hi = g.hasInitializer(hiName) ? hiName : g.initializer(hiName, [], new Float32Array([max]));
    return g.node("Clip", [input, lo, hi], [output], [], nodeName);
  };

  const spatial = (t: Tensor, layer: LayerSpec): [number, number, number] => {
    if (t.shape.length !== 3) throw new ConversionError(`couche ${layer.name} (${layer.className}) : entrée 4D attendue`);
    return t.shape as [number, number, number];
  };
  const outSize = (size: number, k: number, s: number, d: number, padding: string) =>
    padding === "same" ? Math.ceil(size / s) : Math.floor((size - d * (k - 1) - 1) / s) + 1;
  const paddingOf = (layer: LayerSpec): "valid" | "same" => {
    const p = String(layer.config.padding ?? "valid").toLowerCase();
    if (p !== "valid" && p !== "same") throw new ConversionError(`couche ${layer.name} : padding ${p} non pris en charge`);
    return p;
  };
  const checkChannelsLast = (layer: LayerSpec) => {
    const f = layer.config.data_format;
    if (f !== undefined && f !== null && f !== "channels_last") throw new ConversionError(`couche ${layer.name} : data_format ${String(f)} non pris en charge`);
  };

  for (const layer of topology.layers) {
    const c = layer.config as Json;
    const name = layer.name;
    const out = outputName(layer);
    const input = () => tensorOf(layer.inbound[0]!);
    switch (layer.className) {
      case "InputLayer": {
        const shape = c.batch_input_shape as unknown[] | undefined;
        if (!Array.isArray(shape) || shape.length !== 4) throw new ConversionError(`entrée ${name} : image [lignes, colonnes, canaux] attendue`);
        const [, h, w, ch] = shape as Array<number | null>;
        if (ch !== 3) throw new ConversionError(`entrée ${name} : 3 canaux attendus (RVB), ${String(ch)} trouvés`);
        const size = h ?? w ?? options.inputSize ?? 224;
        if ((h !== null && h !== size) || (w !== null && w !== size)) throw new ConversionError(`entrée ${name} : image carrée attendue (${h}×${w})`);
        inputSize = size;
        tensors.set(name, { name: "input", shape: [3, size, size] });
        break;
      }
      case "ZeroPadding2D": {
        checkChannelsLast(layer);
        const t = input();
        const [ch, h, w] = spatial(t, layer);
        const p = c.padding;
        let top: number, bottom: number, left: number, right: number;
        if (Array.isArray(p) && Array.isArray(p[0])) {
          [top, bottom] = pair(p[0], [0, 0], "padding");
          [left, right] = pair(p[1], [0, 0], "padding");
        } else {
          const [ph, pw] = pair(p, [1, 1], "padding");
          [top, bottom, left, right] = [ph, ph, pw, pw];
        }
        const pads = g.initializer(`${name}/pads`, [8], BigInt64Array.from([0, 0, top, left, 0, 0, bottom, right].map(BigInt)));
        g.node("Pad", [t.name, pads], [out], [attr.string("mode", "constant")], name);
        tensors.set(name, { name: out, shape: [ch, h + top + bottom, w + left + right] });
        break;
      }
      case "Conv2D": {
        checkChannelsLast(layer);
        const t = input();
        const [ch, h, w] = spatial(t, layer);
        const useBias = c.use_bias !== false;
        const wts = weightsOf(layer, useBias ? ["kernel", "bias"] : ["kernel"]);
        const kernel = wts.kernel!;
        if (kernel.shape.length !== 4) throw new ConversionError(`couche ${name} : noyau 4D attendu`);
        const [kh, kw, cin, cout] = kernel.shape as [number, number, number, number];
        const groups = Number(c.groups ?? 1);
        if (cin * groups !== ch) throw new ConversionError(`couche ${name} : ${cin * groups} canaux attendus en entrée, ${ch} reçus`);
        const [sh, sw] = pair(c.strides, [1, 1], "strides");
        const [dh, dw] = pair(c.dilation_rate, [1, 1], "dilation_rate");
        const padding = paddingOf(layer);
        const transposed = new Float32Array(kernel.data.length);
        const src = kernel.data;
        for (let y = 0; y < kh; y++)
          for (let x = 0; x < kw; x++)
            for (let i = 0; i < cin; i++)
              for (let o = 0; o < cout; o++) transposed[((o * cin + i) * kh + y) * kw + x] = src[((y * kw + x) * cin + i) * cout + o]!;
        const inputs = [t.name, constant(`${name}/kernel`, [cout, cin, kh, kw], transposed)];
        if (useBias) inputs.push(constant(`${name}/bias`, [cout], wts.bias!.data));
        const attrs: Attribute[] = [attr.ints("kernel_shape", [kh, kw]), attr.ints("strides", [sh, sw]), attr.ints("dilations", [dh, dw]), attr.int("group", groups)];
        attrs.push(padding === "same" ? attr.string("auto_pad", "SAME_UPPER") : attr.ints("pads", [0, 0, 0, 0]));
        const act = String(c.activation ?? "linear");
        const convOut = g.node("Conv", inputs, [act === "linear" ? out : `${name}/conv`], attrs, name);
        const result = activate(act, convOut, out, `${name}/${act}`, 4);
        tensors.set(name, { name: result, shape: [cout, outSize(h, kh, sh, dh, padding), outSize(w, kw, sw, dw, padding)] });
        break;
      }
      case "DepthwiseConv2D": {
        // Keras kernel [kh, kw, C, multiplier] → ONNX grouped Conv [C·multiplier, 1, kh, kw], group = C.
        checkChannelsLast(layer);
        const t = input();
        const [ch, h, w] = spatial(t, layer);
        const useBias = c.use_bias !== false;
        const wts = weightsOf(layer, useBias ? ["kernel", "bias"] : ["kernel"]);
        const kernel = wts.kernel!;
        const [kh, kw, cin, mult] = kernel.shape as [number, number, number, number];
        if (kernel.shape.length !== 4 || cin !== ch) throw new ConversionError(`couche ${name} : noyau [${kernel.shape.join(", ")}] pour ${ch} canaux`);
        const [sh, sw] = pair(c.strides, [1, 1], "strides");
        const [dh, dw] = pair(c.dilation_rate, [1, 1], "dilation_rate");
        const padding = paddingOf(layer);
        const transposed = new Float32Array(kernel.data.length);
        for (let y = 0; y < kh; y++)
          for (let x = 0; x < kw; x++)
            for (let i = 0; i < cin; i++)
              for (let m = 0; m < mult; m++) transposed[((i * mult + m) * kh + y) * kw + x] = kernel.data[((y * kw + x) * cin + i) * mult + m]!;
        const inputs = [t.name, constant(`${name}/kernel`, [cin * mult, 1, kh, kw], transposed)];
        if (useBias) inputs.push(constant(`${name}/bias`, [cin * mult], wts.bias!.data));
        const attrs: Attribute[] = [attr.ints("kernel_shape", [kh, kw]), attr.ints("strides", [sh, sw]), attr.ints("dilations", [dh, dw]), attr.int("group", cin)];
        attrs.push(padding === "same" ? attr.string("auto_pad", "SAME_UPPER") : attr.ints("pads", [0, 0, 0, 0]));
        const act = String(c.activation ?? "linear");
        const convOut = g.node("Conv", inputs, [act === "linear" ? out : `${name}/conv`], attrs, name);
        const result = activate(act, convOut, out, `${name}/${act}`, 4);
        tensors.set(name, { name: result, shape: [cin * mult, outSize(h, kh, sh, dh, padding), outSize(w, kw, sw, dw, padding)] });
        break;
      }
      case "BatchNormalization": {
        const t = input();
        const axis = Number(Array.isArray(c.axis) ? c.axis[0] : (c.axis ?? -1));
        const rank = t.shape.length + 1;
        if (axis !== -1 && axis !== rank - 1) throw new ConversionError(`couche ${name} : normalisation sur l'axe ${axis} non prise en charge`);
        const ch = t.shape[0]!;
        const scale = c.scale !== false;
        const center = c.center !== false;
        const roles = [...(scale ? ["gamma"] : []), ...(center ? ["beta"] : []), "moving_mean", "moving_variance"];
        const wts = weightsOf(layer, roles);
        for (const [role, a] of Object.entries(wts)) {
          if (a.data.length !== ch) throw new ConversionError(`couche ${name} : ${role} de ${a.data.length} valeurs pour ${ch} canaux`);
        }
        const vec = (role: string, fill: number) =>
          wts[role] ? constant(`${name}/${role}`, [ch], wts[role].data) : constant(`${name}/${role}`, [ch], new Float32Array(ch).fill(fill));
        const eps = Number(c.epsilon ?? 1e-3);
        g.node(
          "BatchNormalization",
          [t.name, vec("gamma", 1), vec("beta", 0), vec("moving_mean", 0), vec("moving_variance", 1)],
          [out],
          [attr.float("epsilon", eps)],
          name,
        );
        const gamma = wts.gamma?.data;
        const variance = wts.moving_variance!.data;
        const bnScale = Float32Array.from({ length: ch }, (_, i) => (gamma ? gamma[i]! : 1) / Math.sqrt(variance[i]! + eps));
        forward.set(name, { input: t.name, output: out, inputShape: t.shape, bnScale });
        tensors.set(name, { name: out, shape: t.shape });
        break;
      }
      case "Activation":
      case "Softmax":
      case "ReLU":
      case "LeakyReLU": {
        const t = input();
        let result: string;
        let activation: Forward["activation"];
        if (head.sigmoid && layer === head.output) {
          result = t.name; // the Dense already produced the two-class softmax
        } else if (layer.className === "ReLU") {
          const max = c.max_value ?? null;
          if (Number(c.negative_slope ?? 0) !== 0 || Number(c.threshold ?? 0) !== 0) throw new ConversionError(`couche ${name} : ReLU paramétrée non prise en charge`);
          result = max === null ? g.node("Relu", [t.name], [out], [], name) : clip(t.name, out, name, Number(max));
          activation = max === null ? { kind: "relu", pre: t.name } : { kind: "clip", pre: t.name, max: Number(max) };
        } else if (layer.className === "LeakyReLU") {
          const alpha = Number(c.negative_slope ?? c.alpha ?? 0.3);
          result = g.node("LeakyRelu", [t.name], [out], [attr.float("alpha", alpha)], name);
          activation = { kind: "leaky", pre: t.name, alpha };
        } else {
          if (layer.className === "Softmax" && c.axis !== undefined && Number(c.axis) !== -1) throw new ConversionError(`couche ${name} : softmax sur l'axe ${String(c.axis)}`);
          const kind = activationOf(layer)!;
          result = activate(kind, t.name, out, name, t.shape.length + 1);
          activation = { kind: kind === "relu6" ? "clip" : kind, pre: t.name, max: kind === "relu6" ? 6 : undefined };
        }
        forward.set(name, { input: t.name, output: result, inputShape: t.shape, activation });
        tensors.set(name, { name: result, shape: t.shape });
        break;
      }
      case "MaxPooling2D":
      case "AveragePooling2D": {
        checkChannelsLast(layer);
        const t = input();
        const [ch, h, w] = spatial(t, layer);
        const [kh, kw] = pair(c.pool_size, [2, 2], "pool_size");
        const [sh, sw] = pair(c.strides, [kh, kw], "strides");
        const padding = paddingOf(layer);
        const attrs: Attribute[] = [attr.ints("kernel_shape", [kh, kw]), attr.ints("strides", [sh, sw])];
        attrs.push(padding === "same" ? attr.string("auto_pad", "SAME_UPPER") : attr.ints("pads", [0, 0, 0, 0]));
        if (layer.className === "AveragePooling2D") attrs.push(attr.int("count_include_pad", 0));
        g.node(layer.className === "MaxPooling2D" ? "MaxPool" : "AveragePool", [t.name], [out], attrs, name);
        tensors.set(name, { name: out, shape: [ch, outSize(h, kh, sh, 1, padding), outSize(w, kw, sw, 1, padding)] });
        break;
      }
      case "GlobalAveragePooling2D":
      case "GlobalMaxPooling2D": {
        checkChannelsLast(layer);
        const t = input();
        const [ch] = spatial(t, layer);
        const op = layer.className === "GlobalAveragePooling2D" ? "GlobalAveragePool" : "GlobalMaxPool";
        if (c.keepdims === true) {
          g.node(op, [t.name], [out], [], name);
          tensors.set(name, { name: out, shape: [ch, 1, 1] });
          forward.set(name, { input: t.name, output: out, inputShape: t.shape, pooled: out });
        } else {
          const pooled = g.node(op, [t.name], [`${name}/pooled`], [], name);
          g.node("Flatten", [pooled], [out], [attr.int("axis", 1)], `${name}/flatten`);
          tensors.set(name, { name: out, shape: [ch] });
          forward.set(name, { input: t.name, output: out, inputShape: t.shape, pooled });
        }
        break;
      }
      case "Flatten": {
        checkChannelsLast(layer);
        const t = input();
        forward.set(name, { input: t.name, output: out, inputShape: t.shape });
        if (t.shape.length === 1) {
          tensors.set(name, t);
          break;
        }
        // Keras flattens NHWC: go back to channels last first so that a following Dense sees the same order.
        const nhwc = g.node("Transpose", [t.name], [`${name}/nhwc`], [attr.ints("perm", [0, 2, 3, 1])], `${name}/transpose`);
        g.node("Flatten", [nhwc], [out], [attr.int("axis", 1)], name);
        tensors.set(name, { name: out, shape: [t.shape.reduce((a, b) => a * b, 1)] });
        break;
      }
      case "Concatenate": {
        const inputs = layer.inbound.map(tensorOf);
        const rank = inputs[0]!.shape.length + 1;
        if (inputs.some((t) => t.shape.length + 1 !== rank)) throw new ConversionError(`couche ${name} : entrées de rangs différents`);
        let axis = Number(c.axis ?? -1);
        if (axis < 0) axis += rank;
        const onnxAxis = rank === 4 ? [0, 2, 3, 1][axis]! : axis;
        if (onnxAxis === 0) throw new ConversionError(`couche ${name} : concaténation sur l'axe du lot`);
        const shape = [...inputs[0]!.shape];
        for (const t of inputs.slice(1)) {
          t.shape.forEach((d, i) => {
            if (i !== onnxAxis - 1 && d !== shape[i]) throw new ConversionError(`couche ${name} : formes incompatibles`);
          });
          shape[onnxAxis - 1]! += t.shape[onnxAxis - 1]!;
        }
        g.node("Concat", inputs.map((t) => t.name), [out], [attr.int("axis", onnxAxis)], name);
        tensors.set(name, { name: out, shape });
        break;
      }
      case "Add": {
        const inputs = layer.inbound.map(tensorOf);
        if (inputs.some((t) => t.shape.join() !== inputs[0]!.shape.join())) throw new ConversionError(`couche ${name} : formes incompatibles`);
        g.node("Sum", inputs.map((t) => t.name), [out], [], name);
        tensors.set(name, { name: out, shape: inputs[0]!.shape });
        break;
      }
      case "Dense": {
        const t = input();
        if (t.shape.length !== 1) throw new ConversionError(`couche ${name} : Dense sur une entrée de rang ${t.shape.length + 1} non prise en charge`);
        const useBias = c.use_bias !== false;
        const wts = weightsOf(layer, useBias ? ["kernel", "bias"] : ["kernel"]);
        const kernel = wts.kernel!;
        const [fin, units] = kernel.shape as [number, number];
        if (kernel.shape.length !== 2 || fin !== t.shape[0]) throw new ConversionError(`couche ${name} : noyau [${kernel.shape.join(", ")}] pour ${t.shape[0]} entrées`);
        let act = String(c.activation ?? "linear");
        let kernelData = kernel.data;
        let biasData = useBias ? wts.bias!.data : new Float32Array(units);
        let outUnits = units;
        if (head.sigmoid && layer === head.dense) {
          // σ(z) = softmax([−z/2, z/2])[1]: the same probabilities, with a class score per label for Grad-CAM.
          kernelData = new Float32Array(fin * 2);
          for (let i = 0; i < fin; i++) {
            kernelData[i * 2] = -kernel.data[i]! / 2;
            kernelData[i * 2 + 1] = kernel.data[i]! / 2;
          }
          biasData = Float32Array.from([-biasData[0]! / 2, biasData[0]! / 2]);
          outUnits = 2;
          act = "softmax";
        }
        // Parameters as Keras counts them (the rewritten sigmoid head stores each weight twice, negated and halved).
        const inputs = [t.name, g.initializer(`${name}/kernel`, [fin, outUnits], kernelData)];
        parameterCount += kernel.data.length + (useBias ? units : 0);
        if (useBias || head.sigmoid) inputs.push(g.initializer(`${name}/bias`, [outUnits], biasData));
        const gemmOut = g.node("Gemm", inputs, [act === "linear" ? out : `${name}/logits`], [], name);
        const result = activate(act, gemmOut, out, `${name}/${act}`, 2);
        forward.set(name, {
          input: t.name,
          output: result,
          inputShape: t.shape,
          kernel: inputs[1]!,
          activation: { kind: act === "relu6" ? "clip" : act, pre: gemmOut, max: act === "relu6" ? 6 : undefined },
        });
        tensors.set(name, { name: result, shape: [outUnits] });
        break;
      }
      case "Rescaling": {
        // y = x · scale + offset (scale, offset: numbers or per-channel lists).
        const t = input();
        const ch = t.shape[0]!;
        const vector = (v: unknown, fallback: number, what: string): Float32Array => {
          const values = v === undefined || v === null ? [fallback] : Array.isArray(v) ? v.map(Number) : [Number(v)];
          if (values.some((x) => !Number.isFinite(x)) || (values.length !== 1 && values.length !== ch)) {
            throw new ConversionError(`couche ${name} (Rescaling) : ${what} illisible (${JSON.stringify(v)})`);
          }
          return Float32Array.from({ length: ch }, (_, i) => values[values.length === 1 ? 0 : i]!);
        };
        const shape = t.shape.length === 3 ? [ch, 1, 1] : [ch];
        const scaled = g.node("Mul", [t.name, g.initializer(`${name}/scale`, shape, vector(c.scale, 1, "scale"))], [`${name}/scaled`], [], `${name}/mul`);
        g.node("Add", [scaled, g.initializer(`${name}/offset`, shape, vector(c.offset, 0, "offset"))], [out], [], name);
        if (t.name === "input") rawPixels = true;
        tensors.set(name, { name: out, shape: t.shape });
        break;
      }
      case "Normalization": {
        // Keras: (x − mean) / max(√variance, ε), ε = 1e-7, per channel (axis −1); mean/variance from the config
        // (adapted values passed to the constructor) or from the layer's weights (mean, variance, count).
        const t = input();
        const ch = t.shape[0]!;
        if (c.invert === true) throw new ConversionError(`couche ${name} (Normalization) : invert=true non pris en charge`);
        const axis = c.axis === undefined ? -1 : Array.isArray(c.axis) ? (c.axis.length === 1 ? Number(c.axis[0]) : NaN) : Number(c.axis);
        if (axis !== -1 && axis !== t.shape.length) throw new ConversionError(`couche ${name} (Normalization) : axe ${JSON.stringify(c.axis)} non pris en charge (seul l'axe des canaux l'est)`);
        const perChannel = (v: unknown): Float32Array | undefined => {
          if (v === undefined || v === null) return undefined;
          const flat = (Array.isArray(v) ? v.flat(4) : [v]).map(Number);
          if (flat.length !== 1 && flat.length !== ch) return undefined;
          return Float32Array.from({ length: ch }, (_, i) => flat[flat.length === 1 ? 0 : i]!);
        };
        let mean = perChannel(c.mean);
        let variance = perChannel(c.variance);
        if (!mean || !variance) {
          const arrays = weightSource(layer.weightPath);
          const pick = (role: string, index: number) => arrays.find((a) => new RegExp(`(^|/)${role}(:\\d+)?$`).test(a.name)) ?? arrays[index];
          const m = pick("mean", 0);
          const v = pick("variance", 1);
          if (!m || !v || m.data.length !== ch || v.data.length !== ch) {
            throw new ConversionError(`couche ${name} (Normalization) : moyenne et variance par canal introuvables (${arrays.length} tableaux de poids) / mean and variance not found`);
          }
          mean = m.data;
          variance = v.data;
        }
        const std = variance.map((x) => Math.max(Math.sqrt(x), 1e-7));
        const shape = t.shape.length === 3 ? [ch, 1, 1] : [ch];
        const centred = g.node("Sub", [t.name, g.initializer(`${name}/mean`, shape, mean)], [`${name}/centred`], [], `${name}/sub`);
        g.node("Div", [centred, g.initializer(`${name}/std`, shape, std)], [out], [], name);
        if (t.name === "input") rawPixels = true;
        tensors.set(name, { name: out, shape: t.shape });
        break;
      }
      default: {
        if (isIdentity(layer.className)) {
          tensors.set(name, input());
          break;
        }
        throw new ConversionError(`couche ${name} : type ${layer.className} non pris en charge`);
      }
    }
  }

  const expose = (layerName: string, wanted: string): Tensor => {
    const t = tensorOf(layerName);
    if (t.name !== wanted) g.node("Identity", [t.name], [wanted], [], `${wanted}/identity`);
    return { name: wanted, shape: t.shape };
  };
  const probabilities = expose(topology.outputs[0]!, "probabilities");
  const { features: featureLayer, gradients } = headGradients(g, head, byName, forward, tensorOf);
  const features = expose(featureLayer, "features");
  const classes = probabilities.shape[0]!;
  const onnx = g.encode({
    graphName: topology.name,
    inputs: [{ name: "input", shape: ["N", 3, inputSize, inputSize] }],
    outputs: [
      { name: "probabilities", shape: ["N", classes] },
      { name: "features", shape: ["N", ...features.shape] },
      { name: gradients, shape: ["N", classes, ...features.shape] },
    ],
    producer: options.producer,
    docString: options.docString,
    metadata: options.metadata,
  });
  return {
    onnx,
    inputSize,
    classes,
    featureShape: features.shape as [number, number, number],
    parameterCount,
    rawPixels,
  };
}

/**
 * The backward pass of the classification head, emitted as ONNX nodes: `gradients` [N, K, C, h, w] holds, for each
 * class c, ∂y_c/∂A — the derivative of the class score y_c (the final Dense's output before its softmax/sigmoid)
 * with respect to the feature map A that enters the head's pooling. The K seeds (one-hot rows of the identity) are
 * carried together on a class axis: for G [N, K, F] = ∂y/∂(a head tensor),
 *
 *   Dense x·W + b ........ G ← G · Wᵀ (after the activation's derivative, as below)
 *   relu / relu6 / leaky . G ← G ⊙ f′(x) (masks of x > 0 …), sigmoid: G ⊙ y(1 − y), tanh: G ⊙ (1 − y²),
 *                          elu: G ⊙ (x > 0 ? 1 : y + 1), softplus: G ⊙ σ(x), swish: G ⊙ (σ(x) + x σ(x)(1 − σ(x)))
 *   BatchNormalization .... G ← G ⊙ γ/√(σ² + ε)
 *   Dropout & co. ......... G
 *   GlobalAveragePooling2D  ∂A = G / (h·w), broadcast over positions
 *   GlobalMaxPooling2D .... ∂A = G at the maxima (shared between ties, as TensorFlow does), 0 elsewhere
 *   Flatten ............... ∂A = G reshaped to [h, w, C] (Keras flattens channels last) and transposed to [C, h, w]
 *
 * Grad-CAM then needs no knowledge of the head: α_k^c is the spatial mean of `gradients`[c, k].
 */
function headGradients(
  g: OnnxGraphBuilder,
  head: Head,
  byName: Map<string, LayerSpec>,
  forward: Map<string, Forward>,
  tensorOf: (name: string) => Tensor,
): { features: string; gradients: string } {
  const refuse = (layer: LayerSpec, why: string) =>
    new ConversionError(
      `couche ${layer.name} (${layer.className}) : ${why} ; la tête de classification doit aller de la dernière carte de caractéristiques à la sortie par GlobalAveragePooling2D / GlobalMaxPooling2D / Flatten puis Dense, Dropout, BatchNormalization, Activation / unsupported in the classification head, Grad-CAM needs it`,
    );
  const int64 = (name: string, values: number[]) =>
    g.hasInitializer(name) ? name : g.initializer(name, [values.length], BigInt64Array.from(values.map(BigInt)));
  const scalar = (value: number) => {
    const name = `grad/const/${value}`;
    return g.hasInitializer(name) ? name : g.initializer(name, [], new Float32Array([value]));
  };
  let step = 0;
  const node = (op: string, inputs: string[], attrs: Attribute[] = []) => {
    const out = `grad/${step++}/${op}`;
    return g.node(op, inputs, [out], attrs, out);
  };
  const unsqueezeClass = (t: string) => node("Unsqueeze", [t, int64("grad/axes/1", [1])]);
  const cast = (t: string) => node("Cast", [t], [attr.int("to", 1 /* FLOAT */)]);

  /** G ⊙ f′ for an activation (G [N, K, …], the forward tensors [N, …]). */
  const throughActivation = (G: string, layer: LayerSpec, f: Forward): string => {
    const a = f.activation;
    if (!a || a.kind === "linear") return G;
    const x = a.pre;
    const y = f.output;
    let d: string;
    switch (a.kind) {
      case "relu":
        d = cast(node("Greater", [x, scalar(0)]));
        break;
      case "clip":
        d = cast(node("And", [node("Greater", [x, scalar(0)]), node("Less", [x, scalar(a.max!)])]));
        break;
      case "leaky":
        d = node("Where", [node("Greater", [x, scalar(0)]), scalar(1), scalar(a.alpha!)]);
        break;
      case "sigmoid":
        d = node("Mul", [y, node("Sub", [scalar(1), y])]);
        break;
      case "tanh":
        d = node("Sub", [scalar(1), node("Mul", [y, y])]);
        break;
      case "elu":
        d = node("Where", [node("Greater", [x, scalar(0)]), scalar(1), node("Add", [y, scalar(1)])]);
        break;
      case "softplus":
        d = node("Sigmoid", [x]);
        break;
      case "swish":
      case "silu": {
        const sig = node("Sigmoid", [x]);
        d = node("Add", [sig, node("Mul", [node("Mul", [x, sig]), node("Sub", [scalar(1), sig])])]);
        break;
      }
      default:
        throw refuse(layer, `activation « ${a.kind} » dont la dérivée n'est pas prise en charge`);
    }
    return node("Mul", [G, unsqueezeClass(d)]);
  };

  // Seed: ∂y/∂y = I_K for every image: [K, K] expanded to [N, K, K] (N from the logits' shape).
  const dense = forward.get(head.dense.name)!;
  const logits = dense.activation!.pre;
  const k = tensorOf(head.dense.name).shape[0]!;
  const eye = g.initializer("grad/eye", [k, k], Float32Array.from({ length: k * k }, (_, i) => (i % (k + 1) === 0 ? 1 : 0)));
  const batch = node("Slice", [node("Shape", [logits]), int64("grad/zero", [0]), int64("grad/one", [1])]);
  let G = node("Expand", [eye, node("Concat", [batch, int64(`grad/kk`, [k, k])], [attr.int("axis", 0)])]);
  G = node("MatMul", [G, node("Transpose", [dense.kernel!], [attr.ints("perm", [1, 0])])]);

  let layer = byName.get(head.dense.inbound[0]!)!;
  for (;;) {
    if (layer.inbound.length !== 1) throw refuse(layer, `${layer.inbound.length} entrées`);
    if (isIdentity(layer.className)) {
      layer = byName.get(layer.inbound[0]!)!;
      continue;
    }
    const f = forward.get(layer.name);
    const spatial = f?.inputShape.length === 3;
    if (spatial && ["GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten"].includes(layer.className)) {
      const [c, h, w] = f.inputShape as [number, number, number];
      if (layer.className === "Flatten") {
        const nhwc = node("Reshape", [G, int64(`grad/shape/${layer.name}`, [0, 0, h, w, c])]);
        G = node("Transpose", [nhwc], [attr.ints("perm", [0, 1, 4, 2, 3])]);
      } else {
        // [N, K, C] (or [N, K, C, 1, 1] with keepdims) → [N, K, C, 1, 1]
        const g5 = node("Reshape", [G, int64(`grad/shape/${layer.name}`, [0, 0, c, 1, 1])]);
        if (layer.className === "GlobalAveragePooling2D") {
          G = node("Expand", [node("Mul", [g5, scalar(1 / (h * w))]), int64(`grad/expand/${layer.name}`, [1, 1, c, h, w])]);
        } else {
          const mask = cast(node("Equal", [f.input, f.pooled!]));
          const ties = node("ReduceSum", [mask, int64("grad/axes/23", [2, 3])], [attr.int("keepdims", 1)]);
          G = node("Mul", [g5, unsqueezeClass(node("Div", [mask, ties]))]);
        }
      }
      g.node("Identity", [G], ["gradients"], [], "gradients/identity");
      return { features: layer.inbound[0]!, gradients: "gradients" };
    }
    if (spatial || !f) throw refuse(layer, spatial ? "couche sur la carte de caractéristiques après le début de la tête" : "type de couche non pris en charge dans la tête");
    switch (layer.className) {
      case "Dense":
        G = throughActivation(G, layer, f);
        G = node("MatMul", [G, node("Transpose", [f.kernel!], [attr.ints("perm", [1, 0])])]);
        break;
      case "Activation":
      case "ReLU":
      case "LeakyReLU":
        if (f.activation?.kind === "softmax") throw refuse(layer, "softmax au milieu de la tête");
        G = throughActivation(G, layer, f);
        break;
      case "BatchNormalization":
        G = node("Mul", [G, g.initializer(`grad/${layer.name}/bn_scale`, [f.bnScale!.length], f.bnScale!)]);
        break;
      case "Flatten":
        break; // rank 2: identity
      default:
        throw refuse(layer, "type de couche non pris en charge dans la tête");
    }
    layer = byName.get(layer.inbound[0]!)!;
  }
}
