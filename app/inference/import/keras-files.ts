/**
 * Readers for trained Keras models, each giving the flattened layer graph and a source of weights per layer:
 *
 * - Keras 2 `.h5` (`model.save("x.h5")`): root attribute `model_config` (the model's JSON) and
 *   `model_weights/<layer>/<weight name>` datasets listed by each layer group's `weight_names` attribute;
 * - Keras 3 `.keras`: a ZIP with `config.json` and `model.weights.h5` (`layers/<layer>/vars/<i>`);
 * - TF.js layers `model.json` with its binary weight shards (`weightsManifest`), float32 or quantised.
 *
 * HDF5 is read with h5wasm in its in-memory file system: nothing is written to disk.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import h5wasm, { type Dataset, type Group } from "h5wasm";
import { parseKerasTopology, type Topology } from "./keras-topology";
import type { WeightArray, WeightSource } from "./keras-to-onnx";
import { readZip } from "./zip";

export type KerasFormat = "keras-h5" | "keras-v3" | "tfjs-layers";

export interface KerasSource {
  format: KerasFormat;
  topology: Topology;
  weights: WeightSource;
  /** Keras / TF.js version recorded in the file, when any. */
  producer?: string;
}

export class ImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImportError";
  }
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
const ZIP_SIGNATURE = [0x50, 0x4b, 0x03, 0x04];
const startsWith = (bytes: Uint8Array, sig: number[]) => sig.every((b, i) => bytes[i] === b);

/** IEEE 754 half precision → float32. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function toFloat32(value: unknown, what: string, dtype?: unknown): Float32Array {
  if (value instanceof Float32Array) return value;
  if (value instanceof Float64Array) return Float32Array.from(value);
  if (value instanceof Uint8Array && (dtype === "<e" || dtype === ">e")) {
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
    return Float32Array.from({ length: value.length / 2 }, (_, i) => halfToFloat(view.getUint16(i * 2, dtype === "<e")));
  }
  throw new ImportError(`${what} : type de données ${String(dtype)} non pris en charge (float32, float64 ou float16 attendus)`);
}

function text(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  if (Array.isArray(value) && value.length === 1) return text(value[0]);
  throw new ImportError("attribut texte illisible");
}

function strings(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.map(text);
  return [text(value)];
}

/** Opens an HDF5 image in h5wasm's in-memory file system; `read` runs while it is open. */
async function withH5<T>(bytes: Uint8Array, read: (file: Group) => T): Promise<T> {
  const module = await h5wasm.ready;
  const name = `/import-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.h5`;
  module.FS!.writeFile(name, bytes);
  const file = new h5wasm.File(name, "r");
  try {
    return read(file);
  } finally {
    file.close();
    module.FS!.unlink(name);
  }
}

function dataset(group: Group, name: string, what: string): WeightArray {
  const entity = group.get(name);
  if (!(entity instanceof h5wasm.Dataset)) throw new ImportError(`${what} : poids ${name} introuvable`);
  const d = entity as Dataset;
  return { name, shape: d.shape ?? [], data: toFloat32(d.value, `${what}/${name}`, d.dtype) };
}

function subgroup(group: Group | null, name: string): Group | null {
  const g = group?.get(name);
  return g instanceof h5wasm.Group ? (g as Group) : null;
}

const parentOf = (weightName: string) => weightName.slice(0, Math.max(0, weightName.lastIndexOf("/")));

/** Keras 2 `.h5`: the whole file is read into memory while open (DenseNet121: 606 arrays, ≈ 0.3 s). */
async function readKeras2H5(bytes: Uint8Array): Promise<KerasSource> {
  return withH5(bytes, (file) => {
    const configAttr = file.attrs.model_config;
    if (!configAttr) throw new ImportError("fichier .h5 sans architecture (attribut model_config absent : fichier de poids seuls ?)");
    const topology = parseKerasTopology(JSON.parse(text(configAttr.value)));
    const root = subgroup(file, "model_weights") ?? file;
    const cache = new Map<string, WeightArray[]>();
    for (const layerName of strings(root.attrs.layer_names?.value)) {
      const group = subgroup(root, layerName);
      if (!group) continue;
      const names = strings(group.attrs.weight_names?.value);
      for (const n of names) {
        const array = dataset(group, n, layerName);
        // Key by the top-level layer, plus the inner layer for weights of a nested model ("outer|inner").
        const inner = parentOf(n.startsWith(`${layerName}/`) ? n.slice(layerName.length + 1) : n);
        for (const key of [layerName, `${layerName}|${inner}`]) {
          if (!cache.has(key)) cache.set(key, []);
          cache.get(key)!.push(array);
        }
      }
    }
    const weights: WeightSource = (p) => {
      const key = p.length === 1 ? p[0]! : `${p[0]}|${p.slice(1).join("/")}`;
      const fallback = p.length > 1 ? `${p[0]}|${p[p.length - 1]}` : key;
      const found = cache.get(key) ?? cache.get(fallback);
      if (!found) throw new ImportError(`poids de la couche ${p.join("/")} introuvables dans le fichier .h5`);
      return found;
    };
    const version = file.attrs.keras_version ? text(file.attrs.keras_version.value) : undefined;
    return { format: "keras-h5" as const, topology, weights, producer: version ? `Keras ${version}` : undefined };
  });
}

