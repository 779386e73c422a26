/**
 * DICOM pixel data → display values, through the bounded decode pool (decode-pool.server.ts): never on the event
 * loop. What is decoded and how (transfer syntaxes, photometric interpretations, VOI, frames) is described in
 * dicom-decode.ts, which runs in the workers.
 */
import { decode } from "./decode-pool.server";

export { SUPPORTED_TRANSFER_SYNTAXES, TRANSFER_SYNTAX_NAMES, decodeRle } from "./dicom-decode";
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
