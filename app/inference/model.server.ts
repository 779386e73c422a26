/**
 * Loading a model directory `models/<name>/` (`model.onnx`, `classes.json`, `card.json`) and refusing, with a
 * {@link ModelError} that says what is wrong, anything the platform could not run faithfully:
 *
 * - a missing directory or file;
 * - an invalid `classes.json` or `card.json` (schemas in model-card.ts);
 * - weights whose SHA-256 differs from the card's (a changed or tampered `model.onnx`);
 * - a graph without the expected input (`input` [N, 3, S, S], S = the card's inputSize) or output
 *   (`probabilities` [N, K] with K = the number of classes);
 * - for Grad-CAM, either both `features` [N, C, h, w] (the last convolutional feature map) and `gradients`
 *   [N, K, C, h, w] (∂ class score / ∂ features, computed in the graph by the importer), or neither (a model imported
 *   directly as ONNX: readings then carry no heatmap, and its card says `heatmap: "none"`).
 *
 * The bytes that were hashed are the bytes handed to ONNX Runtime: the file is read once.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { classesSchema, describeIssues, modelCardSchema, type ModelCard } from "./model-card";
import type { GradCamShape } from "./gradcam.server";
import { onnx, type OnnxTypes } from "./import/onnx-builder";

export const DEFAULT_MODEL_DIR = "models/densenet121-demo";

export type ModelErrorCode =
  | "missing_directory"
  | "missing_file"
  | "invalid_classes"
  | "invalid_card"
  | "sha256_mismatch"
  | "invalid_model"
  | "class_count_mismatch"
  | "unsupported_head";

/** The model directory cannot be used; the message names the directory and the problem. */
export class ModelError extends Error {
  constructor(
    readonly code: ModelErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ModelError";
  }
}

export interface LoadedModel {
  /** Absolute path of the directory. */
  dir: string;
  card: ModelCard;
  /** Labels in output order, from classes.json. */
  classes: string[];
  /** SHA-256 of model.onnx as read (equal to card.sha256). */
  sha256: string;
  /** The verified bytes of model.onnx. */
  onnx: Uint8Array;
  /** Shape of the feature map for Grad-CAM; null when the model has none (no heatmap). */
  gradCam: GradCamShape | null;
}

/** The model directory selected by `MODEL_DIR` (default {@link DEFAULT_MODEL_DIR}), resolved from the working directory. */
export function modelDirFromEnv(env: Record<string, string | undefined> = process.env): string {
  return path.resolve(env.MODEL_DIR?.trim() || DEFAULT_MODEL_DIR);
}

async function readJson(file: string, code: "invalid_classes" | "invalid_card", where: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw new ModelError(code, `${where} : JSON illisible (${(err as Error).message}).`);
  }
}

type TensorType = OnnxTypes.IValueInfoProto | undefined;

function shapeOf(info: TensorType): Array<number | string> | null {
  const dims = info?.type?.tensorType?.shape?.dim;
  if (!dims) return null;
  return dims.map((d) => (d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : (d.dimParam ?? "?")));
}

/** Reads and validates a model directory. */
export async function loadModelDirectory(dirArg: string): Promise<LoadedModel> {
  const dir = path.resolve(dirArg);
  const where = (file?: string) => (file ? path.join(dir, file) : dir);
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error("not a directory");
  } catch {
    throw new ModelError("missing_directory", `Répertoire de modèle introuvable : ${dir} (variable MODEL_DIR).`);
  }
  for (const file of ["model.onnx", "classes.json", "card.json"]) {
    try {
      if (!(await stat(where(file))).isFile()) throw new Error("not a file");
    } catch {
      throw new ModelError("missing_file", `Modèle incomplet : ${where(file)} est absent (attendus : model.onnx, classes.json, card.json).`);
    }
  }

  const classesParsed = classesSchema.safeParse(await readJson(where("classes.json"), "invalid_classes", where("classes.json")));
  if (!classesParsed.success) {
    throw new ModelError("invalid_classes", `${where("classes.json")} invalide : ${describeIssues(classesParsed.error)}.`);
  }
  const classes = classesParsed.data;
  const cardParsed = modelCardSchema.safeParse(await readJson(where("card.json"), "invalid_card", where("card.json")));
  if (!cardParsed.success) throw new ModelError("invalid_card", `${where("card.json")} invalide : ${describeIssues(cardParsed.error)}.`);
  const card = cardParsed.data;

  const bytes = new Uint8Array(await readFile(where("model.onnx")));
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (sha256 !== card.sha256) {
    throw new ModelError(
      "sha256_mismatch",
      `${where("model.onnx")} a été modifié : son SHA-256 (${sha256}) ne correspond pas à celui de la fiche du modèle (${card.sha256}). Modèle refusé.`,
    );
  }

  let model: OnnxTypes.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new ModelError("invalid_model", `${where("model.onnx")} n'est pas un modèle ONNX lisible (${(err as Error).message}).`);
  }
  const gradCam = inspectGraph(model, card, classes, where("model.onnx"));
  return { dir, card, classes, sha256, onnx: bytes, gradCam };
}

