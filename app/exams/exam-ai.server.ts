/**
 * AI per exam: every readable view of the exam through the model in one batch, one stored prediction per view
 * (heatmap sealed in the vault, model traceability as for a single image), a score per breast (the highest of its
 * views) and for the exam (the highest breast).
 *
 * Decoding runs for all views at once (sharp and the DICOM codecs use the thread pool and workers), then one ONNX
 * Runtime batch of N views (one worker round-trip, one pass of the weights), then Grad-CAM and the heatmap PNGs in
 * parallel. A view is skipped, with its reason, when it is `FOR PROCESSING`, has no laterality/view, or duplicates
 * a view already read.
 */
import { randomUUID } from "node:crypto";
import { and, desc, inArray, isNull } from "drizzle-orm";
import type { Actor } from "../accounts/actor";
import { db } from "../db/db.server";
import { images, predictions } from "../db/schema";
import { HttpError } from "../http/errors.server";
import { gradCam, heatmapOverlay } from "../inference/gradcam.server";
import { getEngine, type InferenceEngine } from "../inference/inference.server";
import { preprocess } from "../inference/preprocess.server";
import { busyError } from "../inference/session.server";
import { toView, type PredictionView } from "../predictions/predictions.server";
import { vault } from "../vault/instance.server";
import type { ImageRow } from "../vault/vault.server";
import type { ExamDetail, ExamImage } from "./exams.server";
import type { Laterality, View } from "./views";

export type SkipReason = "for_processing" | "no_view" | "duplicate" | "unsupported_type";

export const SKIP_MESSAGES: Record<SkipReason, { fr: string; en: string }> = {
  for_processing: {
    fr: "Image « FOR PROCESSING » : conservée, mais le modèle ne lit que les images de présentation.",
    en: "\"FOR PROCESSING\" image: kept, but the model reads images for presentation only.",
  },
  no_view: { fr: "Latéralité ou incidence inconnue.", en: "Unknown laterality or view." },
  duplicate: { fr: "Incidence en double : la première est lue.", en: "Duplicate view: the first one is read." },
  unsupported_type: { fr: "Type d'image non lu par le modèle.", en: "Image type not read by the model." },
};

export interface ExamAiView {
  imageId: string;
  laterality: Laterality;
  view: View;
  /** The probability of the suspicious class (the score), for this view. */
  probability: number;
  predictionId: string;
  heatmapUrl: string | null;
}

export interface ExamAi {
  exam: { probability: number };
  breasts: { R: { probability: number } | null; L: { probability: number } | null };
  views: ExamAiView[];
  skipped: { imageId: string; reason: SkipReason; message: string }[];
  model: { name: string; version: string; sha256: string; clinical: boolean };
  notice: string | null;
  createdAt: string;
}

/** The class whose probability is the score: "Positive", else "Malignant"/"Cancer", else the last class. */
export function scoreLabel(classes: readonly string[]): string {
  return classes.find((c) => /^(positive|malignant|cancer)$/i.test(c)) ?? classes[classes.length - 1]!;
}

const READABLE = new Set(["image/jpeg", "image/png", "application/dicom"]);

/** Which images of the exam the model reads, and why the others are skipped. */
export function readableViews(exam: ExamDetail): { read: (ExamImage & { laterality: Laterality; view: View })[]; skipped: ExamAi["skipped"] } {
  const read: (ExamImage & { laterality: Laterality; view: View })[] = [];
  const skipped: ExamAi["skipped"] = [];
  const skip = (imageId: string, reason: SkipReason) => skipped.push({ imageId, reason, message: SKIP_MESSAGES[reason].fr });
  for (const image of exam.images) {
    if (!READABLE.has(image.contentType)) skip(image.imageId, "unsupported_type");
    else if (image.presentationIntent === "FOR PROCESSING") skip(image.imageId, "for_processing");
    else if (!image.laterality || !image.view) skip(image.imageId, "no_view");
    else if (image.duplicate) skip(image.imageId, "duplicate");
    else read.push(image as ExamImage & { laterality: Laterality; view: View });
  }
  return { read, skipped };
}

