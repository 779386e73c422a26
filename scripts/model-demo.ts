/**
 * Builds the demonstration model (DenseNet121, deterministic seeded weights — not clinically validated) as
 * models/densenet121-demo/{model.onnx, classes.json, card.json}. The server also builds it on first start if absent.
 *
 *   npm run model:demo [-- --dir <directory>]
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { DEMO_MODEL_NAME, writeDemoModel } from "../app/inference/densenet.server";
import { DEFAULT_MODEL_DIR } from "../app/inference/model.server";

const { values } = parseArgs({ options: { dir: { type: "string", default: DEFAULT_MODEL_DIR } } });
const dir = path.resolve(values.dir!);
const start = performance.now();
const files = await writeDemoModel(dir);
const seconds = (performance.now() - start) / 1000;
console.log(`${DEMO_MODEL_NAME} ${files.card.version} → ${dir}`);
console.log(`  model.onnx   ${(files.onnx.length / 1e6).toFixed(1)} MB, ${files.parameterCount.toLocaleString("en")} parameters`);
console.log(`  sha256       ${files.card.sha256}`);
console.log(`  clinical     ${files.card.clinical} (modèle de démonstration — non validé cliniquement)`);
console.log(`  built in     ${seconds.toFixed(2)} s`);
