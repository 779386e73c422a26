/**
 * Readers for trained Keras models, each giving the flattened layer graph and a source of weights per layer:
 *
 * - Keras 2 `.h5` (`model.save("x.h5")`): root attribute `model_config` (the model's JSON) and
 *   `model_weights/<layer>/<weight name>` datasets listed by each layer group's `weight_names` attribute, with
 *   h5py's quirks (empty list = zero-length float64 array, bytes or str, attributes split into chunks);
 * - Keras 3 `.keras`: a ZIP with `config.json` and `model.weights.h5` (`layers/<class>[_n]/vars/<i>`, mapped by
 *   order), and tf.keras 2.13–2.15's (`_layer_checkpoint_dependencies/<class>[_n]/vars/<i>`, also by order);
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

function text(value: unknown, what: string): string {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  if (Array.isArray(value) && value.length === 1) return text(value[0], what);
  throw new ImportError(`attribut ${what} illisible (texte attendu, ${describeValue(value)} trouvé)`);
}

function describeValue(value: unknown): string {
  if (ArrayBuffer.isView(value)) return `${value.constructor.name} de ${(value as unknown as ArrayLike<unknown>).length} valeurs`;
  if (Array.isArray(value)) return `liste de ${value.length} valeurs`;
  return typeof value;
}

/**
 * A list of strings as h5py writes it for Keras: an array of byte or UTF-8 strings, a scalar string, or, for an
 * empty Python list (`weight_names` of a layer without weights), a zero-length float64 array (numpy's default dtype).
 */
function strings(value: unknown, what: string): string[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.map((v) => text(v, what));
  if (ArrayBuffer.isView(value) && !(value instanceof Uint8Array) && (value as unknown as ArrayLike<unknown>).length === 0) return [];
  return [text(value, what)];
}

type Attrs = Group["attrs"];

/**
 * Keras' `load_attributes_from_hdf5_group`: the attribute `name`, or, when Keras had to split it (HDF5 object headers
 * hold at most 64 KB), the chunks `name0`, `name1`, … concatenated.
 */
function listAttribute(attrs: Attrs, name: string, where: string): string[] {
  if (attrs[name]) return strings(attrs[name].value, `${where}${name}`);
  const out: string[] = [];
  for (let i = 0; attrs[`${name}${i}`]; i++) out.push(...strings(attrs[`${name}${i}`]!.value, `${where}${name}${i}`));
  return out;
}

/** A text attribute (bytes or str), possibly split into `name0`, `name1`, … chunks; undefined when absent. */
function textAttribute(attrs: Attrs, name: string): string | undefined {
  if (attrs[name]) return text(attrs[name].value, name);
  if (!attrs[`${name}0`]) return undefined;
  let out = "";
  for (let i = 0; attrs[`${name}${i}`]; i++) {
    const v = attrs[`${name}${i}`]!.value;
    out += Array.isArray(v) ? v.map((x) => text(x, `${name}${i}`)).join("") : text(v, `${name}${i}`);
  }
  return out;
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
    const configText = textAttribute(file.attrs, "model_config");
    if (configText === undefined) throw new ImportError("fichier .h5 sans architecture (attribut model_config absent : fichier de poids seuls ?)");
    const topology = parseKerasTopology(parseJson(configText, "model_config"));
    const root = subgroup(file, "model_weights") ?? file;
    const cache = new Map<string, WeightArray[]>();
    for (const layerName of listAttribute(root.attrs, "layer_names", "")) {
      const group = subgroup(root, layerName);
      if (!group) continue;
      const names = listAttribute(group.attrs, "weight_names", `${layerName}/`);
      if (!cache.has(layerName)) cache.set(layerName, []); // a layer without weights (Activation, pooling…)
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
    const version = textAttribute(file.attrs, "keras_version");
    const backend = textAttribute(file.attrs, "backend");
    const producer = version ? `Keras ${version}${backend ? ` (${backend})` : ""}` : undefined;
    return { format: "keras-h5" as const, topology, weights, producer };
  });
}

function parseJson(source: string, what: string): unknown {
  try {
    return JSON.parse(source);
  } catch (err) {
    throw new ImportError(`${what} : JSON illisible (${(err as Error).message})`);
  }
}

