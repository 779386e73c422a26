/**
 * Imports a trained Keras model into models/<name>/ (model.onnx + classes.json + card.json).
 *
 *   npm run model:import -- <model.h5 | model.keras | model.json | model.onnx> [--name x] [--version y]
 *       [--classes "Negative,Positive"] [--clinical] [--intended-use "…"] [--training-data "…"]
 *       [--input-size 224] [--models-dir models] [--force] [--preprocessing torch|tf|unit|raw] [--logits]
 *
 * Label order: --classes, else a classes.json beside the source file. The card says clinical: false unless
 * --clinical is given. Select the model with MODEL_DIR=models/<name> and restart the server.
 */
import { parseArgs } from "node:util";
import { ConversionError } from "../app/inference/import/keras-to-onnx";
import { TopologyError } from "../app/inference/import/keras-topology";
import { ImportError, importModel, PREPROCESSINGS, type PreprocessingName } from "../app/inference/import/import-model";
import { ModelError } from "../app/inference/model.server";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    name: { type: "string" },
    version: { type: "string" },
    classes: { type: "string" },
    clinical: { type: "boolean", default: false },
    "intended-use": { type: "string" },
    "training-data": { type: "string" },
    "input-size": { type: "string" },
    "models-dir": { type: "string" },
    force: { type: "boolean", default: false },
    preprocessing: { type: "string" },
    logits: { type: "boolean", default: false },
  },
});

if (values.preprocessing !== undefined && !(values.preprocessing in PREPROCESSINGS)) {
  console.error(`Import refusé : --preprocessing ${values.preprocessing} inconnu (${Object.keys(PREPROCESSINGS).join(", ")})`);
  process.exit(2);
}
if (positionals.length !== 1) {
  console.error("usage: npm run model:import -- <model.h5 | model.keras | model.json | model.onnx> [--name x] [--version y] [--classes \"A,B\"] [--clinical] [--force]");
  process.exit(2);
}

const start = performance.now();
try {
  const result = await importModel({
    source: positionals[0]!,
    name: values.name,
    version: values.version,
    classes: values.classes?.split(",").map((s) => s.trim()),
    clinical: values.clinical,
    intendedUse: values["intended-use"],
    trainingData: values["training-data"],
    inputSize: values["input-size"] ? Number(values["input-size"]) : undefined,
    modelsDir: values["models-dir"],
    force: values.force,
    preprocessing: values.preprocessing as PreprocessingName | undefined,
    logits: values.logits,
  });
  console.log(`${result.card.name} ${result.card.version} (${result.format}) → ${result.dir}`);
  console.log(`  ${result.parameterCount.toLocaleString("en")} parameters, classes: ${result.classes.join(", ")}`);
  console.log(`  sha256 ${result.card.sha256}`);
  if (result.card.heatmap === "none") console.log(`  heatmap: none — ${result.card.heatmapNote}`);
  console.log(`  clinical: ${result.card.clinical}${result.card.clinical ? "" : " (modèle non validé cliniquement)"}`);
  console.log(`  imported in ${((performance.now() - start) / 1000).toFixed(1)} s — use it with MODEL_DIR=${result.dir}`);
} catch (err) {
  if (err instanceof ImportError || err instanceof ConversionError || err instanceof TopologyError || err instanceof ModelError) {
    console.error(`Import refusé : ${err.message}`);
    process.exit(1);
  }
  throw err;
}
