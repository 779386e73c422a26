/**
 * Keras layers (NHWC, channels last) → an ONNX graph (NCHW), layer by layer, for the layer types of DenseNet121 and
 * a few common transfer-learning heads:
 *
 *   InputLayer · ZeroPadding2D → Pad (int64 pads) · Conv2D (bias or not, 'valid' / 'same' → SAME_UPPER, groups,
 *   dilation) · BatchNormalization (epsilon from the config) · Activation / ReLU / LeakyReLU / Softmax · MaxPooling2D ·
 *   AveragePooling2D (count_include_pad = 0, as TensorFlow) · Concatenate (axis −1 → 1) · Add · GlobalAveragePooling2D ·
 *   GlobalMaxPooling2D · Flatten (NHWC order kept) · Dense → Gemm · Dropout & co. (identity at inference).
 *
 * Weights are transposed from Keras' layouts (Conv2D kernel [kh, kw, in, out] → [out, in, kh, kw]).
 *
 * The graph has one input `input` [N, 3, S, S] and two outputs: `probabilities` [N, K] (the softmax of the
 * classification head) and `features` [N, C, h, w] (the feature map that enters the head's global average pooling:
 * for DenseNet121 the last dense block after its final BN + ReLU) for Grad-CAM. The head must therefore be
 * GlobalAveragePooling2D → (Dropout) → Dense → softmax; a one-unit sigmoid head is rewritten as the equivalent
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

/** Analysis of the head: which layers produce the logits, the probabilities and the features. */
interface Head {
  dense: LayerSpec;
  /** A one-unit sigmoid head rewritten as a two-class softmax. */
  sigmoid: boolean;
  /** The layer (possibly a separate Activation) whose output is the model's probabilities. */
  output: LayerSpec;
  /** The layer whose output feeds the global average pooling. */
  features: string;
}

function activationOf(layer: LayerSpec): string | undefined {
  if (layer.className === "Activation") return String(layer.config.activation ?? "linear");
  if (layer.className === "Softmax") return "softmax";
  if (layer.className === "Dense") return String(layer.config.activation ?? "linear");
  return undefined;
}

function findHead(topology: Topology, byName: Map<string, LayerSpec>): Head {
  const fail = (why: string) =>
    new ConversionError(
      `tête de classification non reconnue (${why}) : attendu GlobalAveragePooling2D → Dense → softmax (ou sigmoïde à une unité), nécessaire au Grad-CAM`,
    );
  if (topology.outputs.length !== 1) throw fail(`${topology.outputs.length} sorties`);
  const skip = (name: string): LayerSpec => {
    let layer = byName.get(name)!;
    while (PASS_THROUGH.has(layer.className)) layer = byName.get(layer.inbound[0]!)!;
    return layer;
  };
  const output = skip(topology.outputs[0]!);
  let dense: LayerSpec;
  let kind = activationOf(output);
  if (output.className === "Dense") {
    dense = output;
  } else if (kind === "softmax" || kind === "sigmoid") {
    dense = skip(output.inbound[0]!);
    if (dense.className !== "Dense" || activationOf(dense) !== "linear") throw fail(`${output.name} ne suit pas une couche Dense linéaire`);
  } else {
    throw fail(`la sortie ${output.name} est une couche ${output.className}`);
  }
  if (output.className === "Dense") kind = activationOf(dense);
  const units = Number(dense.config.units);
  let sigmoid = false;
  if (kind === "sigmoid") {
    if (units !== 1) throw fail(`sigmoïde sur ${units} unités (multi-label)`);
    sigmoid = true;
  } else if (kind !== "softmax") {
    throw fail(`activation de sortie ${kind}`);
  }
  const pool = skip(dense.inbound[0]!);
  if (pool.className !== "GlobalAveragePooling2D") throw fail(`la couche Dense ${dense.name} suit ${pool.className}`);
  if (pool.config.keepdims === true) throw fail("GlobalAveragePooling2D avec keepdims");
  return { dense, sigmoid, output, features: pool.inbound[0]! };
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
  const outputName = (layer: LayerSpec) => (layer === head.output ? "probabilities" : layer.name === head.features ? "features" : layer.name);
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
      default:
        throw new ConversionError(`activation ${kind} non prise en charge`);
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
        tensors.set(name, { name: out, shape: t.shape });
        break;
      }
      case "Activation":
      case "Softmax":
      case "ReLU":
      case "LeakyReLU": {
        const t = input();
        let result: string;
        if (head.sigmoid && layer === head.output) {
          result = t.name; // the Dense already produced the two-class softmax
        } else if (layer.className === "ReLU") {
          const max = c.max_value ?? null;
          if (Number(c.negative_slope ?? 0) !== 0 || Number(c.threshold ?? 0) !== 0) throw new ConversionError(`couche ${name} : ReLU paramétrée non prise en charge`);
          result = max === null ? g.node("Relu", [t.name], [out], [], name) : clip(t.name, out, name, Number(max));
        } else if (layer.className === "LeakyReLU") {
          result = g.node("LeakyRelu", [t.name], [out], [attr.float("alpha", Number(c.negative_slope ?? c.alpha ?? 0.3))], name);
        } else {
          if (layer.className === "Softmax" && c.axis !== undefined && Number(c.axis) !== -1) throw new ConversionError(`couche ${name} : softmax sur l'axe ${String(c.axis)}`);
          result = activate(activationOf(layer)!, t.name, out, name, t.shape.length + 1);
        }
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
        } else {
          const pooled = g.node(op, [t.name], [`${name}/pooled`], [], name);
          g.node("Flatten", [pooled], [out], [attr.int("axis", 1)], `${name}/flatten`);
          tensors.set(name, { name: out, shape: [ch] });
        }
        break;
      }
      case "Flatten": {
        checkChannelsLast(layer);
        const t = input();
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
        const inputs = [t.name, constant(`${name}/kernel`, [fin, outUnits], kernelData)];
        if (useBias || head.sigmoid) inputs.push(constant(`${name}/bias`, [outUnits], biasData));
        const gemmOut = g.node("Gemm", inputs, [act === "linear" ? out : `${name}/logits`], [], name);
        const result = activate(act, gemmOut, out, `${name}/${act}`, 2);
        tensors.set(name, { name: result, shape: [outUnits] });
        break;
      }
      default: {
        if (PASS_THROUGH.has(layer.className)) {
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
  const features = expose(head.features, "features");
  if (features.shape.length !== 3) throw new ConversionError("la carte de caractéristiques n'est pas 4D");
  const onnx = g.encode({
    graphName: topology.name,
    inputs: [{ name: "input", shape: ["N", 3, inputSize, inputSize] }],
    outputs: [
      { name: "probabilities", shape: ["N", probabilities.shape[0]!] },
      { name: "features", shape: ["N", ...features.shape] },
    ],
    producer: options.producer,
    docString: options.docString,
    metadata: options.metadata,
  });
  return {
    onnx,
    inputSize,
    classes: probabilities.shape[0]!,
    featureShape: features.shape as [number, number, number],
    parameterCount,
  };
}
