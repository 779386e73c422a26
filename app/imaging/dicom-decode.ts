/**
 * DICOM Part 10 → display pixels. Runs inside the decode worker (app/imaging/decode.worker.ts), never on the
 * server's event loop; the codecs are passed in (dcmjs-codecs' WebAssembly, loaded once per worker).
 *
 * Transfer syntaxes:
 * - uncompressed: implicit VR LE, explicit VR LE, explicit VR BE, Deflated Explicit VR LE (inflated with a bound);
 * - RLE Lossless (.5): dcmjs-codecs' decoder (measured 2–3× faster than the former hand-written one:
 *   docs/decisions/2026-11-30-dicom-codecs.md);
 * - JPEG Baseline (.4.50), JPEG Extended 8/12-bit (.4.51), JPEG Lossless (.4.57, .4.70): libjpeg-turbo;
 *   JPEG-LS (.4.80, .4.81): CharLS; JPEG 2000 (.4.90, .4.91): OpenJPEG — all from dcmjs-codecs;
 * - anything else is refused with 422 naming the syntax.
 *
 * Photometric interpretations: MONOCHROME1/2, RGB, YBR_FULL, YBR_FULL_422 (converted to RGB as PS3.3 C.7.6.3.1.2
 * defines), PALETTE COLOR (8- or 16-bit LUT entries). Multi-frame: the FIRST frame is read (frame 1 of N).
 *
 * Grey display values: Bits Stored mask and sign → Rescale Slope/Intercept → VOI: Window Center/Width with the VOI
 * LUT Function (LINEAR as PS3.3 C.11.2.1.2.1, LINEAR_EXACT, SIGMOID), else the first VOI LUT Sequence item, else
 * the range of the pixels (FOR PROCESSING images, raw detector values: the 0.5–99.5 % percentiles, else min–max)
 * → MONOCHROME1 inverted.
 *
 * The pixel budget (rows × columns × samples of the frame decoded) is checked from the header before anything is
 * decompressed.
 */
import { inflateRawSync } from "node:zlib";
import dicomParser from "dicom-parser";
import { ImageError, tooManyPixels, unreadable, unsupported } from "./image-error";

type Codecs = typeof import("dcmjs-codecs");
type CodecMethod = "decodeJpeg" | "decodeJpegLs" | "decodeJpeg2000" | "decodeRle";

const UNCOMPRESSED: Record<string, { littleEndian: boolean }> = {
  "1.2.840.10008.1.2": { littleEndian: true },
  "1.2.840.10008.1.2.1": { littleEndian: true },
  "1.2.840.10008.1.2.2": { littleEndian: false },
  "1.2.840.10008.1.2.1.99": { littleEndian: true },
};
export const DEFLATED = "1.2.840.10008.1.2.1.99";
export const RLE = "1.2.840.10008.1.2.5";

export const CODEC_OF: Record<string, CodecMethod> = {
  "1.2.840.10008.1.2.4.50": "decodeJpeg",
  "1.2.840.10008.1.2.4.51": "decodeJpeg",
  "1.2.840.10008.1.2.4.57": "decodeJpeg",
  "1.2.840.10008.1.2.4.70": "decodeJpeg",
  "1.2.840.10008.1.2.4.80": "decodeJpegLs",
  "1.2.840.10008.1.2.4.81": "decodeJpegLs",
  "1.2.840.10008.1.2.4.90": "decodeJpeg2000",
  "1.2.840.10008.1.2.4.91": "decodeJpeg2000",
};

export const TRANSFER_SYNTAX_NAMES: Record<string, string> = {
  "1.2.840.10008.1.2": "Implicit VR Little Endian",
  "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
  "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
  "1.2.840.10008.1.2.4.50": "JPEG Baseline",
  "1.2.840.10008.1.2.4.51": "JPEG Extended",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless (process 14)",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
  "1.2.840.10008.1.2.4.100": "MPEG2",
  "1.2.840.10008.1.2.4.201": "High-Throughput JPEG 2000 Lossless",
  "1.2.840.10008.1.2.4.203": "High-Throughput JPEG 2000",
  "1.2.840.10008.1.2.5": "RLE Lossless",
  "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
};

