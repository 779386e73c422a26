/**
 * A small ONNX graph writer on top of `onnx-proto` (protobufjs): IR version 8, default-domain opset 13, float32
 * tensors. Attribute types are always set explicitly (in JavaScript `1.0 === 1`, so a float would otherwise be
 * written as an INT), node names are made unique, and initializers are stored as little-endian raw data.
 */
import { endianness } from "node:os";
import onnxProto, { type onnx as OnnxTypes } from "onnx-proto";

/** The protobuf classes (runtime values); the matching types are `OnnxTypes.*`. */
export const onnx = onnxProto.onnx;
export type { OnnxTypes };
export const IR_VERSION = 8;
export const OPSET = 13;

const { AttributeType } = onnx.AttributeProto;
const { DataType } = onnx.TensorProto;

if (endianness() !== "LE") throw new Error("ONNX raw tensor data is little-endian: this host is big-endian.");

export type Attribute = OnnxTypes.IAttributeProto;

export const attr = {
  int: (name: string, i: number): Attribute => ({ name, type: AttributeType.INT, i }),
  ints: (name: string, ints: number[]): Attribute => ({ name, type: AttributeType.INTS, ints }),
  float: (name: string, f: number): Attribute => ({ name, type: AttributeType.FLOAT, f }),
  string: (name: string, s: string): Attribute => ({ name, type: AttributeType.STRING, s: new TextEncoder().encode(s) }),
};

/** A dimension: a fixed size, or a symbolic name (dynamic). */
export type Dim = number | string;

function valueInfo(name: string, shape: Dim[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: { dim: shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function bytesOf(data: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export class OnnxGraphBuilder {
  private readonly nodes: OnnxTypes.INodeProto[] = [];
  private readonly initializers: OnnxTypes.ITensorProto[] = [];
  private readonly initializerNames = new Set<string>();
  private readonly nodeNames = new Set<string>();

  /** Adds a float32 (or int64) constant; returns its name. */
  initializer(name: string, dims: number[], data: Float32Array | BigInt64Array): string {
    if (this.initializerNames.has(name)) throw new Error(`duplicate initializer ${name}`);
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) throw new Error(`initializer ${name}: ${data.length} values for shape [${dims.join(", ")}]`);
    this.initializerNames.add(name);
    this.initializers.push({
      name,
      dims,
      dataType: data instanceof Float32Array ? DataType.FLOAT : DataType.INT64,
      rawData: bytesOf(data),
    });
    return name;
  }

  hasInitializer(name: string): boolean {
    return this.initializerNames.has(name);
  }

  /** Adds a node; its name is made unique from `name` (or the op type). Returns the node's first output. */
  node(opType: string, inputs: string[], outputs: string[], attributes: Attribute[] = [], name?: string): string {
    let base = name ?? `${opType}_${this.nodes.length}`;
    if (this.nodeNames.has(base)) {
      let i = 1;
      while (this.nodeNames.has(`${base}_${i}`)) i++;
      base = `${base}_${i}`;
    }
    this.nodeNames.add(base);
    this.nodes.push({ opType, input: inputs, output: outputs, attribute: attributes, name: base });
    return outputs[0]!;
  }

  /** Serialises the model. */
  encode(options: {
    graphName: string;
    inputs: Array<{ name: string; shape: Dim[] }>;
    outputs: Array<{ name: string; shape: Dim[] }>;
    producer?: string;
    docString?: string;
    metadata?: Record<string, string>;
  }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: "", version: OPSET }],
      producerName: options.producer ?? "nexus",
      producerVersion: "1",
      docString: options.docString ?? "",
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: options.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: options.inputs.map((i) => valueInfo(i.name, i.shape)),
        output: options.outputs.map((o) => valueInfo(o.name, o.shape)),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** Float32 values of an initializer read back from a decoded model (raw data or float_data). */
export function initializerValues(tensor: OnnxTypes.ITensorProto): Float32Array {
  if (tensor.dataType !== DataType.FLOAT) throw new Error(`initializer ${tensor.name} is not float32`);
  if (tensor.rawData && tensor.rawData.length) {
    const copy = new Uint8Array(tensor.rawData); // aligned copy
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return Float32Array.from(tensor.floatData ?? []);
}

export function dimsOf(tensor: OnnxTypes.ITensorProto): number[] {
  return (tensor.dims ?? []).map((d) => Number(d));
}
