import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDemoModel, DENSENET121_PARAMETERS_2_CLASSES, ensureDemoModel, writeDemoModel } from "./densenet.server";
import { onnx } from "./import/onnx-builder";
import { DEFAULT_MODEL_DIR, loadModelDirectory, ModelError, modelDirFromEnv, type ModelErrorCode } from "./model.server";

let root: string;
let demo: string;
let buildSeconds: number;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), "nexus-model-"));
  demo = path.join(root, "densenet121-demo");
  const start = performance.now();
  await writeDemoModel(demo);
  buildSeconds = (performance.now() - start) / 1000;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A copy of the demo directory with some files changed. */
function variant(name: string, change: (dir: string) => void): string {
  const dir = path.join(root, name);
  mkdirSync(dir);
  for (const f of ["model.onnx", "classes.json", "card.json"]) copyFileSync(path.join(demo, f), path.join(dir, f));
  change(dir);
  return dir;
}

async function refusal(dir: string): Promise<ModelError> {
  const err = await loadModelDirectory(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelError);
  return err as ModelError;
}

async function expectRefused(dir: string, code: ModelErrorCode, message: RegExp) {
  const err = await refusal(dir);
  expect(err.code).toBe(code);
  expect(err.message).toMatch(message);
}

describe("demo model", () => {
  it("is Keras' DenseNet121: 7,039,554 parameters counted from the ONNX initializers", () => {
    const model = onnx.ModelProto.decode(readFileSync(path.join(demo, "model.onnx")));
    let parameters = 0;
    for (const t of model.graph!.initializer!) {
      if (t.dataType === onnx.TensorProto.DataType.FLOAT && !t.name!.startsWith("grad/")) parameters += t.dims!.reduce((a: number, d) => a * Number(d), 1);
    }
    expect(parameters).toBe(7_039_554);
    expect(DENSENET121_PARAMETERS_2_CLASSES).toBe(7_039_554);
    // 120 convolutions (1 stem + 58 × 2 in the dense blocks + 3 transitions) + the dense layer = DenseNet-121
    const ops = model.graph!.node!.filter((n) => !n.name!.startsWith("grad/")).map((n) => n.opType); // without the head's backward pass
    expect(ops.filter((o) => o === "Conv")).toHaveLength(120);
    expect(ops.filter((o) => o === "Gemm")).toHaveLength(1);
    expect(ops.filter((o) => o === "BatchNormalization")).toHaveLength(121); // + the final BN
    expect(ops.filter((o) => o === "Concat")).toHaveLength(58);
    expect(Number(model.irVersion)).toBe(8);
    expect(Number(model.opsetImport![0]!.version)).toBe(13);
    expect(model.graph!.output!.map((o) => o.name)).toEqual(["probabilities", "features", "gradients"]);
  });

  it("is deterministic and builds in a few seconds", () => {
    console.log(`demo model built and written in ${buildSeconds.toFixed(2)} s`);
    expect(buildSeconds).toBeLessThan(20); // ≈ 1–2 s on 2 cores; generous for loaded CI machines
    const again = buildDemoModel();
    const card = JSON.parse(readFileSync(path.join(demo, "card.json"), "utf8"));
    expect(again.card.sha256).toBe(card.sha256);
  });

  it("loads: card, classes in classes.json order, verified SHA-256 and the Grad-CAM head", async () => {
    const model = await loadModelDirectory(demo);
    expect(model.card).toMatchObject({ name: "densenet121-demo", version: "1.0.0-demo", inputSize: 224, clinical: false });
    expect(model.card.intendedUse).toMatch(/démonstration/);
    expect(model.classes).toEqual(["Negative", "Positive"]);
    expect(model.sha256).toBe(model.card.sha256);
    expect(model.gradCam).toEqual({ channels: 1024, height: 7, width: 7 });
  });

  it("takes the label order from classes.json, whatever the key order in the file", async () => {
    const dir = variant("reordered", (d) => writeFileSync(path.join(d, "classes.json"), '{"1": "Malin", "0": "Bénin"}'));
    expect((await loadModelDirectory(dir)).classes).toEqual(["Bénin", "Malin"]);
  });

  it("ensureDemoModel builds only when the model is missing", async () => {
    const dir = path.join(root, "ensure");
    expect(await ensureDemoModel(dir)).toBe(true);
    expect(await ensureDemoModel(dir)).toBe(false);
    expect((await loadModelDirectory(dir)).sha256).toBe((await loadModelDirectory(demo)).sha256);
  });

  it("MODEL_DIR selects the directory, default models/densenet121-demo", () => {
    expect(modelDirFromEnv({})).toBe(path.resolve(DEFAULT_MODEL_DIR));
    expect(modelDirFromEnv({ MODEL_DIR: "/srv/models/x" })).toBe("/srv/models/x");
  });
});

