/**
 * What an upload really is, from its first bytes only (never the file name or the client's MIME type), and the
 * few DICOM attributes worth keeping. Patient-identifying DICOM attributes are never read out.
 */
import { constants as zlibConstants, crc32, inflateRawSync } from "node:zlib";
import dicomParser, { type DataSet } from "dicom-parser";
import { PIXEL_LIMIT_MEGAPIXELS } from "./messages";

/** How many leading bytes of an upload {@link sniff} wants to see. */
export const SNIFF_BYTES = 64 * 1024;
/** Largest image (width × height) the platform agrees to decode: a guard against decompression bombs. */
export const PIXEL_LIMIT = PIXEL_LIMIT_MEGAPIXELS * 1_000_000;

export type SupportedContentType = "image/jpeg" | "image/png" | "application/dicom";

export type SniffResult =
  /** Dimensions are present when a SOF marker lies within the sniffed bytes. */
  | { contentType: "image/jpeg"; width?: number; height?: number }
  | { contentType: "image/png"; width: number; height: number; bitDepth: number; colorType: number }
  /** Dimensions and metadata are present when the DICOM header lies within the sniffed bytes. */
  | { contentType: "application/dicom"; width?: number; height?: number; metadata: DicomMetadata | null };

/** Non-identifying DICOM attributes: never the patient's name, id, birth date or any other PHI. */
export interface DicomMetadata {
  /** (0008,0060), e.g. "MG". */
  modality?: string;
  /** (0018,5101), e.g. "CC", "MLO". */
  viewPosition?: string;
  /** (0020,0062) image laterality, else (0020,0060) laterality: "L" / "R". */
  laterality?: string;
  /** (0008,0020), YYYYMMDD. */
  studyDate?: string;
  /** (0028,0010). */
  rows?: number;
  /** (0028,0011). */
  columns?: number;
  /** (0028,0101). */
  bitsStored?: number;
  /** (0028,0004), e.g. "MONOCHROME2". */
  photometricInterpretation?: string;
  /** (0002,0010). */
  transferSyntaxUid?: string;
}

/** The bytes are announced as DICOM Part 10 but their header cannot be read. */
export class DicomParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DicomParseError";
  }
}

const JPEG_MAGIC = [0xff, 0xd8, 0xff];
const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const DICOM_PREAMBLE = 128;
const PIXEL_DATA_TAG = "x7fe00010";
const DEFLATED_TRANSFER_SYNTAX = "1.2.840.10008.1.2.1.99";
/** Valid PNG bit depths for each colour type (PNG spec, IHDR). */
const PNG_DEPTHS: Readonly<Record<number, readonly number[]>> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

/**
 * Identifies JPEG, PNG or DICOM Part 10 from the first bytes of an upload (pass up to {@link SNIFF_BYTES}).
 * Returns null for anything else, including a PNG whose IHDR is malformed.
 */
export function sniff(head: Uint8Array): SniffResult | null {
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (startsWith(bytes, JPEG_MAGIC)) return { contentType: "image/jpeg", ...jpegDimensions(bytes) };
  if (startsWith(bytes, PNG_MAGIC)) return sniffPng(bytes);
  if (isDicomPart10(bytes)) return sniffDicom(bytes);
  return null;
}

/** True when the image's pixel count is positive and at most {@link PIXEL_LIMIT}. */
export function withinPixelLimit(width: number, height: number): boolean {
  return (
    Number.isSafeInteger(width) &&
    Number.isSafeInteger(height) &&
    width > 0 &&
    height > 0 &&
    width * height <= PIXEL_LIMIT
  );
}

/**
 * Reads the allow-listed, non-identifying attributes of a DICOM Part 10 file (or of its first bytes: a truncated
 * header yields what could be read). Parsing stops at the pixel data.
 * @throws DicomParseError when there is no DICM prefix or the file meta information is unreadable.
 */
export function extractDicomMetadata(input: Uint8Array): DicomMetadata {
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const meta = readMetaHeader(bytes);
  const transferSyntaxUid = meta.string("x00020010");
  // A Deflated data set: only its first bytes are inflated (bounded output), enough for the attributes before the pixels.
  const dataSet = readDataSet(transferSyntaxUid?.replace(/\0/g, "").trim() === DEFLATED_TRANSFER_SYNTAX ? inflatedHead(bytes, meta) : bytes);
  const text = (tag: string) => safely(() => dataSet?.string(tag));
  const uint16 = (tag: string) => safely(() => dataSet?.uint16(tag));
  return definedOnly({
    transferSyntaxUid,
    modality: text("x00080060"),
    viewPosition: text("x00185101"),
    laterality: text("x00200062") || text("x00200060"),
    studyDate: text("x00080020"),
    rows: uint16("x00280010"),
    columns: uint16("x00280011"),
    bitsStored: uint16("x00280101"),
    photometricInterpretation: text("x00280004"),
  });
}

function startsWith(bytes: Buffer, magic: readonly number[]): boolean {
  return bytes.length >= magic.length && magic.every((value, i) => bytes[i] === value);
}

function isDicomPart10(bytes: Buffer): boolean {
  return bytes.length >= DICOM_PREAMBLE + 4 && bytes.toString("latin1", DICOM_PREAMBLE, DICOM_PREAMBLE + 4) === "DICM";
}