/** Keras 3 `.keras` (ZIP: config.json + model.weights.h5). */
async function readKeras3(bytes: Uint8Array): Promise<KerasSource> {
  const entries = readZip(bytes);
  const config = entries.get("config.json");
  const weightsFile = entries.get("model.weights.h5");
  if (!config || !weightsFile) throw new ImportError("archive .keras incomplète (config.json et model.weights.h5 attendus)");
  const topology = parseKerasTopology(JSON.parse(new TextDecoder().decode(config)));
  const metadata = entries.get("metadata.json");
  const version = metadata ? (JSON.parse(new TextDecoder().decode(metadata)) as { keras_version?: string }).keras_version : undefined;
  const cache = await withH5(weightsFile, (file) => {
    const found = new Map<string, WeightArray[]>();
    const base = subgroup(file, "layers") ?? subgroup(file, "_layer_checkpoint_dependencies");
    if (!base) throw new ImportError("model.weights.h5 sans groupe « layers »");
    const walk = (group: Group, prefix: string[]) => {
      for (const name of group.keys()) {
        const layer = subgroup(group, name);
        if (!layer) continue;
        const vars = subgroup(layer, "vars");
        if (vars) {
          const keys = vars.keys().sort((a, b) => Number(a) - Number(b));
          found.set([...prefix, name].join("|"), keys.map((k) => dataset(vars, k, [...prefix, name].join("/"))));
        }
        const inner = subgroup(layer, "layers");
        if (inner) walk(inner, [...prefix, name]);
      }
    };
    walk(base, []);
    return found;
  });
  const weights: WeightSource = (p) => {
    const found = cache.get(p.join("|"));
    if (!found) throw new ImportError(`poids de la couche ${p.join("/")} introuvables dans model.weights.h5`);
    return found;
  };
  return { format: "keras-v3", topology, weights, producer: version ? `Keras ${version}` : undefined };
}

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: "uint8" | "uint16" | "float16"; scale?: number; min?: number };
}

/** TF.js layers `model.json`; the shards are read from the same directory. */
async function readTfjs(jsonPath: string, bytes: Uint8Array): Promise<KerasSource> {
  const json = JSON.parse(new TextDecoder().decode(bytes)) as {
    format?: string;
    generatedBy?: string;
    modelTopology?: unknown;
    weightsManifest?: Array<{ paths: string[]; weights: ManifestEntry[] }>;
  };
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) throw new ImportError("model.json sans modelTopology ou weightsManifest (modèle TF.js « layers » attendu)");
  if (json.format && json.format !== "layers-model") throw new ImportError(`model.json au format ${json.format} : seul « layers-model » est pris en charge`);
  const topology = parseKerasTopology(json.modelTopology);
  const byName = new Map<string, WeightArray[]>();
  const order: WeightArray[] = [];
  for (const group of json.weightsManifest) {
    const shards = await Promise.all(group.paths.map((p) => readFile(path.resolve(path.dirname(jsonPath), p))));
    const buffer = Buffer.concat(shards);
    let offset = 0;
    for (const w of group.weights) {
      const count = w.shape.reduce((a, b) => a * b, 1);
      const stored = w.quantization?.dtype ?? w.dtype;
      const size = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 }[stored];
      if (!size) throw new ImportError(`poids ${w.name} : type ${stored} non pris en charge`);
      if (offset + count * size > buffer.length) throw new ImportError(`poids ${w.name} : fichiers de poids tronqués`);
      const view = new DataView(buffer.buffer, buffer.byteOffset + offset, count * size);
      const data = new Float32Array(count);
      const q = w.quantization;
      for (let i = 0; i < count; i++) {
        if (stored === "float32") data[i] = view.getFloat32(i * 4, true);
        else if (stored === "float16") data[i] = halfToFloat(view.getUint16(i * 2, true));
        else if (stored === "int32") data[i] = view.getInt32(i * 4, true);
        else data[i] = (stored === "uint8" ? view.getUint8(i) : view.getUint16(i * 2, true)) * (q?.scale ?? 1) + (q?.min ?? 0);
      }
      offset += count * size;
      const array = { name: w.name, shape: w.shape, data };
      order.push(array);
      const parent = parentOf(w.name);
      if (!byName.has(parent)) byName.set(parent, []);
      byName.get(parent)!.push(array);
    }
  }
  const weights: WeightSource = (p) => {
    for (const candidate of [p.join("/"), p.slice(1).join("/"), p[p.length - 1]!]) {
      const found = byName.get(candidate);
      if (found) return found;
    }
    throw new ImportError(`poids de la couche ${p.join("/")} introuvables dans le manifeste TF.js`);
  };
  return { format: "tfjs-layers", topology, weights, producer: json.generatedBy };
}

/** Reads a `.h5`, `.keras` or TF.js `model.json`, recognised by content. */
export async function readKerasModel(file: string): Promise<KerasSource> {
  const bytes = new Uint8Array(await readFile(file));
  if (startsWith(bytes, HDF5_SIGNATURE)) return readKeras2H5(bytes);
  if (startsWith(bytes, ZIP_SIGNATURE)) return readKeras3(bytes);
  if (bytes[0] === 0x7b /* { */) return readTfjs(file, bytes);
  throw new ImportError(`${file} : ni HDF5 (.h5), ni archive Keras 3 (.keras), ni model.json TF.js`);
}
