/**
 * The files that describe a model directory `models/<name>/`, besides the weights (`model.onnx`):
 *
 * - `classes.json`: output index → label, e.g. `{"0":"Negative","1":"Positive"}`. The order of the probabilities is
 *   always taken from this file, never from anything else (indexes must be exactly 0 … n−1).
 * - `card.json`: the model card — who the model is, how its input is prepared, what it is for, what it was trained
 *   on, whether it is clinically validated, and the SHA-256 of `model.onnx` (a changed file is refused).
 *
 * No server imports here: the schemas may be shared with pages.
 */
import { z } from "zod";

const SHA256 = /^[0-9a-f]{64}$/;

const vector3 = z.tuple([z.number().finite(), z.number().finite(), z.number().finite()]);

export const modelCardSchema = z
  .object({
    /** Identifier of the model, e.g. "densenet121-demo". */
    name: z.string().trim().min(1).max(100),
    /** Free-form version, e.g. "1.0.0-demo". */
    version: z.string().trim().min(1).max(50),
    /** Width = height of the square network input, in pixels. */
    inputSize: z.number().int().min(8).max(4096),
    preprocessing: z
      .object({
        /** Pixel values are first scaled to [0, 1] (the only scaling supported). */
        scale: z.literal("0-1"),
        /** Per-channel mean (R, G, B) subtracted after scaling. */
        mean: vector3,
        /** Per-channel standard deviation (R, G, B) divided by after the mean; all > 0. */
        std: vector3.refine((s) => s.every((v) => v > 0), "std values must be > 0"),
      })
      .strict(),
    /** What the model may (and may not) be used for. */
    intendedUse: z.string().trim().min(1).max(4000),
    /** What it was trained on (data set, population, period). */
    trainingData: z.string().trim().min(1).max(4000),
    /** True only for a model validated for clinical use; demonstration and imported models default to false. */
    clinical: z.boolean(),
    /** SHA-256 of model.onnx, lower-case hex. */
    sha256: z.string().regex(SHA256, "sha256 must be 64 lower-case hexadecimal characters"),
    /** Optional provenance (source file, converter, date). */
    source: z.string().max(2000).optional(),
    /**
     * How readings are explained: "grad-cam" (model.onnx has `features` and `gradients` outputs) or "none" (no
     * convolutional feature map could be identified, e.g. a model imported as ONNX: readings carry no heatmap).
     * Absent means "grad-cam".
     */
    heatmap: z.enum(["grad-cam", "none"]).optional(),
    /** Why, in words, when `heatmap` is "none". */
    heatmapNote: z.string().max(2000).optional(),
    createdAt: z.string().max(100).optional(),
  })
  .strict();

export type ModelCard = z.infer<typeof modelCardSchema>;

/** `classes.json`: `{"0": "Negative", "1": "Positive"}` → ["Negative", "Positive"]. */
export const classesSchema = z
  .record(z.string().regex(/^(0|[1-9][0-9]*)$/, "keys must be output indexes (0, 1, …)"), z.string().trim().min(1).max(100))
  .transform((record, ctx) => {
    const entries = Object.entries(record).map(([k, v]) => [Number(k), v] as const);
    entries.sort((a, b) => a[0] - b[0]);
    if (entries.length < 2) {
      ctx.addIssue({ code: "custom", message: "at least two classes are needed" });
      return z.NEVER;
    }
    for (let i = 0; i < entries.length; i++) {
      if (entries[i]![0] !== i) {
        ctx.addIssue({ code: "custom", message: `indexes must be 0 … ${entries.length - 1} without gaps (index ${i} is missing)` });
        return z.NEVER;
      }
    }
    const labels = entries.map(([, v]) => v);
    if (new Set(labels).size !== labels.length) {
      ctx.addIssue({ code: "custom", message: "labels must be unique" });
      return z.NEVER;
    }
    return labels;
  });

/** The inverse of {@link classesSchema}: ["Negative", "Positive"] → {"0": "Negative", "1": "Positive"}. */
export function classesJson(labels: readonly string[]): Record<string, string> {
  return Object.fromEntries(labels.map((label, i) => [String(i), label]));
}

/** The preprocessing of Keras' DenseNet (`keras.applications.densenet.preprocess_input`, mode "torch"). */
export const KERAS_DENSENET_PREPROCESSING: ModelCard["preprocessing"] = {
  scale: "0-1",
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

/** What the UI and the API say about a model whose card has `clinical: false`. */
export const NON_CLINICAL_NOTICE = "modèle de démonstration — non validé cliniquement";

/** Human-readable summary of a zod error, for ModelError messages. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(racine)"} : ${i.message}`).join(" ; ");
}