/** Breast and exam scores from per-view scores: a breast's is the highest of its views, the exam's the highest breast. */
export function aggregate(views: { laterality: Laterality; probability: number }[]): Pick<ExamAi, "exam" | "breasts"> {
  const breast = (side: Laterality) => {
    const scores = views.filter((v) => v.laterality === side).map((v) => v.probability);
    return scores.length ? { probability: Math.max(...scores) } : null;
  };
  const breasts = { R: breast("R"), L: breast("L") };
  return { exam: { probability: Math.max(breasts.R?.probability ?? 0, breasts.L?.probability ?? 0) }, breasts };
}

const DECODE_CONCURRENCY = 2;

/** `items.map(fn)` with at most `limit` calls in flight, results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface ViewAnalysis {
  label: string;
  probability: number;
  probabilities: Record<string, number>;
  /** The probability of the suspicious class ({@link scoreLabel}). */
  score: number;
  /** Grad-CAM overlay for the suspicious class (null for a model without Grad-CAM outputs). */
  heatmapPng: Buffer | null;
}

/**
 * Decodes every view at once (each buffer wiped once decoded), runs them through the model as one batch, then
 * Grad-CAM and the heatmap PNGs in parallel. Shared by {@link runExamAi} and `npm run bench:exam`.
 */
export async function analyseViews(
  e: InferenceEngine,
  views: { contentType: string; load: () => Promise<Uint8Array> }[],
): Promise<ViewAnalysis[]> {
  // Two decodes in flight: one's JavaScript windowing overlaps the other's resize in libvips' threads, while the
  // peak memory stays at two full-size views (a 12 MP DICOM is ≈ 27 MB of bytes and ≈ 55 MB of float values).
  const prepared = await mapLimit(views, DECODE_CONCURRENCY, async (v) => {
    const bytes = await v.load();
    try {
      return await preprocess(bytes, v.contentType, e.model.card);
    } finally {
      bytes.fill(0);
    }
  });
  const one = prepared[0]!.tensor.length;
  const batch = new Float32Array(one * prepared.length);
  prepared.forEach((p, i) => batch.set(p.tensor, i * one));
  const out = await e.run(batch, prepared.length);
  const classes = e.model.classes;
  const scoreIndex = classes.indexOf(scoreLabel(classes));
  const features = e.gradCam ? out.features : null;
  const gradients = e.gradCam ? out.gradients : null;
  const featureSize = features ? features.length / prepared.length : 0;
  const gradientSize = gradients ? gradients.length / prepared.length : 0;
  return Promise.all(
    prepared.map(async (p, i) => {
      const probs = out.probabilities.subarray(i * classes.length, (i + 1) * classes.length);
      let best = 0;
      for (let k = 1; k < classes.length; k++) if (probs[k]! > probs[best]!) best = k;
      // A model imported without Grad-CAM outputs reads without heatmap.
      const cam =
        features && gradients && e.gradCam
          ? gradCam(
              features.subarray(i * featureSize, (i + 1) * featureSize),
              gradients.subarray(i * gradientSize, (i + 1) * gradientSize),
              e.gradCam,
              scoreIndex,
            )
          : null;
      return {
        label: classes[best]!,
        probability: probs[best]!,
        probabilities: Object.fromEntries(classes.map((c, k) => [c, probs[k]!])),
        score: probs[scoreIndex]!,
        heatmapPng: cam ? await heatmapOverlay(cam, p.width, p.height) : null,
      };
    }),
  );
}

/**
 * Reads every readable view of the exam with the model and stores one prediction per view. 422 `no_readable_view`
 * when none can be read; 503 when the inference queue is full.
 */
