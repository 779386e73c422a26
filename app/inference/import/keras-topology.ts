/**
 * Keras model configurations (the JSON of `model.to_json()`, `attrs.model_config` of a Keras 2 `.h5`, `config.json`
 * of a Keras 3 `.keras`, the `modelTopology` of a TF.js layers `model.json`) → one flat list of layers in graph
 * order, each with the names of the layers it reads from. Nested models (a `DenseNet121` base used as a layer of a
 * transfer-learning model) are flattened.
 */

export interface LayerSpec {
  /** Keras class name, e.g. "Conv2D"; "Alias" for a pass-through introduced by flattening. */
  className: string;
  /** Unique name in the flattened graph (inner layers of a nested model are prefixed "outer/"). */
  name: string;
  config: Record<string, unknown>;
  /** Names of the layers whose (single) output this layer reads, in argument order. */
  inbound: string[];
  /** Where the weights live: [layer] at the top level, [outer, inner] inside a nested model. */
  weightPath: string[];
}

export interface Topology {
  name: string;
  layers: LayerSpec[];
  inputs: string[];
  outputs: string[];
}

export class TopologyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TopologyError";
  }
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const MODEL_CLASSES = new Set(["Functional", "Model", "Sequential"]);

/** Accepts `{class_name, config}`, `{model_config: {…}}` (TF.js converter) or `{modelTopology: …}`. */
export function parseKerasTopology(json: unknown): Topology {
  let root = json;
  if (isObject(root) && "modelTopology" in root) root = root.modelTopology;
  if (isObject(root) && "model_config" in root) root = root.model_config;
  if (typeof root === "string") root = JSON.parse(root);
  if (!isObject(root) || typeof root.class_name !== "string" || !MODEL_CLASSES.has(root.class_name)) {
    throw new TopologyError("configuration Keras introuvable (ni Functional, ni Model, ni Sequential)");
  }
  return parseModel(root, [], "");
}

function configOf(layer: Json): Json {
  return isObject(layer.config) ? layer.config : {};
}

function layerName(layer: Json): string {
  const name = layer.name ?? configOf(layer).name;
  if (typeof name !== "string" || !name) throw new TopologyError("couche sans nom dans la configuration");
  return name;
}

function parseModel(model: Json, weightPrefix: string[], namePrefix: string): Topology {
  const config = configOf(model);
  const name = typeof config.name === "string" ? config.name : "model";
  const layersJson = Array.isArray(config.layers) ? config.layers : Array.isArray(model.config) ? model.config : null;
  if (!layersJson) throw new TopologyError(`modèle ${name} sans couches`);
  return model.class_name === "Sequential"
    ? parseSequential(name, layersJson as Json[], weightPrefix, namePrefix)
    : parseFunctional(name, config, layersJson as Json[], weightPrefix, namePrefix);
}

/**
 * The input shape a Sequential model's first layer declares: `batch_input_shape` (Keras 2, TF.js) or `batch_shape`
 * (Keras 3) on the layer itself, or, when the first layer is itself a model (Teachable Machine: a Sequential whose
 * first layer is the truncated MobileNet), on that model's first layer or input layer.
 */
function firstInputShape(layer: Json): unknown {
  const cfg = configOf(layer);
  const own = cfg.batch_input_shape ?? cfg.batch_shape;
  if (own) return own;
  if (!MODEL_CLASSES.has(String(layer.class_name))) return undefined;
  const layers = Array.isArray(cfg.layers) ? (cfg.layers as Json[]) : Array.isArray(layer.config) ? (layer.config as Json[]) : [];
  if (layer.class_name !== "Sequential") {
    const inputs = Array.isArray(cfg.input_layers) ? cfg.input_layers : [];
    const first = Array.isArray(inputs[0]) ? inputs[0][0] : inputs[0];
    const input = layers.find((l) => l.class_name === "InputLayer" && (first === undefined || layerName(l) === first));
    return input ? firstInputShape(input) : undefined;
  }
  return layers[0] ? firstInputShape(layers[0]) : undefined;
}

function inputSpec(name: string, shape: unknown, weightPrefix: string[]): LayerSpec {
  return { className: "InputLayer", name, config: { batch_input_shape: shape }, inbound: [], weightPath: [...weightPrefix, name] };
}

function parseSequential(name: string, layers: Json[], weightPrefix: string[], namePrefix: string): Topology {
  const out: LayerSpec[] = [];
  let previous: string | undefined;
  let input: string | undefined;
  for (const layer of layers) {
    const className = String(layer.class_name);
    const cfg = configOf(layer);
    if (className === "InputLayer") {
      const spec = inputSpec(namePrefix + layerName(layer), cfg.batch_input_shape ?? cfg.batch_shape, weightPrefix);
      out.push(spec);
      previous = input = spec.name;
      continue;
    }
    if (previous === undefined) {
      const shape = firstInputShape(layer);
      if (!shape) {
        throw new TopologyError(
          `modèle séquentiel ${name} sans forme d'entrée : sa première couche ${layerName(layer)} (${className}) ne déclare ni batch_input_shape ni batch_shape / no input shape`,
        );
      }
      const spec = inputSpec(`${namePrefix}${name}_input`, shape, weightPrefix);
      out.push(spec);
      previous = input = spec.name;
    }
    previous = appendLayer(out, layer, [previous], weightPrefix, namePrefix);
  }
  if (!input || !previous) throw new TopologyError(`modèle séquentiel ${name} vide`);
  return { name, layers: out, inputs: [input], outputs: [previous] };
}

