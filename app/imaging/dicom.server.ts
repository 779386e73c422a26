/**
 * DICOM pixel data to a displayable 8-bit grey image: rescale slope/intercept, windowing (Window Center/Width, else
 * the min–max of the pixels), MONOCHROME1 inverted. Uncompressed transfer syntaxes (implicit/explicit VR, little
 * and big endian) are decoded here; a compressed one is refused with its name (decoders arrive with inference).
 */
import dicomParser from "dicom-parser";
import { HttpError } from "../http/errors.server";
import { PIXEL_LIMIT } from "../vault/sniff.server";

const UNCOMPRESSED: Record<string, { littleEndian: boolean }> = {
  "1.2.840.10008.1.2": { littleEndian: true },
  "1.2.840.10008.1.2.1": { littleEndian: true },
  "1.2.840.10008.1.2.2": { littleEndian: false },
};

export const TRANSFER_SYNTAX_NAMES: Record<string, string> = {
  "1.2.840.10008.1.2.4.50": "JPEG Baseline",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless (process 14)",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
  "1.2.840.10008.1.2.5": "RLE Lossless",
  "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
};

export interface GreyImage {
  width: number;
  height: number;
  /** One byte per pixel, 0 = black. */
  pixels: Uint8Array;
}

const unreadable = (detail: string) => new HttpError(422, "unreadable", `Image DICOM illisible : ${detail}.`);

function firstNumber(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const n = Number.parseFloat(value.split("\\")[0]!);
  return Number.isFinite(n) ? n : undefined;
}

/** Decodes the first frame of an uncompressed DICOM into 8-bit grey with windowing. */
export function dicomToGrey(bytes: Uint8Array): GreyImage {
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes);
  } catch (err) {
    throw unreadable(err instanceof Error ? err.message : String((err as { exception?: string }).exception ?? "fichier tronqué"));
  }
  const syntax = ds.string("x00020010") ?? "1.2.840.10008.1.2";
  const layout = UNCOMPRESSED[syntax];
  if (!layout) {
    const name = TRANSFER_SYNTAX_NAMES[syntax] ?? syntax;
    throw new HttpError(422, "unsupported_transfer_syntax", `Syntaxe de transfert DICOM non prise en charge pour l'aperçu : ${name} (${syntax}).`);
  }
  const rows = ds.uint16("x00280010");
  const columns = ds.uint16("x00280011");
  const bitsAllocated = ds.uint16("x00280100") ?? 16;
  const samples = ds.uint16("x00280002") ?? 1;
  const signed = ds.uint16("x00280103") === 1;
  const photometric = (ds.string("x00280004") ?? "MONOCHROME2").trim();
  const pixelElement = ds.elements.x7fe00010;
  if (!rows || !columns || !pixelElement) throw unreadable("dimensions ou pixels absents");
  if (rows * columns > PIXEL_LIMIT) throw new HttpError(422, "too_many_pixels", "Image DICOM trop grande.");
  if (samples !== 1 || !photometric.startsWith("MONOCHROME")) throw unreadable(`photométrie ${photometric} non prise en charge`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw unreadable(`${bitsAllocated} bits par pixel non pris en charge`);
  const count = rows * columns;
  const needed = count * (bitsAllocated / 8);
  if (pixelElement.dataOffset + needed > bytes.length || pixelElement.length < needed) throw unreadable("données de pixels tronquées");

  const view = new DataView(bytes.buffer, bytes.byteOffset + pixelElement.dataOffset, needed);
  const slope = firstNumber(ds.string("x00281053")) ?? 1;
  const intercept = firstNumber(ds.string("x00281052")) ?? 0;
  const values = new Float32Array(count);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < count; i++) {
    const raw =
      bitsAllocated === 8
        ? signed
          ? view.getInt8(i)
          : view.getUint8(i)
        : signed
          ? view.getInt16(i * 2, layout.littleEndian)
          : view.getUint16(i * 2, layout.littleEndian);
    const v = raw * slope + intercept;
    values[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const center = firstNumber(ds.string("x00281050"));
  const width = firstNumber(ds.string("x00281051"));
  const [low, high] = center !== undefined && width !== undefined && width > 1 ? [center - width / 2, center + width / 2] : [min, max];
  const span = high - low || 1;
  const invert = photometric === "MONOCHROME1";
  const pixels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const g = Math.round(Math.min(1, Math.max(0, (values[i]! - low) / span)) * 255);
    pixels[i] = invert ? 255 - g : g;
  }
  return { width: columns, height: rows, pixels };
}
