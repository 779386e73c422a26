/**
 * AI readings of mammograms: decrypt in memory → DenseNet121 (ONNX Runtime) → store the reading with the exact model
 * that produced it, and its Grad-CAM heatmap encrypted like any derived medical data.
 */
import { randomUUID } from "node:crypto";
import { and, asc, desc, eq, gte, isNull } from "drizzle-orm";
import type { Actor } from "../accounts/actor";
import { db } from "../db/db.server";
import { careTeam, consents, predictions } from "../db/schema";
import { HttpError } from "../http/errors.server";
import { analyse, NON_CLINICAL_NOTICE } from "../inference/inference.server";
import type { ListScope } from "../policy/policy.server";
import { REASONS } from "../policy/policy.server";
import { vault } from "../vault/instance.server";
import type { ImageRow } from "../vault/vault.server";

export type PredictionRow = typeof predictions.$inferSelect;

export interface PredictionView {
  id: string;
  imageId: string;
  label: string;
  probability: number;
  probabilities: Record<string, number>;
  model: { name: string; version: string; sha256: string; clinical: boolean };
  /** Said on every reading of a model that is not clinically validated. */
  notice: string | null;
  createdAt: string;
  durationMs: number;
  heatmapUrl: string | null;
}

export function toView(row: PredictionRow): PredictionView {
  return {
    id: row.id,
    imageId: row.imageId,
    label: row.label,
    probability: row.probability,
    probabilities: row.probabilities,
    model: { name: row.modelName, version: row.modelVersion, sha256: row.modelSha256, clinical: row.modelClinical },
    notice: row.modelClinical ? null : NON_CLINICAL_NOTICE,
    createdAt: row.createdAt.toISOString(),
    durationMs: row.durationMs,
    heatmapUrl: row.heatmapKey && row.heatmapWrappedKey ? `/api/v1/predictions/${row.id}/heatmap` : null,
  };
}

/** Runs the model on one image (decrypted in memory only) and records the reading. */
export async function predict(image: ImageRow, by: Actor, onIntegrityFailure: (err: Error) => void): Promise<PredictionView> {
  const bytes = await vault.readImage(image, onIntegrityFailure);
  const result = await analyse(bytes, image.contentType);
  bytes.fill(0);
  const id = randomUUID();
  // A model without Grad-CAM (imported as ONNX, card `heatmap: "none"`) gives a reading without heatmap.
  const heatmapKey = result.heatmapPng ? `heatmaps/${id}` : null;
  const sealed = heatmapKey && result.heatmapPng ? await vault.putSealed(heatmapKey, id, result.heatmapPng) : null;
  try {
    const row = await db.transaction(async (tx) => {
      // The policy allowed the reading when it started; the patient may have withdrawn `ai_analysis` since (a
      // reading takes seconds). Re-checked where the result is committed, with the consent row share-locked: a
      // withdrawal either committed before (the reading is refused, nothing stored) or waits for this insert.
      const [consent] = await tx
        .select({ granted: consents.granted })
        .from(consents)
        .where(and(eq(consents.patientId, image.patientId), eq(consents.purpose, "ai_analysis")))
        .for("share");
      if (!consent?.granted) throw new HttpError(403, "forbidden", REASONS.aiRevoked);
      const [inserted] = await tx
        .insert(predictions)
        .values({
          id,
          imageId: image.id,
          patientId: image.patientId,
          requestedBy: by.id,
          label: result.label,
          probability: result.probability,
          probabilities: result.probabilities,
          modelName: result.model.name,
          modelVersion: result.model.version,
          modelSha256: result.model.sha256,
          modelClinical: result.model.clinical,
          durationMs: result.durationMs,
          heatmapKey,
          heatmapKeyId: sealed?.keyId ?? null,
          heatmapWrappedKey: sealed?.wrappedKey ?? null,
        })
        .returning();
      return inserted!;
    });
    return toView(row);
  } catch (err) {
    if (heatmapKey) await vault.store.delete(heatmapKey).catch(() => undefined);
    throw err;
  }
}

