/**
 * A classifier already in ONNX (tf2onnx, `torch.onnx.export`) adapted to the platform's contract (model.server.ts)
 * without touching its layers:
 *
 * - its single image input, NCHW `[N, 3, S, S]` or NHWC `[N, S, S, 3]` (tf2onnx keeps Keras' channels-last), batch
 *   fixed or dynamic, height/width fixed or dynamic (then `inputSize`, default 224), becomes `input` [N, 3, S, S]
 *   (a Transpose in front for NHWC);
 * - its single output `[N, K]` becomes `probabilities`: as is after a Softmax, `[1 − p, p]` after a one-unit
 *   Sigmoid, and through a Softmax when the caller says the output is logits (PyTorch exports usually are).
 *
 * No convolutional feature map can be identified reliably in an arbitrary graph: such a model has no `features` /
 * `gradients` outputs, its readings carry no heatmap and its card says `heatmap: "none"`.
 */
import { onnx, type OnnxTypes } from "./onnx-builder";
import { ImportError } from "./keras-files";

export interface OnnxImportOptions {
  /** Square input size when the model leaves height and width dynamic (default 224). */
  inputSize?: number;
  /** The output is unnormalised scores: apply a softmax. */
  logits?: boolean;
}

export interface AdaptedOnnx {
  onnx: Uint8Array;
  inputSize: number;
  classes: number;
  layout: "NCHW" | "NHWC";
  /** What the output was: "softmax", "sigmoid" (one unit, rewritten to two classes) or "logits". */
  output: "softmax" | "sigmoid" | "logits";
  producer: string;
}

const { DataType } = onnx.TensorProto;

type Dim = number | string | null;

function dims(info: OnnxTypes.IValueInfoProto): Dim[] | null {
  const shape = info.type?.tensorType?.shape?.dim;
  if (!shape) return null;
  return shape.map((d) => (d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : (d.dimParam ?? null)));
}

const show = (shape: Dim[]) => `[${shape.map((d) => (d === null ? "?" : d)).join(", ")}]`;

function valueInfo(name: string, shape: Array<number | string>): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) } } },
  };
}