/** Transfer syntaxes whose pixels this module decodes. */
export const SUPPORTED_TRANSFER_SYNTAXES: readonly string[] = [...Object.keys(UNCOMPRESSED), RLE, ...Object.keys(CODEC_OF)];

export const PHOTOMETRICS = ["MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR", "YBR_RCT", "YBR_ICT"];

/** Largest inflated data set of a Deflated file: the pixel budget at 16 bits, plus 16 MiB of attributes. */
const inflateLimit = (pixelLimit: number) => pixelLimit * 2 + 16 * 1024 * 1024;

export interface Header {
  ds: dicomParser.DataSet;
  syntax: string;
  rows: number;
  columns: number;
  samples: number;
  frames: number;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
  photometric: string;
  planar: number;
  pixelElement: dicomParser.Element;
  /** The (possibly inflated) bytes the data set indexes into. */
  bytes: Uint8Array;
}

function firstNumber(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const n = Number.parseFloat(value.split("\\")[0]!);
  return Number.isFinite(n) ? n : undefined;
}

const syntaxName = (syntax: string) => TRANSFER_SYNTAX_NAMES[syntax] ?? syntax;

/** Parses the header and checks everything that can be checked before decoding (syntax, photometry, budget). */
export function parseHeader(input: Uint8Array, pixelLimit: number): Header {
  let ds: dicomParser.DataSet;
  let bytes = input;
  try {
    ds = dicomParser.parseDicom(input, {
      inflater: (whole: Uint8Array, position: number) => {
        // dicom-parser would inflate without bound (a few KiB can declare gigabytes): cap the output.
        const inflated = inflateRawSync(whole.subarray(position), { maxOutputLength: inflateLimit(pixelLimit) });
        const out = new Uint8Array(position + inflated.length);
        out.set(whole.subarray(0, position));
        out.set(inflated, position);
        bytes = out;
        return out;
      },
    } as dicomParser.ParseDicomOptions);
  } catch (err) {
    if (err instanceof RangeError) throw unreadable("données DEFLATE trop volumineuses une fois décompressées", "deflated data set too large once inflated");
    const detail = err instanceof Error ? err.message : String((err as { exception?: string }).exception ?? err ?? "");
    throw unreadable(`fichier DICOM tronqué ou corrompu${detail ? ` (${detail})` : ""}`, `truncated or corrupt DICOM file${detail ? ` (${detail})` : ""}`);
  }
  const syntax = (ds.string("x00020010") ?? "1.2.840.10008.1.2").replace(/\0/g, "").trim();
  if (!SUPPORTED_TRANSFER_SYNTAXES.includes(syntax)) {
    const name = TRANSFER_SYNTAX_NAMES[syntax] ?? "inconnue";
    throw new ImageError(
      422,
      "unsupported_transfer_syntax",
      `Syntaxe de transfert DICOM non prise en charge : ${name} (${syntax}).`,
      `Unsupported DICOM transfer syntax: ${TRANSFER_SYNTAX_NAMES[syntax] ?? "unknown"} (${syntax}).`,
    );
  }
  const rows = ds.uint16("x00280010") ?? 0;
  const columns = ds.uint16("x00280011") ?? 0;
  const samples = ds.uint16("x00280002") ?? 1;
  const frames = Math.max(1, Number.parseInt(ds.string("x00280008") ?? "1", 10) || 1);
  const bitsAllocated = ds.uint16("x00280100") ?? 16;
  const bitsStored = ds.uint16("x00280101") ?? bitsAllocated;
  const signed = ds.uint16("x00280103") === 1;
  const photometric = (ds.string("x00280004") ?? (samples === 3 ? "RGB" : "MONOCHROME2")).trim().toUpperCase();
  const planar = ds.uint16("x00280006") ?? 0;
  const pixelElement = ds.elements.x7fe00010;
  if (!rows || !columns || !pixelElement) throw unreadable("dimensions ou pixels DICOM absents", "DICOM dimensions or pixel data missing");
  // The budget, before any pixel is decompressed: one frame is decoded, with all its samples.
  const declared = rows * columns * samples;
  if (declared > pixelLimit) throw tooManyPixels(declared, pixelLimit);
  if (!PHOTOMETRICS.includes(photometric)) throw unsupported(`photométrie DICOM ${photometric}`, `DICOM photometric interpretation ${photometric}`);
  const expectedSamples = photometric.startsWith("MONOCHROME") || photometric === "PALETTE COLOR" ? 1 : 3;
  if (samples !== expectedSamples) throw unreadable(`${samples} échantillons par pixel pour ${photometric}`, `${samples} samples per pixel for ${photometric}`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw unsupported(`${bitsAllocated} bits alloués par pixel`, `${bitsAllocated} bits allocated per pixel`);
  if (bitsStored < 1 || bitsStored > bitsAllocated) throw unreadable(`Bits Stored ${bitsStored} incohérent`, `inconsistent Bits Stored ${bitsStored}`);
  return { ds, syntax, rows, columns, samples, frames, bitsAllocated, bitsStored, signed, photometric, planar, pixelElement, bytes };
}

// ---- frames ---------------------------------------------------------------------------------------------------

/** The first frame's compressed bytes. */
function encapsulatedFrame(h: Header): Uint8Array {
  const el = h.pixelElement;
  if (!el.encapsulatedPixelData || !el.fragments?.length) {
    throw unreadable("données de pixels compressées absentes ou tronquées", "compressed pixel data missing or truncated");
  }
  for (const f of el.fragments) {
    if (f.position + f.length > h.bytes.length) throw unreadable("données de pixels compressées tronquées", "compressed pixel data truncated");
  }
  try {
    if (el.basicOffsetTable?.length) return dicomParser.readEncapsulatedImageFrame(h.ds, el, 0);
    if (h.frames === 1) return dicomParser.readEncapsulatedPixelDataFromFragments(h.ds, el, 0, el.fragments.length);
    if (el.fragments.length === h.frames) return dicomParser.readEncapsulatedPixelDataFromFragments(h.ds, el, 0, 1);
    // Several frames, no offset table, frames split over fragments: a frame ends with its EOI/EOC marker.
    const table = dicomParser.createJPEGBasicOffsetTable(h.ds, el);
    return dicomParser.readEncapsulatedImageFrame(h.ds, el, 0, table);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw unreadable(`données de pixels compressées illisibles (${detail})`, `unreadable compressed pixel data (${detail})`);
  }
}

/**
 * The RLE header (PS3.5 G.5): 64 bytes, the segment count (one per byte of each sample) and increasing offsets
 * inside the frame — checked here, as the WebAssembly decoder trusts it.
 */
function checkRleHeader(frame: Uint8Array, h: Header): Uint8Array {
  if (frame.length < 64) throw unreadable("en-tête RLE tronqué", "RLE header truncated");
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const segments = view.getUint32(0, true);
  const expected = (h.bitsAllocated / 8) * h.samples;
  if (segments !== expected) {
    throw unreadable(`RLE : ${segments} segments pour ${h.samples} × ${h.bitsAllocated} bits`, `RLE: ${segments} segments for ${h.samples} × ${h.bitsAllocated} bits`);
  }
  let previous = 64;
  for (let s = 0; s < segments; s++) {
    const offset = view.getUint32(4 + s * 4, true);
    if (offset < previous || offset >= frame.length) throw unreadable("RLE : table des segments incohérente", "RLE: inconsistent segment table");
    previous = offset;
  }
  return frame;
}

/**
 * A complete JPEG, JPEG-LS or JPEG 2000 code stream ends with the EOI/EOC marker FF D9; writers may pad after it
 * (00 to an even length, or FF fill bytes). Returns the stream cut at its EOI; refuses a stream without one (the
 * WebAssembly decoders spend tens of seconds on a truncated stream before failing).
 */
export function trimToEoi(frame: Uint8Array, name: string): Uint8Array {
  const stop = Math.max(1, frame.length - 64);
  for (let end = frame.length; end > stop; end--) {
    if (frame[end - 2] === 0xff && frame[end - 1] === 0xd9) return end === frame.length ? frame : frame.subarray(0, end);
    const padding = frame[end - 1];
    if (padding !== 0x00 && padding !== 0xff) break; // anything else after the last marker: the stream was cut
  }
  throw unreadable(`flux ${name} tronqué (marqueur de fin absent)`, `${name} stream truncated (no end marker)`);
}

interface Samples {
  /** Interleaved samples, native order: 1 per pixel (grey, palette index) or 3 (R, G, B). */
  words: Uint16Array;
  /** Photometric interpretation of `words` (a codec may have converted YBR to RGB). */
  photometric: string;
}

function toWords(data: Uint8Array, count: number, bytesPerSample: number, littleEndian: boolean): Uint16Array {
  if (data.length < count * bytesPerSample) throw unreadable("données de pixels décodées incomplètes", "decoded pixel data incomplete");
  if (bytesPerSample === 1) return Uint16Array.from(data.subarray(0, count));
  if (!littleEndian) {
    const words = new Uint16Array(count);
    for (let i = 0; i < count; i++) words[i] = (data[i * 2]! << 8) | data[i * 2 + 1]!;
    return words;
  }
  const aligned = data.byteOffset % 2 === 0 ? data : data.slice(0, count * 2);
  return new Uint16Array(aligned.buffer, aligned.byteOffset, count);
}

/** Planar (RRR…GGG…BBB) → interleaved (RGBRGB…). */
function interleave(words: Uint16Array, pixels: number): Uint16Array {
  const out = new Uint16Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    out[i * 3] = words[i]!;
    out[i * 3 + 1] = words[pixels + i]!;
    out[i * 3 + 2] = words[2 * pixels + i]!;
  }
  return out;
}

