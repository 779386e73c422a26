/**
 * WADO-RS (PS3.18 10.4): studies, series and instances as `multipart/related` of the byte-identical stored files
 * (decrypted on the fly, one instance after the other, never the whole study in memory), their metadata (DICOM JSON),
 * frames (as stored: native pixels or the encapsulated fragments) and a rendered JPEG/PNG.
 */
import { randomBytes } from "node:crypto";
import dicomParser from "dicom-parser";
import sharp from "sharp";
import { and, eq, isNull, type SQL } from "drizzle-orm";
import { db } from "../db/db.server";
import { images } from "../db/schema";
import { HttpError } from "../http/errors.server";
import { renderPng, TRANSFER_SYNTAX_NAMES } from "../imaging/dicom.server";
import type { Ctx } from "../http/context.server";
import { vault } from "../vault/instance.server";
import { integrityRecorder } from "../vault/serve.server";
import type { ImageRow } from "../vault/vault.server";
import { instanceMetadata, type DicomJson } from "./dicom-json.server";
import { multipartRelated } from "./multipart.server";

export interface Target {
  study: string;
  series?: string;
  instance?: string;
}

/** The live stored instances a target names (no authorisation here: the caller performs it on their patient). */
export async function instancesOf(target: Target): Promise<ImageRow[]> {
  const where: SQL[] = [eq(images.studyInstanceUid, target.study), isNull(images.erasedAt)];
  if (target.series) where.push(eq(images.seriesInstanceUid, target.series));
  if (target.instance) where.push(eq(images.sopInstanceUid, target.instance));
  return db.select().from(images).where(and(...where)).orderBy(images.seriesInstanceUid, images.createdAt);
}

const notAcceptable = (what: string) =>
  new HttpError(406, "not_acceptable", `Format demandé non disponible : ${what}. Nexus rend les instances telles que stockées (transfer-syntax=*).`);

/** Checks an Accept header against `multipart/related; type=<type>` (absent, `*\/*` or a matching entry pass). */
export function acceptMultipart(accept: string | null, type: string): void {
  if (!accept) return;
  const entries = accept.split(",").map((e) => e.trim().toLowerCase());
  const ok = entries.some((e) => {
    if (e.startsWith("*/*")) return true;
    if (!e.startsWith("multipart/related")) return false;
    const t = /type="?([^";]+)"?/.exec(e)?.[1];
    return !t || t === type || t === "*/*";
  });
  if (!ok) throw notAcceptable(accept);
}

async function* streamOf(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (let next = await reader.read(); !next.done; next = await reader.read()) yield next.value;
  } finally {
    reader.releaseLock();
  }
}

function toStream(source: AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await source.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      await source.return(undefined);
    },
  });
}

/** The instances as `multipart/related; type="application/dicom"`; the first is verified before answering. */
export async function retrieve(ctx: Ctx, rows: ImageRow[]): Promise<Response> {
  const boundary = `nexus-${randomBytes(12).toString("hex")}`;
  const first = await vault.openImage(rows[0]!, integrityRecorder(ctx, rows[0]!), { timing: ctx.info.timing });
  const parts = (async function* () {
    yield { contentType: "application/dicom", headers: { "Content-Length": String(rows[0]!.size) }, body: streamOf(first.body) };
    for (const row of rows.slice(1)) {
      const opened = await vault.openImage(row, integrityRecorder(ctx, row), { timing: ctx.info.timing });
      yield { contentType: "application/dicom", headers: { "Content-Length": String(row.size) }, body: streamOf(opened.body) };
    }
  })();
  return new Response(toStream(multipartRelated(boundary, parts)), {
    headers: {
      "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`,
      "Cache-Control": "private, no-store",
    },
  });
}

/** The data set up to the pixel data: the first megabyte normally holds it; otherwise the whole file. */
async function headerBytes(ctx: Ctx, row: ImageRow): Promise<Uint8Array> {
  const { body } = await vault.openImage(row, integrityRecorder(ctx, row), { timing: ctx.info.timing });
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    chunks.push(next.value);
    length += next.value.length;
    if (length >= 1024 * 1024 && Buffer.concat(chunks).includes(Buffer.from([0xe0, 0x7f, 0x10, 0x00]))) break;
  }
  await reader.cancel().catch(() => undefined);
  return Buffer.concat(chunks);
}

export async function metadata(ctx: Ctx, rows: ImageRow[], base: string): Promise<Response> {
  const out: DicomJson[] = [];
  for (const row of rows) {
    const url = `${base}/studies/${row.studyInstanceUid}/series/${row.seriesInstanceUid}/instances/${row.sopInstanceUid}`;
    try {
      out.push(instanceMetadata(await headerBytes(ctx, row), url));
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(422, "unreadable", "En-tête DICOM illisible pour les métadonnées.");
    }
  }
  return Response.json(out, { headers: { "Content-Type": "application/dicom+json", "Cache-Control": "private, no-store" } });
}