export function adaptOnnx(bytes: Uint8Array, options: OnnxImportOptions = {}): AdaptedOnnx {
  let model: OnnxTypes.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new ImportError(`fichier ONNX illisible (${(err as Error).message}) / unreadable ONNX file`);
  }
  const graph = model.graph;
  if (!graph?.node?.length) throw new ImportError("fichier ONNX sans graphe / ONNX file without a graph");
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((i) => !initializers.has(i.name));
  if (inputs.length !== 1) {
    throw new ImportError(`le modèle ONNX a ${inputs.length} entrées (${inputs.map((i) => i.name).join(", ")}) : une seule image est attendue / one image input expected`);
  }
  const input = inputs[0]!;
  if (input.type?.tensorType?.elemType !== DataType.FLOAT) throw new ImportError(`entrée ${input.name} : float32 attendu / float32 input expected`);
  const inShape = dims(input);
  if (!inShape || inShape.length !== 4) throw new ImportError(`entrée ${input.name} de forme ${inShape ? show(inShape) : "inconnue"} : image [N, 3, H, W] ou [N, H, W, 3] attendue`);
  let layout: "NCHW" | "NHWC";
  let h: Dim, w: Dim;
  if (inShape[1] === 3 && inShape[3] !== 3) [layout, h, w] = ["NCHW", inShape[2]!, inShape[3]!];
  else if (inShape[3] === 3 && inShape[1] !== 3) [layout, h, w] = ["NHWC", inShape[1]!, inShape[2]!];
  else if (inShape[1] === 3 && inShape[3] === 3) [layout, h, w] = ["NCHW", inShape[2]!, inShape[3]!]; // 3×3 images: not a real case
  else throw new ImportError(`entrée ${input.name} de forme ${show(inShape)} : 3 canaux (RVB) attendus en 2e ou 4e position / 3 channels expected`);
  if (typeof inShape[0] === "number" && inShape[0] !== 1) {
    throw new ImportError(`entrée ${input.name} : lot fixe de ${inShape[0]} images (1 ou dynamique attendu) / fixed batch of ${inShape[0]}`);
  }
  const size = typeof h === "number" ? h : typeof w === "number" ? w : (options.inputSize ?? 224);
  if ((typeof h === "number" && h !== size) || (typeof w === "number" && w !== size)) {
    throw new ImportError(`entrée ${input.name} de forme ${show(inShape)} : image carrée attendue / square input expected`);
  }
  const batch: number | string = typeof inShape[0] === "number" ? 1 : "N";

  const outputs = graph.output ?? [];
  if (outputs.length !== 1) {
    throw new ImportError(`le modèle ONNX a ${outputs.length} sorties (${outputs.map((o) => o.name).join(", ")}) : une seule sortie [N, classes] est attendue`);
  }
  const output = outputs[0]!;
  const outShape = dims(output);
  if (!outShape || outShape.length !== 2 || typeof outShape[1] !== "number") {
    throw new ImportError(`sortie ${output.name} de forme ${outShape ? show(outShape) : "inconnue"} : [N, classes] attendu / [N, classes] expected`);
  }
  const units = outShape[1];
  let producerNode = graph.node.find((n) => n.output?.includes(output.name!));
  while (producerNode && ["Identity", "Flatten", "Reshape", "Squeeze"].includes(producerNode.opType ?? "")) {
    const source = producerNode.input![0]!;
    producerNode = graph.node.find((n) => n.output?.includes(source));
  }
  const op = producerNode?.opType ?? "";
  let kind: AdaptedOnnx["output"];
  if (op === "Softmax" || op === "LogSoftmax") {
    if (op === "LogSoftmax") throw new ImportError(`sortie ${output.name} : LogSoftmax (log-probabilités) non prise en charge / log-probabilities`);
    kind = "softmax";
  } else if (op === "Sigmoid") {
    if (units !== 1) throw new ImportError(`sortie ${output.name} : sigmoïde sur ${units} unités (multi-étiquette) non prise en charge`);
    kind = "sigmoid";
  } else if (options.logits) {
    kind = "logits";
  } else {
    throw new ImportError(
      `sortie ${output.name} produite par ${op || "?"} (nœud ${producerNode?.name || "?"}) et non par un Softmax : s'il s'agit de scores bruts (logits, cas des exports PyTorch), relancez avec --logits / output is not a softmax: pass --logits for raw scores`,
    );
  }
  if (kind === "logits" && units < 2) throw new ImportError(`sortie ${output.name} : ${units} unité, au moins 2 classes attendues`);

  // Rename the original input and output tensors so that the platform's names can be given to the new ones.
  const rename = new Map([
    [input.name!, "nexus/original_input"],
    [output.name!, "nexus/original_output"],
  ]);
  for (const n of graph.node) {
    n.input = (n.input ?? []).map((x) => rename.get(x) ?? x);
    n.output = (n.output ?? []).map((x) => rename.get(x) ?? x);
  }
  const head: OnnxTypes.INodeProto[] = [
    layout === "NHWC"
      ? { opType: "Transpose", name: "nexus/nchw_to_nhwc", input: ["input"], output: ["nexus/original_input"], attribute: [{ name: "perm", type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 2, 3, 1] }] }
      : { opType: "Identity", name: "nexus/input", input: ["input"], output: ["nexus/original_input"] },
  ];
  const tail: OnnxTypes.INodeProto[] = [];
  const classes = kind === "sigmoid" ? 2 : units;
  if (kind === "softmax") tail.push({ opType: "Identity", name: "nexus/probabilities", input: ["nexus/original_output"], output: ["probabilities"] });
  else if (kind === "logits") {
    tail.push({ opType: "Softmax", name: "nexus/softmax", input: ["nexus/original_output"], output: ["probabilities"], attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 1 }] });
  } else {
    graph.initializer = [...(graph.initializer ?? []), { name: "nexus/one", dims: [], dataType: DataType.FLOAT, rawData: new Uint8Array(new Float32Array([1]).buffer) }];
    tail.push(
      { opType: "Sub", name: "nexus/one_minus_p", input: ["nexus/one", "nexus/original_output"], output: ["nexus/complement"] },
      { opType: "Concat", name: "nexus/two_classes", input: ["nexus/complement", "nexus/original_output"], output: ["probabilities"], attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
    );
  }
  graph.node = [...head, ...graph.node, ...tail];
  graph.input = [valueInfo("input", [batch, 3, size, size]), ...(graph.input ?? []).filter((i) => i !== input)];
  graph.output = [valueInfo("probabilities", [batch, classes])];
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => !rename.has(v.name ?? ""));
  const producer = [model.producerName, model.producerVersion].filter(Boolean).join(" ") || "ONNX";
  return { onnx: onnx.ModelProto.encode(model).finish(), inputSize: size, classes, layout, output: kind, producer };
}