/** The first frame's samples, whatever the transfer syntax. */
export function frameSamples(h: Header, lib: Codecs | undefined): Samples {
  const pixels = h.rows * h.columns;
  const bytesPerSample = h.bitsAllocated / 8;
  const layout = UNCOMPRESSED[h.syntax];
  if (layout) {
    if (h.photometric === "YBR_FULL_422") return { words: ybr422(h, pixels), photometric: "YBR_FULL" };
    const needed = pixels * h.samples * bytesPerSample;
    const el = h.pixelElement;
    if (el.encapsulatedPixelData || el.dataOffset + needed > h.bytes.length || el.length < needed) {
      throw unreadable("données de pixels tronquées", "pixel data truncated");
    }
    const data = h.bytes.subarray(el.dataOffset, el.dataOffset + needed);
    const words = toWords(data, pixels * h.samples, bytesPerSample, layout.littleEndian);
    return { words: h.samples === 3 && h.planar === 1 ? interleave(words, pixels) : words, photometric: h.photometric };
  }
  const method = h.syntax === RLE ? "decodeRle" : CODEC_OF[h.syntax]!;
  if (!lib) throw new ImageError(503, "codecs_loading", "Décodeurs DICOM en cours de chargement : réessayez.", "DICOM decoders loading: retry.", { "Retry-After": "1" });
  // RLE segments have no end marker (the decoder refuses a segment that runs past its end); JPEG-family streams do.
  const frame = h.syntax === RLE ? checkRleHeader(encapsulatedFrame(h), h) : trimToEoi(encapsulatedFrame(h), syntaxName(h.syntax));
  let decoded: Uint8Array | undefined;
  let photometric = h.photometric;
  try {
    const context = new lib.Context({
      width: h.columns,
      height: h.rows,
      bitsAllocated: h.bitsAllocated,
      bitsStored: h.bitsStored,
      samplesPerPixel: h.samples,
      pixelRepresentation: h.signed ? 1 : 0,
      planarConfiguration: h.planar,
      photometricInterpretation: h.photometric,
      encodedBuffer: frame,
    });
    // libjpeg applies the JPEG colour transform itself (YBR_FULL/YBR_FULL_422 → RGB), as DICOM viewers do.
    const out = method === "decodeJpeg" ? lib.NativeCodecs.decodeJpeg(context, { convertColorspaceToRgb: true }) : lib.NativeCodecs[method](context);
    decoded = out.getDecodedBuffer();
    if (h.samples === 3) photometric = method === "decodeJpeg" ? "RGB" : (out.getPhotometricInterpretation?.() ?? photometric).toUpperCase();
    // RLE colour is stored as full YBR or RGB (PS3.5 G.2 forbids YBR_FULL_422), sample-interleaved once decoded.
    if (method === "decodeRle" && photometric === "YBR_FULL_422") photometric = "YBR_FULL";
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw unreadable(`flux ${syntaxName(h.syntax)} corrompu ou tronqué (${detail})`, `${syntaxName(h.syntax)} stream corrupt or truncated (${detail})`);
  }
  if (!decoded) throw unreadable(`flux ${syntaxName(h.syntax)} : aucune donnée décodée`, `${syntaxName(h.syntax)} stream: nothing decoded`);
  // JPEG 2000's YBR_ICT/YBR_RCT are decoded to RGB by OpenJPEG (multi-component transform).
  if (photometric.startsWith("YBR_ICT") || photometric.startsWith("YBR_RCT")) photometric = "RGB";
  return { words: toWords(decoded, pixels * h.samples, bytesPerSample, true), photometric };
}

