/**
 * Imports a hospital's trained model (Keras `.h5`, `.keras`, TF.js `model.json`, or ONNX) into `models/<name>/`:
 * converts a Keras model to ONNX with Grad-CAM outputs (keras-to-onnx.ts) or adapts an ONNX one (onnx-import.ts: no
 * heatmap), writes classes.json and a model card (clinical: false unless the caller says otherwise), then loads the
 * result with the platform's own loader and runs it once with ONNX Runtime before reporting success.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { writeModelDirectory } from "../densenet.server";
import { classesJson, classesSchema, describeIssues, KERAS_DENSENET_PREPROCESSING, modelCardSchema, NON_CLINICAL_NOTICE, type ModelCard } from "../model-card";
import { loadModelDirectory, ModelError } from "../model.server";
import { keepOnnxRuntimeOffline } from "../offline";
import { ImportError, readKerasModel, type KerasFormat } from "./keras-files";
import { kerasToOnnx } from "./keras-to-onnx";
import { adaptOnnx } from "./onnx-import";

export type ImportFormat = KerasFormat | "onnx";

export { ImportError } from "./keras-files";

export interface ImportOptions {
  /** The .h5 / .keras / model.json / .onnx file. */
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
  /**
   * How pixels are scaled before the network (written to the card): "torch" (ImageNet mean/std, Keras' DenseNet),
   * "tf" ([−1, 1], Keras' MobileNet / Teachable Machine), "unit" ([0, 1]) or "raw" (0–255). Default: "raw" when the
   * model starts with its own Rescaling / Normalization, else "torch" (Keras model) or "torch" (ONNX).
   */
  preprocessing?: PreprocessingName;
  /** ONNX only: the output is raw scores (logits), apply a softmax. */
  logits?: boolean;
}

export const PREPROCESSINGS = {
  torch: KERAS_DENSENET_PREPROCESSING,
  tf: { scale: "0-1", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  unit: { scale: "0-1", mean: [0, 0, 0], std: [1, 1, 1] },
  raw: { scale: "0-1", mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] },
} as const satisfies Record<string, ModelCard["preprocessing"]>;
export type PreprocessingName = keyof typeof PREPROCESSINGS;

export interface ImportResult {
  dir: string;
  card: ModelCard;
  format: ImportFormat;
  parameterCount: number;
  classes: string[];
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/i;

function defaultName(source: string): string {
  const base = path.basename(source).replace(/\.(h5|hdf5|keras|json|onnx)$/i, "");
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

  let converted: { onnx: Uint8Array; inputSize: number; classes: number; rawPixels: boolean; parameterCount?: number };
  let format: ImportFormat;
  let origin: string;
  const heatmap: Pick<ModelCard, "heatmap" | "heatmapNote"> = { heatmap: "grad-cam" };
  if (/\.onnx$/i.test(options.source)) {
    const adapted = adaptOnnx(new Uint8Array(await readFile(options.source)), { inputSize: options.inputSize, logits: options.logits });
    converted = { ...adapted, rawPixels: false };
    format = "onnx";
    origin = `${path.basename(options.source)} (ONNX ${adapted.layout}, ${adapted.producer}, sortie ${adapted.output})`;
    heatmap.heatmap = "none";
    heatmap.heatmapNote =
      "Modèle importé tel quel au format ONNX : aucune carte de caractéristiques convolutive ne peut y être identifiée, les lectures n'ont donc pas de carte de chaleur (Grad-CAM). / Imported as ONNX: no convolutional feature map can be identified, readings carry no heatmap.";
  } else {
    const source = await readKerasModel(options.source);
    converted = kerasToOnnx(source.topology, source.weights, {
      inputSize: options.inputSize,
      producer: "nexus model:import",
      docString: `Converted from ${path.basename(options.source)} (${source.format}${source.producer ? `, ${source.producer}` : ""})`,
    });
    format = source.format;
    origin = `${path.basename(options.source)} (${source.format}${source.producer ? `, ${source.producer}` : ""}), ${converted.parameterCount} paramètres`;
  }
  if (converted.classes !== classes.length) {
    throw new ImportError(`le modèle a ${converted.classes} sorties mais ${classes.length} classes sont données (${classes.join(", ")})`);
  }
  const clinical = options.clinical ?? false;
  const card = modelCardSchema.parse({
    name,
    version: options.version ?? "1.0.0",
    inputSize: converted.inputSize,
    preprocessing: PREPROCESSINGS[options.preprocessing ?? (converted.rawPixels ? "raw" : "torch")],
    ...heatmap,
    intendedUse:
      options.intendedUse ??
      (clinical
        ? "Aide au dépistage du cancer du sein sur mammographie, sous la responsabilité du médecin (usage à préciser par l'établissement)."
        : `Modèle importé, ${NON_CLINICAL_NOTICE} : usage à préciser par l'établissement avant toute utilisation clinique.`),
    trainingData: options.trainingData ?? "Non renseigné à l'import (à compléter par l'établissement).",
    clinical,
    sha256: createHash("sha256").update(converted.onnx).digest("hex"),
    source: origin,
    createdAt: new Date().toISOString(),
  });
  await writeModelDirectory(dir, { onnx: converted.onnx, card, classes: classesJson(classes) });

  // The platform's own checks, then ONNX Runtime itself on one blank image, before calling it a success; a model
  // that fails them is removed (nothing half-imported is left for MODEL_DIR to pick up).
  try {
    const loaded = await loadModelDirectory(dir);
    keepOnnxRuntimeOffline();
    const session = await ort.InferenceSession.create(loaded.onnx);
    try {
      const size = loaded.card.inputSize;
      const out = await session.run({ input: new ort.Tensor("float32", new Float32Array(3 * size * size), [1, 3, size, size]) });
      const p = out.probabilities!.data as Float32Array;
      const sum = p.reduce((a, b) => a + b, 0);
      if (p.length !== classes.length || !(Math.abs(sum - 1) < 1e-3)) {
        throw new ImportError(`le modèle converti ne donne pas des probabilités (${p.length} valeurs de somme ${sum}) / the converted model does not output probabilities`);
      }
    } finally {
      await session.release();
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    if (err instanceof ImportError || err instanceof ModelError) throw err;
    throw new ImportError(`ONNX Runtime refuse le modèle converti : ${(err as Error).message.split("\n")[0]} / ONNX Runtime rejects the model`);
  }
  return { dir, card, format, parameterCount: converted.parameterCount ?? 0, classes };
}