describe("refusals (the server must not start)", () => {
  it("missing directory or file", async () => {
    await expectRefused(path.join(root, "nowhere"), "missing_directory", /Répertoire de modèle introuvable : .*nowhere.*MODEL_DIR/);
    for (const file of ["model.onnx", "classes.json", "card.json"]) {
      const dir = variant(`no-${file}`, (d) => rmSync(path.join(d, file)));
      await expectRefused(dir, "missing_file", new RegExp(`${file.replace(".", "\\.")} est absent`));
    }
  });

  it("invalid classes.json, or a class count different from the model's outputs", async () => {
    await expectRefused(variant("classes-json", (d) => writeFileSync(path.join(d, "classes.json"), "{oops")), "invalid_classes", /JSON illisible/);
    await expectRefused(variant("classes-gap", (d) => writeFileSync(path.join(d, "classes.json"), '{"0":"A","2":"B"}')), "invalid_classes", /index 1 is missing/);
    await expectRefused(variant("classes-dup", (d) => writeFileSync(path.join(d, "classes.json"), '{"0":"A","1":"A"}')), "invalid_classes", /unique/);
    await expectRefused(
      variant("classes-three", (d) => writeFileSync(path.join(d, "classes.json"), '{"0":"Negative","1":"Benign","2":"Malignant"}')),
      "class_count_mismatch",
      /classes\.json déclare 3 classes mais le modèle .* en produit 2/,
    );
  });

  it("invalid card", async () => {
    const edit = (change: (card: Record<string, unknown>) => void) => (d: string) => {
      const card = JSON.parse(readFileSync(path.join(d, "card.json"), "utf8"));
      change(card);
      writeFileSync(path.join(d, "card.json"), JSON.stringify(card));
    };
    await expectRefused(variant("card-clinical", edit((c) => delete c.clinical)), "invalid_card", /clinical/);
    await expectRefused(variant("card-std", edit((c) => ((c.preprocessing as { std: number[] }).std = [0, 1, 1]))), "invalid_card", /std/);
    await expectRefused(variant("card-size", edit((c) => (c.inputSize = 256))), "invalid_model", /\[N, 3, 256, 256\]/);
  });

  it("tampered weights: SHA-256 different from the card's", async () => {
    const dir = variant("tampered", (d) => {
      const bytes = readFileSync(path.join(d, "model.onnx"));
      bytes[bytes.length - 100]! ^= 0x01; // one bit of one weight
      writeFileSync(path.join(d, "model.onnx"), bytes);
    });
    await expectRefused(dir, "sha256_mismatch", /model\.onnx a été modifié : son SHA-256 \([0-9a-f]{64}\) ne correspond pas/);
  });

  it("a file that is not ONNX, even with a matching card", async () => {
    const dir = variant("not-onnx", (d) => {
      const bytes = Buffer.from("not a model at all, just bytes".repeat(10));
      writeFileSync(path.join(d, "model.onnx"), bytes);
      const card = JSON.parse(readFileSync(path.join(d, "card.json"), "utf8"));
      card.sha256 = createHash("sha256").update(bytes).digest("hex");
      writeFileSync(path.join(d, "card.json"), JSON.stringify(card));
    });
    await expectRefused(dir, "invalid_model", /ONNX|graphe|entrée/);
  });
});

describe("Grad-CAM outputs", () => {
  /** The demo model with some graph outputs dropped (as a model built before `gradients` existed), card re-hashed. */
  const withoutOutputs = (name: string, drop: string[], card: (c: Record<string, unknown>) => void = () => undefined) =>
    variant(name, (d) => {
      const model = onnx.ModelProto.decode(readFileSync(path.join(d, "model.onnx")));
      model.graph!.output = model.graph!.output!.filter((o) => !drop.includes(o.name!));
      const bytes = onnx.ModelProto.encode(model).finish();
      writeFileSync(path.join(d, "model.onnx"), bytes);
      const c = JSON.parse(readFileSync(path.join(d, "card.json"), "utf8"));
      c.sha256 = createHash("sha256").update(bytes).digest("hex");
      card(c);
      writeFileSync(path.join(d, "card.json"), JSON.stringify(c));
    });

  it("a model with `features` but no `gradients` (written before 2026-11-30) is refused with a way out", async () => {
    await expectRefused(withoutOutputs("no-gradients", ["gradients"]), "unsupported_head", /sortie « gradients » .*réimportez le modèle avec npm run model:import/);
  });

  it("no Grad-CAM outputs at all: refused unless the card says heatmap: none", async () => {
    await expectRefused(withoutOutputs("no-cam", ["gradients", "features"]), "unsupported_head", /heatmap: "none"/);
    const dir = withoutOutputs("no-cam-declared", ["gradients", "features"], (c) => (c.heatmap = "none"));
    expect((await loadModelDirectory(dir)).gradCam).toBeNull();
  });

  it("a stale demo model (no `gradients`) is rebuilt when the engine starts on it", async () => {
    const dir = withoutOutputs("stale-demo", ["gradients"]);
    const { createEngine } = await import("./inference.server");
    const engine = await createEngine(dir, { buildDemoIfMissing: true, threads: 1 });
    try {
      expect(engine.gradCam).toEqual({ channels: 1024, height: 7, width: 7 });
      expect(engine.model.sha256).toBe(JSON.parse(readFileSync(path.join(demo, "card.json"), "utf8")).sha256);
    } finally {
      await engine.close();
    }
  });
});