/** YBR_FULL_422, uncompressed: Y1 Y2 Cb Cr per pair of pixels (8 bits) → YBR_FULL interleaved. */
function ybr422(h: Header, pixels: number): Uint16Array {
  if (h.bitsAllocated !== 8) throw unsupported("YBR_FULL_422 sur 16 bits", "16-bit YBR_FULL_422");
  const el = h.pixelElement;
  const needed = Math.ceil(pixels / 2) * 4;
  if (el.encapsulatedPixelData || el.dataOffset + needed > h.bytes.length) throw unreadable("données de pixels tronquées", "pixel data truncated");
  const data = h.bytes.subarray(el.dataOffset, el.dataOffset + needed);
  const out = new Uint16Array(pixels * 3);
  for (let p = 0; p < pixels; p += 2) {
    const o = (p / 2) * 4;
    const [y1, y2, cb, cr] = [data[o]!, data[o + 1]!, data[o + 2]!, data[o + 3]!];
    out.set([y1, cb, cr], p * 3);
    if (p + 1 < pixels) out.set([y2, cb, cr], (p + 1) * 3);
  }
  return out;
}

// ---- display ----------------------------------------------------------------------------------------------------

/** The display value in [0, 1] of every possible stored grey word: one table of at most 65,536 entries. */
export function greyTable(h: Header, words: Uint16Array): Float32Array {
  const size = h.bitsAllocated === 8 ? 256 : 65536;
  const mask = h.bitsStored >= 16 ? 0xffff : (1 << h.bitsStored) - 1;
  const signBit = 2 ** (h.bitsStored - 1);
  const slope = firstNumber(h.ds.string("x00281053")) ?? 1;
  const intercept = firstNumber(h.ds.string("x00281052")) ?? 0;
  const modality = new Float64Array(size);
  for (let w = 0; w < size; w++) {
    let v = w & mask;
    if (h.signed && v & signBit) v -= mask + 1;
    modality[w] = v * slope + intercept;
  }
  const table = new Float32Array(size);
  const center = firstNumber(h.ds.string("x00281050"));
  const width = firstNumber(h.ds.string("x00281051"));
  const fn = (h.ds.string("x00281056") ?? "LINEAR").trim().toUpperCase();
  const lut = h.ds.elements.x00283010?.items?.[0]?.dataSet;
  if (center !== undefined && width !== undefined && width >= 1) {
    for (let w = 0; w < size; w++) table[w] = voiFunction(fn, modality[w]!, center, width);
  } else if (lut && lut.elements.x00283002 && lut.elements.x00283006) {
    voiLutSequence(lut, modality, table);
  } else {
    const [low, high] = pixelRange(h, words, modality);
    const span = high - low || 1;
    for (let w = 0; w < size; w++) table[w] = Math.min(1, Math.max(0, (modality[w]! - low) / span));
  }
  if (h.photometric === "MONOCHROME1") for (let w = 0; w < size; w++) table[w] = 1 - table[w]!;
  return table;
}

