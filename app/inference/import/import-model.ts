/**
 * Imports a hospital's trained Keras model (`.h5`, `.keras`, or TF.js `model.json`) into `models/<name>/`:
 * converts it to ONNX (keras-to-onnx.ts), writes classes.json and a model card (clinical: false unless the caller
 * says otherwise), then loads the result with the platform's own loader and ONNX Runtime before reporting success.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { writeModelDirectory } from "../densenet.server";
import { classesJson, classesSchema, describeIssues, KERAS_DENSENET_PREPROCESSING, modelCardSchema, NON_CLINICAL_NOTICE, type ModelCard } from "../model-card";
import { loadModelDirectory } from "../model.server";
import { ImportError, readKerasModel, type KerasFormat } from "./keras-files";
import { kerasToOnnx } from "./keras-to-onnx";

export { ImportError } from "./keras-files";

export interface ImportOptions {
  /** The .h5 / .keras / model.json file. */
  source: string;
  /** Directory name under `modelsDir` and card name (default: the source's base name). */
  name?: string;
  version?: string;
  /** Labels in output order; default: a classes.json beside the source. */
  classes?: string[];
  clinical?: boolean;
  intendedUse?: string;
  trainingData?: string;
  /** Square input size when the model leaves it open (default 224). */
  inputSize?: number;
  /** Parent of the model directory (default "models"). */
  modelsDir?: string;
  /** Replace an existing model directory. */
  force?: boolean;
}

export interface ImportResult {
  dir: string;
  card: ModelCard;
  format: KerasFormat;
  parameterCount: number;
  classes: string[];
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/i;

function defaultName(source: string): string {
  const base = path.basename(source).replace(/\.(h5|hdf5|keras|json)$/i, "");
  const name = (base === "model" ? path.basename(path.dirname(path.resolve(source))) : base).replace(/[^a-z0-9._-]+/gi, "-");
  return name || "imported-model";
}

function resolveClasses(options: ImportOptions): string[] {
  if (options.classes) {
    const parsed = classesSchema.safeParse(classesJson(options.classes));
    if (!parsed.success) throw new ImportError(`classes invalides : ${describeIssues(parsed.error)}`);
    return parsed.data;
  }
  const beside = path.join(path.dirname(path.resolve(options.source)), "classes.json");
  if (!existsSync(beside)) {
    throw new ImportError(
      "ordre des classes inconnu : donnez --classes \"Négatif,Positif\" (dans l'ordre des sorties du modèle) ou placez un classes.json à côté du fichier",
    );
  }
  const parsed = classesSchema.safeParse(JSON.parse(readFileSync(beside, "utf8")));
  if (!parsed.success) throw new ImportError(`${beside} invalide : ${describeIssues(parsed.error)}`);
  return parsed.data;
}

export async function importModel(options: ImportOptions): Promise<ImportResult> {
  const name = options.name ?? defaultName(options.source);
  if (!NAME.test(name)) throw new ImportError(`nom de modèle invalide : « ${name} » (lettres, chiffres, . _ -)`);
  const dir = path.resolve(options.modelsDir ?? "models", name);
  if (existsSync(dir) && !options.force) throw new ImportError(`${dir} existe déjà (--force pour le remplacer)`);
  const classes = resolveClasses(options);

  const source = await readKerasModel(options.source);
  const converted = kerasToOnnx(source.topology, source.weights, {
    inputSize: options.inputSize,
    producer: "nexus model:import",
    docString: `Converted from ${path.basename(options.source)} (${source.format}${source.producer ? `, ${source.producer}` : ""})`,
  });
  if (converted.classes !== classes.length) {
    throw new ImportError(`le modèle a ${converted.classes} sorties mais ${classes.length} classes sont données (${classes.join(", ")})`);
  }
  const clinical = options.clinical ?? false;
  const card = modelCardSchema.parse({
    name,
    version: options.version ?? "1.0.0",
    inputSize: converted.inputSize,
    preprocessing: KERAS_DENSENET_PREPROCESSING,
    intendedUse:
      options.intendedUse ??
      (clinical
        ? "Aide au dépistage du cancer du sein sur mammographie, sous la responsabilité du médecin (usage à préciser par l'établissement)."
        : `Modèle importé, ${NON_CLINICAL_NOTICE} : usage à préciser par l'établissement avant toute utilisation clinique.`),
    trainingData: options.trainingData ?? "Non renseigné à l'import (à compléter par l'établissement).",
    clinical,
    sha256: createHash("sha256").update(converted.onnx).digest("hex"),
    source: `${path.basename(options.source)} (${source.format}${source.producer ? `, ${source.producer}` : ""}), ${converted.parameterCount} paramètres`,
    createdAt: new Date().toISOString(),
  });
  await writeModelDirectory(dir, { onnx: converted.onnx, card, classes: classesJson(classes) });

  // The platform's own checks, then ONNX Runtime itself, before calling it a success.
  const loaded = await loadModelDirectory(dir);
  const session = await ort.InferenceSession.create(loaded.onnx);
  await session.release();
  return { dir, card, format: source.format, parameterCount: converted.parameterCount, classes };
}