/** Checks inputs/outputs against the card and classes; returns the feature map's shape for Grad-CAM (or null). */
function inspectGraph(model: OnnxTypes.ModelProto, card: ModelCard, classes: string[], file: string): GradCamShape | null {
  const graph = model.graph;
  const invalid = (why: string) => new ModelError("invalid_model", `${file} : ${why}.`);
  if (!graph) throw invalid("graphe absent");
  const graphInputs = graph.input ?? [];
  const graphOutputs = graph.output ?? [];
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ""));
  const realInputs = graphInputs.filter((i) => !initializers.has(i.name ?? ""));
  const input = realInputs.find((i) => i.name === "input");
  const inputShape = shapeOf(input);
  if (realInputs.length !== 1 || !inputShape) throw invalid(`une seule entrée « input » est attendue (trouvé : ${realInputs.map((i) => i.name).join(", ") || "aucune"})`);
  const [, c, h, w] = inputShape;
  if (inputShape.length !== 4 || c !== 3 || h !== card.inputSize || w !== card.inputSize) {
    throw invalid(`l'entrée doit être [N, 3, ${card.inputSize}, ${card.inputSize}] (inputSize de la fiche), elle est [${inputShape.join(", ")}]`);
  }
  const probabilities = shapeOf(graphOutputs.find((o) => o.name === "probabilities"));
  if (!probabilities || probabilities.length !== 2 || typeof probabilities[1] !== "number") {
    throw invalid("la sortie « probabilities » [N, classes] est absente");
  }
  if (probabilities[1] !== classes.length) {
    throw new ModelError(
      "class_count_mismatch",
      `classes.json déclare ${classes.length} classes mais le modèle ${file} en produit ${probabilities[1]} : les étiquettes ne correspondraient pas aux sorties. Modèle refusé.`,
    );
  }
  const featuresInfo = graphOutputs.find((o) => o.name === "features");
  const gradientsInfo = graphOutputs.find((o) => o.name === "gradients");
  if (!featuresInfo && !gradientsInfo) {
    if (card.heatmap !== "none") {
      throw new ModelError(
        "unsupported_head",
        `${file} : ni « features » ni « gradients » (pas de Grad-CAM possible) mais la fiche ne dit pas heatmap: "none" ; réimportez le modèle (npm run model:import). Modèle refusé.`,
      );
    }
    return null;
  }
  const features = shapeOf(featuresInfo);
  if (!features || features.length !== 4 || features.slice(1).some((d) => typeof d !== "number")) {
    throw invalid("la sortie « features » [N, C, h, w] (carte de caractéristiques pour le Grad-CAM) est absente ou sans forme fixe");
  }
  const [, channels, fh, fw] = features as [unknown, number, number, number];
  const gradients = shapeOf(gradientsInfo);
  const expected = [classes.length, channels, fh, fw];
  if (!gradients || gradients.length !== 5 || gradients.slice(1).join() !== expected.join()) {
    throw new ModelError(
      "unsupported_head",
      `${file} : la sortie « gradients » [N, ${expected.join(", ")}] (dérivée des scores de classe par rapport à « features », pour le Grad-CAM) est absente ou de forme [${gradients?.join(", ") ?? ""}] ; réimportez le modèle avec npm run model:import. Modèle refusé.`,
    );
  }
  return { channels, height: fh, width: fw };
}