export async function getPrediction(id: string): Promise<PredictionRow | null> {
  const [row] = await db.select().from(predictions).where(eq(predictions.id, id));
  return row ?? null;
}

export async function heatmapOf(row: PredictionRow): Promise<Buffer | null> {
  if (!row.heatmapKey || !row.heatmapKeyId || !row.heatmapWrappedKey) return null;
  return vault.getSealed(row.heatmapKey, row.id, row.heatmapKeyId, row.heatmapWrappedKey);
}

export async function predictionsOfImage(imageId: string): Promise<PredictionView[]> {
  const rows = await db
    .select()
    .from(predictions)
    .where(and(eq(predictions.imageId, imageId), isNull(predictions.erasedAt)))
    .orderBy(desc(predictions.createdAt));
  return rows.map(toView);
}

export async function predictionsOfPatient(patientId: string): Promise<PredictionView[]> {
  const rows = await db
    .select()
    .from(predictions)
    .where(and(eq(predictions.patientId, patientId), isNull(predictions.erasedAt)))
    .orderBy(desc(predictions.createdAt));
  return rows.map(toView);
}

/**
 * The rows statistics are drawn from, in the scope the policy gives (`listScope`): a doctor's care team, or (for
 * researchers) consenting patients only; any other scope sees nothing.
 */
export async function statisticsRows(scope: ListScope, since: Date) {
  const base = db
    .select({
      patientId: predictions.patientId,
      label: predictions.label,
      probability: predictions.probability,
      probabilities: predictions.probabilities,
      modelName: predictions.modelName,
      modelVersion: predictions.modelVersion,
      createdAt: predictions.createdAt,
    })
    .from(predictions);
  if (scope.kind === "careTeam") {
    return base
      .innerJoin(careTeam, and(eq(careTeam.patientId, predictions.patientId), eq(careTeam.doctorId, scope.doctorId)))
      .where(and(isNull(predictions.erasedAt), gte(predictions.createdAt, since)))
      .orderBy(asc(predictions.createdAt));
  }
  if (scope.kind !== "research") return [];
  return base
    .innerJoin(consents, and(eq(consents.patientId, predictions.patientId), eq(consents.purpose, "research")))
    .where(and(eq(consents.granted, true), isNull(predictions.erasedAt), gte(predictions.createdAt, since)))
    .orderBy(asc(predictions.createdAt));
}

export interface Statistics {
  total: number;
  patients: number;
  /** ISO week start (Monday) → count. */
  perWeek: { week: string; count: number }[];
  labels: { label: string; count: number }[];
  /** Ten bins of the probability of the positive class (or of the predicted label when no class is "Positive"). */
  histogram: number[];
  models: { model: string; count: number }[];
}

function weekStart(d: Date): string {
  const day = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  day.setUTCDate(day.getUTCDate() - ((day.getUTCDay() + 6) % 7));
  return day.toISOString().slice(0, 10);
}

export function summarise(rows: Awaited<ReturnType<typeof statisticsRows>>): Statistics {
  const tally = (keys: string[]) => {
    const map = new Map<string, number>();
    for (const k of keys) map.set(k, (map.get(k) ?? 0) + 1);
    return [...map];
  };
  const histogram = Array.from({ length: 10 }, () => 0);
  for (const r of rows) {
    const p = r.probabilities.Positive ?? r.probability;
    histogram[Math.min(9, Math.floor(p * 10))]! += 1;
  }
  return {
    total: rows.length,
    patients: new Set(rows.map((r) => r.patientId)).size,
    perWeek: tally(rows.map((r) => weekStart(r.createdAt))).map(([week, count]) => ({ week, count })),
    labels: tally(rows.map((r) => r.label)).map(([label, count]) => ({ label, count })),
    histogram,
    models: tally(rows.map((r) => `${r.modelName} ${r.modelVersion}`)).map(([model, count]) => ({ model, count })),
  };
}
