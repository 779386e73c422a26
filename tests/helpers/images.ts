/**
 * Test images built in memory (never written to disk): JPEG, 8-bit and 16-bit PNG with sharp, and a minimal but
 * valid DICOM Part 10 mammogram (Explicit VR Little Endian) built byte by byte.
 */
import { randomBytes, randomInt } from "node:crypto";
import { crc32 } from "node:zlib";
import sharp from "sharp";

export const MiB = 1024 * 1024;

/** Random-ish pixels so the encoders produce real, non-trivial image data. */
function noise(length: number): Buffer {
  return randomBytes(length);
}

/** A baseline JPEG (RGB). */
export async function jpeg(width = 64, height = 48): Promise<Buffer> {
  return sharp(noise(width * height * 3), { raw: { width, height, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
}

/** An 8-bit RGB PNG. */
export async function png8(width = 64, height = 48): Promise<Buffer> {
  return sharp(noise(width * height * 3), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** A 16-bit greyscale PNG (IHDR bit depth 16, colour type 0), as mammography exports often are. */
export async function png16(width = 64, height = 48): Promise<Buffer> {
  const pixels = new Uint16Array(width * height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 257 + randomInt(4096)) & 0xffff;
  // A Uint16Array input is read as raw `ushort` samples (sharp infers the depth from the typed array).
  const png = await sharp(pixels, { raw: { width, height, channels: 1 } })
    .toColourspace("grey16")
    .png()
    .toBuffer();
  if (png[24] !== 16 || png[25] !== 0) throw new Error(`sharp did not write a 16-bit grey PNG (depth ${png[24]})`);
  return png;
}

/** Inserts a tEXt chunk right after IHDR (the PNG stays valid: the CRC is computed). */
export function withPngText(png: Buffer, keyword: string, text: string): Buffer {
  const ihdrEnd = 8 + 4 + 4 + 13 + 4;
  const data = Buffer.concat([Buffer.from(keyword, "latin1"), Buffer.of(0), Buffer.from(text, "latin1")]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from("tEXt", "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([png.subarray(0, ihdrEnd), length, typeAndData, crc, png.subarray(ihdrEnd)]);
}

/** A valid JPEG followed by `extra` random bytes after its EOI marker (viewers ignore them): a big test image. */
export async function bigJpeg(totalBytes: number): Promise<Buffer> {
  const head = await jpeg(32, 32);
  return Buffer.concat([head, randomBytes(totalBytes - head.length)]);
}

// ---- DICOM Part 10 -----------------------------------------------------------------------------------------------

const LONG_VRS = new Set(["OB", "OW", "OF", "SQ", "UT", "UN"]);

/** One data element, Explicit VR Little Endian, value padded to an even length. */
function element(group: number, elementNumber: number, vr: string, value: Buffer): Buffer {
  const pad = vr === "UI" || vr === "OB" || vr === "OW" ? 0x00 : 0x20;
  const body = value.length % 2 === 0 ? value : Buffer.concat([value, Buffer.of(pad)]);
  const tag = Buffer.alloc(4);
  tag.writeUInt16LE(group, 0);
  tag.writeUInt16LE(elementNumber, 2);
  if (LONG_VRS.has(vr)) {
    const header = Buffer.alloc(8);
    header.write(vr, 0, "latin1");
    header.writeUInt32LE(body.length, 4);
    return Buffer.concat([tag, header, body]);
  }
  const header = Buffer.alloc(4);
  header.write(vr, 0, "latin1");
  header.writeUInt16LE(body.length, 2);
  return Buffer.concat([tag, header, body]);
}

const text = (value: string) => Buffer.from(value, "latin1");
const us = (value: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value);
  return b;
};
const ul = (value: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
};

export const DICOM_TRANSFER_SYNTAX = "1.2.840.10008.1.2.1"; // Explicit VR Little Endian
const MAMMO_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.2"; // Digital Mammography X-Ray Image Storage – For Presentation

export interface DicomOptions {
  patientName?: string;
  patientId?: string;
  rows?: number;
  columns?: number;
  viewPosition?: string;
  laterality?: string;
  /** Study Date (0008,0020), `YYYYMMDD`; absent when not given. */
  studyDate?: string;
}

/** A minimal valid DICOM Part 10 mammogram: 128-byte preamble, "DICM", file meta group, data set, 16-bit pixels. */
export function dicom(options: DicomOptions = {}): Buffer {
  const rows = options.rows ?? 32;
  const columns = options.columns ?? 24;
  const instance = `1.2.826.0.1.3680043.10.999.${randomInt(1_000_000_000)}`;
  const meta = Buffer.concat([
    element(0x0002, 0x0001, "OB", Buffer.of(0x00, 0x01)),
    element(0x0002, 0x0002, "UI", text(MAMMO_SOP_CLASS)),
    element(0x0002, 0x0003, "UI", text(instance)),
    element(0x0002, 0x0010, "UI", text(DICOM_TRANSFER_SYNTAX)),
    element(0x0002, 0x0012, "UI", text("1.2.826.0.1.3680043.10.999")),
  ]);
  const pixels = Buffer.alloc(rows * columns * 2);
  for (let i = 0; i < rows * columns; i++) pixels.writeUInt16LE(randomInt(4096), i * 2); // 12 bits stored
  const dataSet = Buffer.concat([
    element(0x0008, 0x0016, "UI", text(MAMMO_SOP_CLASS)),
    element(0x0008, 0x0018, "UI", text(instance)),
    ...(options.studyDate ? [element(0x0008, 0x0020, "DA", text(options.studyDate))] : []),
    element(0x0008, 0x0060, "CS", text("MG")),
    element(0x0010, 0x0010, "PN", text(options.patientName ?? "DUPONT^CAMILLE")),
    element(0x0010, 0x0020, "LO", text(options.patientId ?? "PID-0001")),
    element(0x0018, 0x5101, "CS", text(options.viewPosition ?? "CC")),
    element(0x0020, 0x0062, "CS", text(options.laterality ?? "L")),
    element(0x0028, 0x0002, "US", us(1)),
    element(0x0028, 0x0004, "CS", text("MONOCHROME2")),
    element(0x0028, 0x0010, "US", us(rows)),
    element(0x0028, 0x0011, "US", us(columns)),
    element(0x0028, 0x0100, "US", us(16)),
    element(0x0028, 0x0101, "US", us(12)),
    element(0x0028, 0x0102, "US", us(11)),
    element(0x0028, 0x0103, "US", us(0)),
    element(0x7fe0, 0x0010, "OW", pixels),
  ]);
  return Buffer.concat([
    Buffer.alloc(128),
    text("DICM"),
    element(0x0002, 0x0000, "UL", ul(meta.length)),
    meta,
    dataSet,
  ]);
}

/** POST /api/v1/patients/:id/images with one file part; the new image id (insists on a 201). */
export async function uploadImage(baseUrl: string, token: string, patientId: string, bytes: Uint8Array, name = "cliche.jpg"): Promise<string> {
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(bytes)]), name);
  const res = await fetch(`${baseUrl}/api/v1/patients/${patientId}/images`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  const body = await res.text();
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${body}`);
  return JSON.parse(body).id;
}