/** Walks the JPEG marker segments up to the first SOF (start of frame) or SOS (start of scan). */
function jpegDimensions(bytes: Buffer): { width?: number; height?: number } {
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) return {};
    const marker = bytes[pos + 1]!;
    if (marker === 0xff) {
      pos += 1; // fill byte
      continue;
    }
    pos += 2;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue; // markers without a length
    if (marker === 0xd9 || marker === 0xda) return {}; // end of image / start of scan before any SOF
    const length = bytes.readUInt16BE(pos);
    if (length < 2) return {};
    if (isStartOfFrame(marker)) {
      if (pos + 7 > bytes.length) return {};
      return { height: bytes.readUInt16BE(pos + 3), width: bytes.readUInt16BE(pos + 5) };
    }
    pos += length;
  }
  return {};
}

/** SOF0–SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range. */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function sniffPng(bytes: Buffer): SniffResult | null {
  const ihdr = 8; // the IHDR chunk must come first: length (4) "IHDR" (4) data (13) CRC (4)
  if (bytes.length < ihdr + 25) return null;
  if (bytes.readUInt32BE(ihdr) !== 13 || bytes.toString("latin1", ihdr + 4, ihdr + 8) !== "IHDR") return null;
  if (crc32(bytes.subarray(ihdr + 4, ihdr + 21)) !== bytes.readUInt32BE(ihdr + 21)) return null;
  const width = bytes.readUInt32BE(ihdr + 8);
  const height = bytes.readUInt32BE(ihdr + 12);
  const bitDepth = bytes[ihdr + 16]!;
  const colorType = bytes[ihdr + 17]!;
  const [compression, filter, interlace] = [bytes[ihdr + 18], bytes[ihdr + 19], bytes[ihdr + 20]];
  const validDepth = PNG_DEPTHS[colorType]?.includes(bitDepth) ?? false;
  const validSize = width > 0 && height > 0 && width <= 0x7fffffff && height <= 0x7fffffff;
  if (!validDepth || !validSize || compression !== 0 || filter !== 0 || (interlace !== 0 && interlace !== 1))
    return null;
  return { contentType: "image/png", width, height, bitDepth, colorType };
}

function sniffDicom(bytes: Buffer): SniffResult {
  let metadata: DicomMetadata | null;
  try {
    metadata = extractDicomMetadata(bytes);
  } catch {
    metadata = null; // still DICOM by its magic; the caller decides whether unreadable metadata is acceptable
  }
  const dimensions = metadata?.rows && metadata.columns ? { width: metadata.columns, height: metadata.rows } : {};
  return { contentType: "application/dicom", ...dimensions, metadata };
}

function readMetaHeader(bytes: Buffer): DataSet {
  try {
    return dicomParser.readPart10Header(bytes);
  } catch (error) {
    throw new DicomParseError(`unreadable DICOM file meta information: ${describe(error)}`);
  }
}

/** Largest inflated head of a Deflated data set read for its attributes. */
const INFLATED_HEAD_BYTES = 1024 * 1024;

/**
 * The file meta information followed by the first inflated bytes of a Deflated Explicit VR Little Endian data set,
 * rewritten as Explicit VR Little Endian (same encoding, inflated) so that the ordinary parser reads it. A stream cut
 * short (the sniffed head) inflates as far as it goes; the output is capped (a few KiB may inflate to gigabytes).
 */
function inflatedHead(bytes: Buffer, meta: DataSet): Buffer {
  const metaEnd = meta.elements.x00020010 ? metaHeaderEnd(meta) : DICOM_PREAMBLE + 4;
  let inflated: Buffer;
  try {
    inflated = inflateRawSync(bytes.subarray(metaEnd, metaEnd + INFLATED_HEAD_BYTES), {
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
      maxOutputLength: 64 * INFLATED_HEAD_BYTES,
    });
  } catch {
    return bytes.subarray(0, metaEnd);
  }
  const header = Buffer.from(bytes.subarray(0, metaEnd));
  // Transfer Syntax UID value → Explicit VR Little Endian, padded with NUL to the same even length.
  const ts = meta.elements.x00020010!;
  const value = Buffer.alloc(ts.length);
  value.write("1.2.840.10008.1.2.1", "latin1");
  value.copy(header, ts.dataOffset);
  return Buffer.concat([header, inflated.subarray(0, INFLATED_HEAD_BYTES)]);
}

/** Where the file meta information group (0002) ends: after its last element. */
function metaHeaderEnd(meta: DataSet): number {
  let end = DICOM_PREAMBLE + 4;
  for (const el of Object.values(meta.elements)) end = Math.max(end, el.dataOffset + el.length);
  return end;
}

/** The data set up to the pixel data; for a truncated input, the elements parsed before the end. */
function readDataSet(bytes: Buffer): DataSet | undefined {
  try {
    return dicomParser.parseDicom(bytes, { untilTag: PIXEL_DATA_TAG });
  } catch (error) {
    // dicom-parser throws { exception, dataSet } when it fails part-way through the data set
    if (typeof error === "object" && error !== null && "dataSet" in error) {
      return (error as { dataSet: DataSet }).dataSet;
    }
    return undefined;
  }
}

/** An element cut off by the end of a truncated input reads as absent rather than throwing. */
function safely<T>(read: () => T | undefined): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return typeof error === "string" ? error : "unknown error";
}

function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined && v !== "")) as T;
}