/** PS3.3 C.11.2.1.2 (LINEAR, LINEAR_EXACT) and C.11.2.1.3.1 (SIGMOID), as a fraction of the output range. */
export function voiFunction(fn: string, x: number, c: number, w: number): number {
  if (fn === "SIGMOID") return 1 / (1 + Math.exp((-4 * (x - c)) / w));
  if (fn === "LINEAR_EXACT") return Math.min(1, Math.max(0, (x - c) / w + 0.5));
  if (w <= 1) return x <= c - 0.5 ? 0 : 1;
  if (x <= c - 0.5 - (w - 1) / 2) return 0;
  if (x > c - 0.5 + (w - 1) / 2) return 1;
  return (x - (c - 0.5)) / (w - 1) + 0.5;
}

/** VOI LUT Sequence item: LUT Descriptor (entries, first mapped value, bits) and LUT Data. */
function voiLutSequence(item: dicomParser.DataSet, modality: Float64Array, table: Float32Array): void {
  const entries = item.uint16("x00283002", 0) || 65536;
  const first = item.elements.x00283002!.vr === "SS" ? item.int16("x00283002", 1)! : (item.uint16("x00283002", 1) ?? 0);
  const bits = item.uint16("x00283002", 2) ?? 16;
  const el = item.elements.x00283006!;
  const eight = bits <= 8 && el.length === entries; // 8-bit entries packed one per byte (allowed for OB)
  const data: number[] = [];
  for (let i = 0; i < entries; i++) data.push(eight ? item.byteArray[el.dataOffset + i]! : (item.uint16("x00283006", i) ?? 0));
  const max = 2 ** bits - 1;
  for (let w = 0; w < table.length; w++) {
    const index = Math.min(entries - 1, Math.max(0, Math.round(modality[w]!) - first));
    table[w] = Math.min(1, data[index]! / max);
  }
}

