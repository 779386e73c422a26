/**
 * The researchers' view: images of patients whose `research` consent is live, pseudonymised. A patient appears as
 * a stable pseudonym (HMAC-SHA-256 of the patient id under PSEUDONYM_SECRET), never a name; images are served
 * re-rendered as PNG without any metadata (no DICOM tags, no EXIF).
 */
import { createHmac } from "node:crypto";
import { and, desc, eq, isNull } from "drizzle-orm";
import { persistentSecret } from "../accounts/secrets.server";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { consents, images } from "../db/schema";
import { renderPng } from "../imaging/dicom.server";

const secret = persistentSecret(config.PSEUDONYM_SECRET, config.DATA_DIR, "pseudonym-secret");

export function pseudonym(patientId: string): string {
  return `P-${createHmac("sha256", secret).update(patientId).digest("hex").slice(0, 10).toUpperCase()}`;
}

export interface ResearchImage {
  imageId: string;
  pseudonym: string;
  contentType: string;
  width: number | null;
  height: number | null;
  modality: string | null;
  viewPosition: string | null;
  laterality: string | null;
  /** Month only: enough for cohorts, less identifying than a day. */
  month: string;
}

export async function researchDataset(): Promise<{
  images: ResearchImage[];
  totals: { patients: number; images: number; byType: Record<string, number>; byView: Record<string, number> };
}> {
  const rows = await db
    .select({
      imageId: images.id,
      patientId: images.patientId,
      contentType: images.contentType,
      width: images.width,
      height: images.height,
      dicom: images.dicom,
      createdAt: images.createdAt,
    })
    .from(images)
    .innerJoin(consents, and(eq(consents.patientId, images.patientId), eq(consents.purpose, "research")))
    .where(and(eq(consents.granted, true), isNull(images.erasedAt)))
    .orderBy(desc(images.createdAt));
  const list: ResearchImage[] = rows.map((r) => ({
    imageId: r.imageId,
    pseudonym: pseudonym(r.patientId),
    contentType: r.contentType,
    width: r.width,
    height: r.height,
    modality: r.dicom?.modality ?? null,
    viewPosition: r.dicom?.viewPosition ?? null,
    laterality: r.dicom?.laterality ?? null,
    month: r.createdAt.toISOString().slice(0, 7),
  }));
  const count = (key: (i: ResearchImage) => string) =>
    list.reduce<Record<string, number>>((acc, i) => ((acc[key(i)] = (acc[key(i)] ?? 0) + 1), acc), {});
  return {
    images: list,
    totals: {
      patients: new Set(list.map((i) => i.pseudonym)).size,
      images: list.length,
      byType: count((i) => i.contentType),
      byView: count((i) => i.viewPosition ?? "—"),
    },
  };
}

/**
 * A de-identified rendering: PNG (windowed grey or colour for DICOM, its first frame), no metadata, at most 1024 px,
 * made in the decode pool. An undecodable image → 422 with the reason; a full pool → 503 with Retry-After.
 */
export async function deidentifiedPng(bytes: Uint8Array, contentType: string): Promise<Uint8Array<ArrayBuffer>> {
  return renderPng(bytes, contentType, 1024);
}
