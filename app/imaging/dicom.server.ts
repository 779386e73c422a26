/**
 * DICOM pixel data → display values, through the bounded decode pool (decode-pool.server.ts): never on the event
 * loop. What is decoded and how (transfer syntaxes, photometric interpretations, VOI, frames) is described in
 * dicom-decode.ts, which runs in the workers.
 */
import type { DicomMetadata } from "../vault/sniff.server";
import { decode, decodePoolSettings } from "./decode-pool.server";
import { PHOTOMETRICS, SUPPORTED_TRANSFER_SYNTAXES, TRANSFER_SYNTAX_NAMES } from "./dicom-decode";
import { tooManyPixels } from "./image-error";

export { SUPPORTED_TRANSFER_SYNTAXES, TRANSFER_SYNTAX_NAMES } from "./dicom-decode";
export { unreadable } from "./image-error";

/** Display values at full precision of the FIRST frame: windowed, MONOCHROME1 inverted, 0 = black … 1 = white. */
export interface DicomPixels {
  width: number;
  height: number;
  values: Float32Array;
  transferSyntax: string;
  frames: number;
  colour: boolean;
}

/** Decodes the first frame at full precision (any supported transfer syntax; colour → BT.601 luma). */
export async function decodeDicom(bytes: Uint8Array): Promise<DicomPixels> {
  const r = await decode("values", { bytes });
  return { width: r.width, height: r.height, values: r.values, transferSyntax: r.transferSyntax ?? "", frames: r.frames, colour: r.colour };
}

/** A PNG preview (grey or colour, windowed) of a DICOM, JPEG or PNG image, at most `maxSide` pixels a side. */
export async function renderPng(bytes: Uint8Array, contentType: string, maxSide: number): Promise<Uint8Array<ArrayBuffer>> {
  return (await decode("png", { bytes, contentType, maxSide })).png;
}

/**
 * Why the preview of a stored DICOM cannot be made, known from its recorded header alone (no decryption, no
 * decode): an unsupported transfer syntax or photometric interpretation, or a declaration beyond the pixel
 * budget. The image page shows this reason instead of a broken image; anything found only while decoding (a
 * corrupt stream) is answered by the preview itself, with its reason.
 */
export function previewProblem(meta: DicomMetadata | null | undefined): { code: string; fr: string; en: string } | null {
  if (!meta) return null;
  const syntax = meta.transferSyntaxUid?.replace(/\0/g, "").trim();
  if (syntax && !SUPPORTED_TRANSFER_SYNTAXES.includes(syntax)) {
    const name = TRANSFER_SYNTAX_NAMES[syntax];
    return {
      code: "unsupported_transfer_syntax",
      fr: `Syntaxe de transfert DICOM non prise en charge : ${name ?? "inconnue"} (${syntax}).`,
      en: `Unsupported DICOM transfer syntax: ${name ?? "unknown"} (${syntax}).`,
    };
  }
  const photometric = meta.photometricInterpretation?.trim().toUpperCase();
  if (photometric && !PHOTOMETRICS.includes(photometric)) {
    return { code: "unsupported_image", fr: `Image non prise en charge : photométrie DICOM ${photometric}.`, en: `Unsupported image: DICOM photometric interpretation ${photometric}.` };
  }
  const samples = photometric && !photometric.startsWith("MONOCHROME") && photometric !== "PALETTE COLOR" ? 3 : 1;
  const declared = (meta.rows ?? 0) * (meta.columns ?? 0) * samples;
  const limit = Math.round(decodePoolSettings().pixelLimitMp * 1_000_000);
  if (declared > limit) {
    const e = tooManyPixels(declared, limit);
    return { code: e.code, fr: e.message, en: e.messageEn };
  }
  return null;
}