/** The window of an image that declares none: percentiles for FOR PROCESSING (raw detector values), else min–max. */
function pixelRange(h: Header, words: Uint16Array, modality: Float64Array): [number, number] {
  const histogram = new Uint32Array(modality.length);
  for (let i = 0; i < words.length; i++) histogram[words[i]!]!++;
  const forProcessing = (h.ds.string("x00080068") ?? "").trim().toUpperCase() === "FOR PROCESSING";
  // Sorted by modality value (the slope may be negative, the sign bit reorders words).
  const order = Array.from(modality.keys()).filter((w) => histogram[w]! > 0).sort((a, b) => modality[a]! - modality[b]!);
  if (order.length === 0) return [0, 1];
  if (!forProcessing) return [modality[order[0]!]!, modality[order[order.length - 1]!]!];
  const total = words.length;
  let seen = 0;
  let low = modality[order[0]!]!;
  let high = modality[order[order.length - 1]!]!;
  let lowSet = false;
  for (const w of order) {
    seen += histogram[w]!;
    if (!lowSet && seen >= total * 0.005) {
      low = modality[w]!;
      lowSet = true;
    }
    if (seen >= total * 0.995) {
      high = modality[w]!;
      break;
    }
  }
  return [low, high];
}

/** Interleaved RGB 8-bit from colour samples (RGB, YBR_FULL, PALETTE COLOR). */
export function toRgb8(h: Header, s: Samples): Uint8Array {
  const pixels = h.rows * h.columns;
  const out = new Uint8Array(pixels * 3);
  const w = s.words;
  if (s.photometric === "PALETTE COLOR") {
    const [r, g, b] = (["1", "2", "3"] as const).map((k) => paletteLut(h, k));
    for (let i = 0; i < pixels; i++) {
      out[i * 3] = r!(w[i]!);
      out[i * 3 + 1] = g!(w[i]!);
      out[i * 3 + 2] = b!(w[i]!);
    }
    return out;
  }
  const shift = Math.max(0, h.bitsStored - 8);
  const max = 2 ** Math.min(8, h.bitsStored) - 1;
  const scale = 255 / max;
  if (s.photometric === "YBR_FULL") {
    // PS3.3 C.7.6.3.1.2: full-range YCbCr (ITU-R BT.601 coefficients).
    for (let i = 0; i < pixels; i++) {
      const y = (w[i * 3]! >> shift) * scale;
      const cb = (w[i * 3 + 1]! >> shift) * scale - 128;
      const cr = (w[i * 3 + 2]! >> shift) * scale - 128;
      out[i * 3] = clamp8(y + 1.402 * cr);
      out[i * 3 + 1] = clamp8(y - 0.344136 * cb - 0.714136 * cr);
      out[i * 3 + 2] = clamp8(y + 1.772 * cb);
    }
    return out;
  }
  for (let i = 0; i < pixels * 3; i++) out[i] = clamp8((w[i]! >> shift) * scale);
  return out;
}