export async function runExamAi(
  exam: ExamDetail,
  by: Actor,
  /** The integrity recorder of one image (app/vault/serve.server.ts#integrityRecorder). */
  onIntegrityFailure: (row: ImageRow) => (err: Error) => void,
  engine?: InferenceEngine,
): Promise<ExamAi> {
  const { read, skipped } = readableViews(exam);
  if (read.length === 0) {
    throw new HttpError(422, "no_readable_view", "Aucune incidence de cet examen ne peut être lue par le modèle.");
  }
  const e = engine ?? (await getEngine());
  if (e.pending >= e.maxQueue) throw busyError();
  const rows = await db.select().from(images).where(inArray(images.id, read.map((v) => v.imageId)));
  const byId = new Map(rows.map((r) => [r.id, r]));
  const start = performance.now();
  const analysed = await analyseViews(
    e,
    read.map((v) => {
      const row = byId.get(v.imageId)!;
      return { contentType: v.contentType, load: () => vault.readImage(row, onIntegrityFailure(row)) };
    }),
  );
  const results = await Promise.all(
    analysed.map(async (a) => {
      const id = randomUUID();
      if (!a.heatmapPng) return { ...a, id, heatmapKey: null, sealed: null };
      const heatmapKey = `heatmaps/${id}`;
      const sealed = await vault.putSealed(heatmapKey, id, a.heatmapPng);
      return { ...a, id, heatmapKey, sealed };
    }),
  );
  const durationMs = (performance.now() - start) / analysed.length;
  const { name, version, sha256, clinical } = e.model;
  let stored: PredictionView[];
  try {
    const inserted = await db
      .insert(predictions)
      .values(
        results.map((r, i) => ({
          id: r.id,
          imageId: read[i]!.imageId,
          patientId: exam.patientId,
          requestedBy: by.id,
          label: r.label,
          probability: r.probability,
          probabilities: r.probabilities,
          modelName: name,
          modelVersion: version,
          modelSha256: sha256,
          modelClinical: clinical,
          durationMs,
          heatmapKey: r.heatmapKey,
          heatmapKeyId: r.sealed?.keyId ?? null,
          heatmapWrappedKey: r.sealed?.wrappedKey ?? null,
        })),
      )
      .returning();
    stored = inserted.map(toView);
  } catch (err) {
    for (const r of results) if (r.heatmapKey) await vault.store.delete(r.heatmapKey).catch(() => undefined);
    throw err;
  }
  return summarise(exam, stored, skipped);
}

/** The exam's AI result from its latest prediction per view (null when no view was read yet). */
export async function latestExamAi(exam: ExamDetail): Promise<ExamAi | null> {
  const { read, skipped } = readableViews(exam);
  if (read.length === 0) return null;
  const rows = await db
    .select()
    .from(predictions)
    .where(and(inArray(predictions.imageId, read.map((v) => v.imageId)), isNull(predictions.erasedAt)))
    .orderBy(desc(predictions.createdAt));
  const latest = new Map<string, PredictionView>();
  for (const r of rows) if (!latest.has(r.imageId)) latest.set(r.imageId, toView(r));
  if (latest.size === 0) return null;
  return summarise(exam, [...latest.values()], skipped);
}

function summarise(exam: ExamDetail, list: PredictionView[], skipped: ExamAi["skipped"]): ExamAi {
  const position = new Map(exam.images.map((i) => [i.imageId, i]));
  const views: ExamAiView[] = list.map((p) => {
    const image = position.get(p.imageId)!;
    return {
      imageId: p.imageId,
      laterality: image.laterality!,
      view: image.view!,
      probability: p.probabilities[scoreLabel(Object.keys(p.probabilities))] ?? p.probability,
      predictionId: p.id,
      heatmapUrl: p.heatmapUrl,
    };
  });
  const newest = list.reduce((a, b) => (a.createdAt > b.createdAt ? a : b));
  return {
    ...aggregate(views),
    views,
    skipped,
    model: newest.model,
    notice: newest.notice,
    createdAt: newest.createdAt,
  };
}