/** Appends a layer (flattening a nested model); returns the name of the layer holding its output. */
function appendLayer(out: LayerSpec[], layer: Json, inbound: string[], weightPrefix: string[], namePrefix: string): string {
  const className = String(layer.class_name);
  const name = layerName(layer);
  if (MODEL_CLASSES.has(className)) {
    const inner = parseModel(layer, [...weightPrefix, name], `${namePrefix}${name}/`);
    if (inner.inputs.length !== inbound.length) {
      throw new TopologyError(`modèle imbriqué ${name} : ${inner.inputs.length} entrées, ${inbound.length} fournies`);
    }
    const renamed = new Map(inner.inputs.map((input, i) => [input, inbound[i]!]));
    for (const l of inner.layers) {
      if (l.className === "InputLayer" && renamed.has(l.name)) {
        out.push({ className: "Alias", name: l.name, config: {}, inbound: [renamed.get(l.name)!], weightPath: l.weightPath });
      } else {
        out.push(l);
      }
    }
    if (inner.outputs.length !== 1) throw new TopologyError(`modèle imbriqué ${name} : une seule sortie est prise en charge`);
    out.push({ className: "Alias", name: namePrefix + name, config: {}, inbound: [inner.outputs[0]!], weightPath: [] });
    return namePrefix + name;
  }
  out.push({ className, name: namePrefix + name, config: configOf(layer), inbound, weightPath: [...weightPrefix, name] });
  return namePrefix + name;
}

/** Layer names referenced by one inbound node, Keras 2 (`[["name", 0, 0, {}], …]`) or Keras 3 (`{args, kwargs}`). */
function inboundNames(node: unknown): string[] {
  if (Array.isArray(node)) {
    return node.map((ref) => {
      if (!Array.isArray(ref) || typeof ref[0] !== "string") throw new TopologyError("référence d'entrée illisible");
      if (Number(ref[2] ?? 0) !== 0) throw new TopologyError(`couche ${ref[0]} à plusieurs sorties : non prise en charge`);
      return ref[0];
    });
  }
  if (isObject(node) && "args" in node) {
    const names: string[] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (isObject(v)) {
        const history = isObject(v.config) ? v.config.keras_history : undefined;
        if (v.class_name === "__keras_tensor__" && Array.isArray(history) && typeof history[0] === "string") {
          if (Number(history[2] ?? 0) !== 0) throw new TopologyError(`couche ${history[0]} à plusieurs sorties : non prise en charge`);
          names.push(history[0]);
        } else Object.values(v).forEach(walk);
      }
    };
    walk(node.args);
    return names;
  }
  throw new TopologyError("nœud d'entrée illisible");
}

/** `[["a",0,0], …]` or Keras 3's single `["a",0,0]`. */
function endpointNames(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length === 0) throw new TopologyError(`${what} absentes de la configuration`);
  if (typeof v[0] === "string") return [v[0]];
  return v.map((ref) => {
    if (!Array.isArray(ref) || typeof ref[0] !== "string") throw new TopologyError(`${what} illisibles`);
    return ref[0];
  });
}

function parseFunctional(name: string, config: Json, layers: Json[], weightPrefix: string[], namePrefix: string): Topology {
  const out: LayerSpec[] = [];
  const outputOf = new Map<string, string>(); // Keras layer name → flattened layer holding its output
  for (const layer of layers) {
    const className = String(layer.class_name);
    const lname = layerName(layer);
    const nodes = Array.isArray(layer.inbound_nodes) ? layer.inbound_nodes : [];
    if (className === "InputLayer") {
      const cfg = configOf(layer);
      const spec = inputSpec(namePrefix + lname, cfg.batch_input_shape ?? cfg.batch_shape, weightPrefix);
      out.push(spec);
      outputOf.set(lname, spec.name);
      continue;
    }
    if (nodes.length !== 1) {
      throw new TopologyError(`couche ${lname} appelée ${nodes.length} fois : les couches partagées ne sont pas prises en charge`);
    }
    const inbound = inboundNames(nodes[0]).map((n) => {
      const source = outputOf.get(n);
      if (!source) throw new TopologyError(`couche ${lname} : entrée ${n} inconnue ou définie après elle`);
      return source;
    });
    outputOf.set(lname, appendLayer(out, layer, inbound, weightPrefix, namePrefix));
  }
  const resolve = (n: string) => {
    const source = outputOf.get(n);
    if (!source) throw new TopologyError(`couche ${n} inconnue`);
    return source;
  };
  return {
    name,
    layers: out,
    inputs: endpointNames(config.input_layers, "entrées").map(resolve),
    outputs: endpointNames(config.output_layers, "sorties").map(resolve),
  };
}