const clamp8 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** One colour of a PALETTE COLOR LUT (descriptor 0028,110x and data 0028,120x), as index → 0…255. */
function paletteLut(h: Header, k: "1" | "2" | "3"): (index: number) => number {
  const ds = h.ds;
  const descriptor = ds.elements[`x002811${"0" + k}`];
  const data = ds.elements[`x002812${"0" + k}`];
  if (!descriptor || !data) {
    const segmented = ds.elements[`x002812${"2" + k}`];
    throw unsupported(segmented ? "palette segmentée" : "palette de couleurs absente", segmented ? "segmented palette" : "palette colour LUT missing");
  }
  const entries = ds.uint16(`x002811${"0" + k}`, 0) || 65536;
  const first = ds.uint16(`x002811${"0" + k}`, 1) ?? 0;
  const bits = ds.uint16(`x002811${"0" + k}`, 2) ?? 16;
  const eight = bits === 8 && data.length === entries; // 8-bit entries, one per byte
  const values = new Uint8Array(entries);
  for (let i = 0; i < entries; i++) {
    const v = eight ? ds.byteArray[data.dataOffset + i]! : (ds.uint16(`x002812${"0" + k}`, i) ?? 0);
    values[i] = bits === 8 ? (eight ? v : v & 0xff) : v >> 8;
  }
  return (index) => values[Math.min(entries - 1, Math.max(0, index - first))]!;
}

/** ITU-R BT.601 luma of interleaved RGB 8-bit, scaled to 16 bits (the model's input of a colour image). */
export function luminance16(rgb: Uint8Array): Uint16Array {
  const pixels = rgb.length / 3;
  const out = new Uint16Array(pixels);
  for (let i = 0; i < pixels; i++) out[i] = Math.round((0.299 * rgb[i * 3]! + 0.587 * rgb[i * 3 + 1]! + 0.114 * rgb[i * 3 + 2]!) * 257);
  return out;
}

// One loop per output type: V8 keeps each monomorphic (13 MP in ≈ 20 ms).
export function renderFloat(words: Uint16Array, table: Float32Array): Float32Array {
  const out = new Float32Array(words.length);
  for (let i = 0; i < words.length; i++) out[i] = table[words[i]!]!;
  return out;
}

export function render16(words: Uint16Array, table: Float32Array): Uint16Array {
  const lut = new Uint16Array(table.length);
  for (let w = 0; w < table.length; w++) lut[w] = Math.round(table[w]! * 65535);
  const out = new Uint16Array(words.length);
  for (let i = 0; i < words.length; i++) out[i] = lut[words[i]!]!;
  return out;
}

export function render8(words: Uint16Array, table: Float32Array): Uint8Array {
  const lut = new Uint8Array(table.length);
  for (let w = 0; w < table.length; w++) lut[w] = Math.round(table[w]! * 255);
  const out = new Uint8Array(words.length);
  for (let i = 0; i < words.length; i++) out[i] = lut[words[i]!]!;
  return out;
}

/** A decoded first frame, ready to display: grey (with its display table) or RGB 8-bit. */
export type DecodedFrame =
  | { kind: "grey"; header: Header; words: Uint16Array; table: Float32Array }
  | { kind: "rgb"; header: Header; rgb: Uint8Array };

export function decodeFrame(bytes: Uint8Array, lib: Codecs | undefined, pixelLimit: number): DecodedFrame {
  const header = parseHeader(bytes, pixelLimit);
  const samples = frameSamples(header, lib);
  if (header.samples === 1 && header.photometric !== "PALETTE COLOR") {
    return { kind: "grey", header, words: samples.words, table: greyTable(header, samples.words) };
  }
  return { kind: "rgb", header, rgb: toRgb8(header, samples) };
}

/**
 * {@link render8} written over the words' own buffer (byte i is written after word ⌊i/2⌋ ≤ i was read): the preview
 * of a large image needs no second buffer. The words are unusable afterwards.
 */
export function render8InPlace(words: Uint16Array, table: Float32Array): Uint8Array {
  const lut = new Uint8Array(table.length);
  for (let w = 0; w < table.length; w++) lut[w] = Math.round(table[w]! * 255);
  const out = new Uint8Array(words.buffer, words.byteOffset, words.length);
  for (let i = 0; i < words.length; i++) out[i] = lut[words[i]!]!;
  return out;
}