/** Frame numbers of a `frames/{list}` path segment (1-based, comma-separated). */
export function frameList(segment: string): number[] {
  const list = segment.split(",").map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new HttpError(400, "invalid", "Numéros d'images (frames) invalides : entiers à partir de 1, séparés par des virgules.");
  }
  return list;
}

/** Frames as stored: native pixel bytes, or an encapsulated frame's compressed bitstream. */
export async function frames(ctx: Ctx, row: ImageRow, numbers: number[]): Promise<Response> {
  const bytes = await vault.readImage(row, integrityRecorder(ctx, row));
  let dataSet: dicomParser.DataSet;
  try {
    dataSet = dicomParser.parseDicom(bytes);
  } catch {
    throw new HttpError(422, "unreadable", "Fichier DICOM illisible : images (frames) introuvables.");
  }
  const pixel = dataSet.elements.x7fe00010;
  if (!pixel) throw new HttpError(404, "no_pixel_data", "Cette instance n'a pas de données de pixels.");
  const count = Number(dataSet.string("x00280008") ?? "1") || 1;
  const syntax = dataSet.string("x00020010") ?? "";
  const out: Uint8Array[] = [];
  for (const n of numbers) {
    if (n > count) throw new HttpError(404, "no_such_frame", `Image (frame) ${n} absente : l'instance en compte ${count}.`);
    if (pixel.encapsulatedPixelData) {
      const fragments = pixel.fragments ?? [];
      const frame =
        count === 1
          ? dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, pixel, 0, fragments.length)
          : dicomParser.readEncapsulatedImageFrame(
              dataSet,
              pixel,
              n - 1,
              pixel.basicOffsetTable?.length ? pixel.basicOffsetTable : dicomParser.createJPEGBasicOffsetTable(dataSet, pixel),
            );
      out.push(frame);
    } else {
      const rows = dataSet.uint16("x00280010") ?? 0;
      const columns = dataSet.uint16("x00280011") ?? 0;
      const samples = dataSet.uint16("x00280002") ?? 1;
      const bits = dataSet.uint16("x00280100") ?? 16;
      const size = Math.ceil((rows * columns * samples * bits) / 8);
      const start = pixel.dataOffset + (n - 1) * size;
      out.push(bytes.subarray(start, Math.min(start + size, pixel.dataOffset + pixel.length)));
    }
  }
  const boundary = `nexus-${randomBytes(12).toString("hex")}`;
  const type = pixel.encapsulatedPixelData ? `application/octet-stream; transfer-syntax=${syntax}` : "application/octet-stream";
  const parts = (async function* () {
    for (const f of out) yield { contentType: type, body: (async function* () { yield f; })() };
  })();
  const chunks: Uint8Array[] = [];
  for await (const c of multipartRelated(boundary, parts)) chunks.push(c);
  return new Response(Buffer.concat(chunks), {
    headers: { "Content-Type": `multipart/related; type="application/octet-stream"; boundary=${boundary}`, "Cache-Control": "private, no-store" },
  });
}

/** A rendered JPEG (default) or PNG of the first frame, windowed; an undecodable transfer syntax says which. */
export async function rendered(ctx: Ctx, row: ImageRow, accept: string | null): Promise<Response> {
  const png = (accept ?? "").includes("image/png") && !(accept ?? "").includes("image/jpeg");
  const bytes = await vault.readImage(row, integrityRecorder(ctx, row));
  let rendering: Uint8Array<ArrayBuffer>;
  try {
    // The one bounded decode pool (pixel budget, queue, time limit), full size: a rendered frame is not a preview.
    rendering = await renderPng(bytes, "application/dicom", Math.max(row.width ?? 0, row.height ?? 0, 1));
  } catch (err) {
    if (err instanceof HttpError && err.status === 503) throw err;
    const syntax = row.dicom?.transferSyntaxUid ?? "?";
    const name = TRANSFER_SYNTAX_NAMES[syntax] ?? syntax;
    const detail = err instanceof HttpError ? err.message : "décodage impossible";
    throw new HttpError(422, "unreadable", `Instance stockée telle quelle mais non affichable (syntaxe de transfert ${name}) : ${detail}`);
  }
  const out = png ? rendering : await sharp(rendering).jpeg({ quality: 90 }).toBuffer();
  return new Response(new Uint8Array(out), {
    headers: { "Content-Type": png ? "image/png" : "image/jpeg", "Cache-Control": "private, no-store" },
  });
}