/** Keras' `to_snake_case` (the name tf.keras 2.13–2.15 gives a layer's weights in a `.keras` file). */
export function snakeCase(className: string): string {
  const intermediate = className.replace(/(.)([A-Z][a-z0-9]+)/g, "$1_$2");
  return intermediate.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** One node of model.weights.h5, its path split on both "/" (HDF5 groups) and "\\" (tf.keras saved on Windows). */
interface WeightNode {
  vars?: WeightArray[];
  children: Map<string, WeightNode>;
}

function weightTree(file: Group, what: string): WeightNode {
  const root: WeightNode = { children: new Map() };
  const walk = (group: Group, segments: string[]) => {
    for (const name of group.keys()) {
      const child = subgroup(group, name);
      if (!child) continue;
      const path = [...segments, ...name.split("\\").filter(Boolean)];
      if (name === "vars") {
        let node = root;
        for (const s of segments) {
          if (!node.children.has(s)) node.children.set(s, { children: new Map() });
          node = node.children.get(s)!;
        }
        const keys = child.keys().sort((a, b) => Number(a) - Number(b));
        node.vars = keys.map((k) => dataset(child, k, `${what} ${segments.join("/")}`));
      } else {
        walk(child, path);
      }
    }
  };
  walk(file, []);
  return root;
}

const LAYER_SUFFIX = /^(.*?)(?:_(\d+))?$/;

/**
 * `.keras` weights are not stored under the layers' names but under `<container>/<snake_case(class)>[_n]/vars`,
 * numbered per class while Keras walks the model (Keras 3's `saving_lib._save_container_state`: "Do NOT address the
 * saveable via `saveable.name`"). The container is `layers` (Keras 3) or `_layer_checkpoint_dependencies`
 * (tf.keras 2.13–2.15, where each layer with weights is met twice, so the second Dense is `dense_2`). They are mapped
 * by order, as Keras loads them: the i-th layer of a class in config.json gets the i-th group of that class holding
 * weights (numbered order, `dense_10` after `dense_2`). A name match would silently swap layers of the same shape.
 */
function mapByOrder(config: unknown, tree: WeightNode, container: "layers" | "_layer_checkpoint_dependencies"): Map<string, WeightArray[]> {
  const found = new Map<string, WeightArray[]>();
  const MODEL_CLASSES = new Set(["Functional", "Model", "Sequential"]);
  const visit = (model: Record<string, unknown>, node: WeightNode | undefined, prefix: string[]) => {
    const cfg = (model.config ?? {}) as Record<string, unknown>;
    const layers = (Array.isArray(cfg.layers) ? cfg.layers : Array.isArray(model.config) ? model.config : []) as Array<Record<string, unknown>>;
    const deps = node?.children.get(container);
    // Groups per class stem, in Keras' numbering order.
    const byStem = new Map<string, Array<{ n: number; node: WeightNode }>>();
    for (const [name, child] of deps?.children ?? []) {
      const m = LAYER_SUFFIX.exec(name)!;
      const stem = m[1]!;
      if (!byStem.has(stem)) byStem.set(stem, []);
      byStem.get(stem)!.push({ n: m[2] === undefined ? 0 : Number(m[2]), node: child });
    }
    for (const list of byStem.values()) list.sort((a, b) => a.n - b.n);
    const used = new Map<string, number>();
    for (const layer of layers) {
      const className = String(layer.class_name);
      const cfgLayer = (layer.config ?? {}) as Record<string, unknown>;
      const name = String(layer.name ?? cfgLayer.name);
      const nested = MODEL_CLASSES.has(className);
      const stem = nested ? (className === "Sequential" ? "sequential" : "functional") : snakeCase(className);
      const candidates = (byStem.get(stem) ?? []).filter((c) => (nested ? c.node.children.has(container) : c.node.vars?.length));
      if (!candidates.length) {
        // Files whose groups carry the layers' own names (early Keras 3 previews); otherwise a layer without weights.
        const named = deps?.children.get(name);
        if (named && nested && named.children.has(container)) visit(layer, named, [...prefix, name]);
        else if (named?.vars?.length) found.set([...prefix, name].join("|"), named.vars);
        continue;
      }
      const index = used.get(stem) ?? 0;
      used.set(stem, index + 1);
      const match = candidates[index];
      if (!match) {
        throw new ImportError(
          `couche ${[...prefix, name].join("/")} (${className}) : model.weights.h5 contient ${candidates.length} groupe(s) de poids « ${stem} » pour davantage de couches de ce type / weights missing for this layer`,
        );
      }
      if (nested) visit(layer, match.node, [...prefix, name]);
      else found.set([...prefix, name].join("|"), match.node.vars!);
    }
  };
  visit(config as Record<string, unknown>, tree, []);
  return found;
}

/** Keras 3 `.keras` (ZIP: config.json + model.weights.h5), and tf.keras 2.13–2.15's layout of the same files. */
async function readKeras3(bytes: Uint8Array): Promise<KerasSource> {
  let entries: Map<string, Uint8Array>;
  try {
    entries = readZip(bytes);
  } catch (err) {
    throw new ImportError(`archive .keras illisible : ${(err as Error).message}`);
  }
  const config = entries.get("config.json");
  const weightsFile = entries.get("model.weights.h5");
  if (!config || !weightsFile) throw new ImportError("archive .keras incomplète (config.json et model.weights.h5 attendus)");
  const configJson = parseJson(new TextDecoder().decode(config), "config.json");
  const topology = parseKerasTopology(configJson);
  const metadata = entries.get("metadata.json");
  const version = metadata ? (parseJson(new TextDecoder().decode(metadata), "metadata.json") as { keras_version?: string }).keras_version : undefined;
  let legacy = false;
  const cache = await withH5(weightsFile, (file) => {
    const tree = weightTree(file, "model.weights.h5");
    if (tree.children.has("_layer_checkpoint_dependencies")) {
      legacy = true;
      return mapByOrder(configJson, tree, "_layer_checkpoint_dependencies");
    }
    if (!tree.children.has("layers")) throw new ImportError("model.weights.h5 sans groupe « layers » ni « _layer_checkpoint_dependencies »");
    return mapByOrder(configJson, tree, "layers");
  });
  const weights: WeightSource = (p) => {
    const found = cache.get(p.join("|"));
    if (!found) throw new ImportError(`poids de la couche ${p.join("/")} introuvables dans model.weights.h5`);
    return found;
  };
  const producer = version ? `Keras ${version}${legacy ? ", poids tf.keras 2.13–2.15 associés par ordre" : ""}` : legacy ? "tf.keras 2.13–2.15" : undefined;
  return { format: "keras-v3", topology, weights, producer };
}

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: "uint8" | "uint16" | "float16"; scale?: number; min?: number };
}

/** TF.js layers `model.json`; the shards are read from the same directory. */
async function readTfjs(jsonPath: string, bytes: Uint8Array): Promise<KerasSource> {
  const json = parseJson(new TextDecoder().decode(bytes), path.basename(jsonPath)) as {
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
