/**
 * Writes small synthetic DICOM Part 10 files in memory, for tests and benchmarks only (synthetic pixels, no patient
 * data): grey images in implicit VR little endian, explicit VR little or big endian, or encapsulated (RLE Lossless
 * with {@link encodeRle}, or any pre-compressed frame).
 */

export const IMPLICIT_LE = "1.2.840.10008.1.2";
export const EXPLICIT_LE = "1.2.840.10008.1.2.1";
export const EXPLICIT_BE = "1.2.840.10008.1.2.2";
export const RLE_LOSSLESS = "1.2.840.10008.1.2.5";

export interface SyntheticDicomOptions {
  rows: number;
  columns: number;
  /** Stored values, row-major (signed values allowed when `signed`). */
  pixels: ArrayLike<number>;
  bitsAllocated?: 8 | 16;
  bitsStored?: number;
  signed?: boolean;
  photometric?: "MONOCHROME1" | "MONOCHROME2";
  windowCenter?: number;
  windowWidth?: number;
  rescaleSlope?: number;
  rescaleIntercept?: number;
  /** Default explicit VR little endian. */
  transferSyntax?: string;
  /** For an encapsulated syntax: the compressed frame(s); for RLE they are made from `pixels` when omitted. */
  fragments?: Uint8Array[];
}

class Writer {
  private readonly chunks: Uint8Array[] = [];
  length = 0;
  constructor(
    private readonly littleEndian: boolean,
    private readonly explicit: boolean,
  ) {}
  bytes(b: Uint8Array) {
    this.chunks.push(b);
    this.length += b.length;
  }
  private header(group: number, element: number, vr: string, length: number) {
    const long = ["OB", "OW", "OF", "SQ", "UT", "UN"].includes(vr);
    const h = new DataView(new ArrayBuffer(this.explicit ? (long ? 12 : 8) : 8));
    h.setUint16(0, group, this.littleEndian);
    h.setUint16(2, element, this.littleEndian);
    if (!this.explicit) h.setUint32(4, length, this.littleEndian);
    else {
      h.setUint8(4, vr.charCodeAt(0));
      h.setUint8(5, vr.charCodeAt(1));
      if (long) h.setUint32(8, length, this.littleEndian);
      else h.setUint16(6, length, this.littleEndian);
    }
    this.bytes(new Uint8Array(h.buffer));
  }
  string(group: number, element: number, vr: string, value: string) {
    let s = value;
    if (s.length % 2) s += vr === "UI" ? "\0" : " ";
    this.header(group, element, vr, s.length);
    this.bytes(new TextEncoder().encode(s));
  }
  us(group: number, element: number, value: number) {
    this.header(group, element, "US", 2);
    const b = new DataView(new ArrayBuffer(2));
    b.setUint16(0, value, this.littleEndian);
    this.bytes(new Uint8Array(b.buffer));
  }
  ul(group: number, element: number, value: number) {
    this.header(group, element, "UL", 4);
    const b = new DataView(new ArrayBuffer(4));
    b.setUint32(0, value, this.littleEndian);
    this.bytes(new Uint8Array(b.buffer));
  }
  ob(group: number, element: number, value: Uint8Array, vr = "OB") {
    this.header(group, element, vr, value.length);
    this.bytes(value);
  }
  encapsulated(fragments: Uint8Array[]) {
    this.header(0x7fe0, 0x0010, "OB", 0xffffffff);
    const item = (tag: number, payload: Uint8Array) => {
      const h = new DataView(new ArrayBuffer(8));
      h.setUint16(0, 0xfffe, true);
      h.setUint16(2, tag, true);
      h.setUint32(4, payload.length, true);
      this.bytes(new Uint8Array(h.buffer));
      this.bytes(payload);
    };
    item(0xe000, new Uint8Array(0)); // empty basic offset table
    for (const f of fragments) item(0xe000, f.length % 2 ? concat([f, new Uint8Array(1)]) : f);
    item(0xe0dd, new Uint8Array(0));
  }
  result(): Uint8Array {
    return concat(this.chunks);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** PackBits (DICOM RLE) of one byte plane. */
function packBits(plane: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < plane.length) {
    let run = 1;
    while (i + run < plane.length && run < 128 && plane[i + run] === plane[i]) run++;
    if (run >= 2) {
      out.push(257 - run, plane[i]!);
      i += run;
      continue;
    }
    const start = i;
    while (i < plane.length && i - start < 128 && !(i + 1 < plane.length && plane[i + 1] === plane[i])) i++;
    if (i === start) i++;
    out.push(i - start - 1, ...plane.subarray(start, i));
  }
  if (out.length % 2) out.push(128); // segments are even-length; 128 is a no-op
  return Uint8Array.from(out);
}

/** RLE Lossless frame (PS3.5 Annex G) of grey samples, most significant byte plane first. */
export function encodeRle(pixels: ArrayLike<number>, bitsAllocated: 8 | 16): Uint8Array {
  const bytesPerSample = bitsAllocated / 8;
  const segments: Uint8Array[] = [];
  for (let s = 0; s < bytesPerSample; s++) {
    const shift = 8 * (bytesPerSample - 1 - s);
    const plane = new Uint8Array(pixels.length);
    for (let i = 0; i < pixels.length; i++) plane[i] = (pixels[i]! >> shift) & 0xff;
    segments.push(packBits(plane));
  }
  const header = new DataView(new ArrayBuffer(64));
  header.setUint32(0, segments.length, true);
  let offset = 64;
  segments.forEach((seg, s) => {
    header.setUint32(4 + s * 4, offset, true);
    offset += seg.length;
  });
  return concat([new Uint8Array(header.buffer), ...segments]);
}

/** A complete Part 10 file. */
export function writeDicom(o: SyntheticDicomOptions): Uint8Array {
  const syntax = o.transferSyntax ?? EXPLICIT_LE;
  const bitsAllocated = o.bitsAllocated ?? 16;
  const count = o.rows * o.columns;
  if (o.pixels.length !== count) throw new Error(`${o.pixels.length} pixels for ${o.rows}×${o.columns}`);

  const meta = new Writer(true, true);
  meta.ob(0x0002, 0x0001, Uint8Array.from([0, 1]));
  meta.string(0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.1.2");
  meta.string(0x0002, 0x0003, "UI", "2.25.1234567890");
  meta.string(0x0002, 0x0010, "UI", syntax);
  meta.string(0x0002, 0x0012, "UI", "2.25.42");
  const metaBytes = meta.result();
  const head = new Writer(true, true);
  head.bytes(new Uint8Array(128));
  head.bytes(new TextEncoder().encode("DICM"));
  head.ul(0x0002, 0x0000, metaBytes.length);
  head.bytes(metaBytes);

  const littleEndian = syntax !== EXPLICIT_BE;
  const w = new Writer(littleEndian, syntax !== IMPLICIT_LE);
  w.string(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.1.2");
  w.string(0x0008, 0x0018, "UI", "2.25.1234567890");
  w.string(0x0008, 0x0060, "CS", "MG");
  w.us(0x0028, 0x0002, 1);
  w.string(0x0028, 0x0004, "CS", o.photometric ?? "MONOCHROME2");
  w.us(0x0028, 0x0010, o.rows);
  w.us(0x0028, 0x0011, o.columns);
  w.us(0x0028, 0x0100, bitsAllocated);
  const stored = o.bitsStored ?? bitsAllocated;
  w.us(0x0028, 0x0101, stored);
  w.us(0x0028, 0x0102, stored - 1);
  w.us(0x0028, 0x0103, o.signed ? 1 : 0);
  if (o.windowCenter !== undefined && o.windowWidth !== undefined) {
    w.string(0x0028, 0x1050, "DS", String(o.windowCenter));
    w.string(0x0028, 0x1051, "DS", String(o.windowWidth));
  }
  if (o.rescaleIntercept !== undefined) w.string(0x0028, 0x1052, "DS", String(o.rescaleIntercept));
  if (o.rescaleSlope !== undefined) w.string(0x0028, 0x1053, "DS", String(o.rescaleSlope));

  if (syntax === IMPLICIT_LE || syntax === EXPLICIT_LE || syntax === EXPLICIT_BE) {
    const data = new DataView(new ArrayBuffer(count * (bitsAllocated / 8) + ((count * bitsAllocated) / 8) % 2));
    for (let i = 0; i < count; i++) {
      const v = o.pixels[i]! & (bitsAllocated === 8 ? 0xff : 0xffff);
      if (bitsAllocated === 8) data.setUint8(i, v);
      else data.setUint16(i * 2, v, littleEndian);
    }
    w.ob(0x7fe0, 0x0010, new Uint8Array(data.buffer), bitsAllocated === 8 ? "OB" : "OW");
  } else {
    const fragments = o.fragments ?? (syntax === RLE_LOSSLESS ? [encodeRle(Array.from(o.pixels, (v) => v & 0xffff), bitsAllocated)] : undefined);
    if (!fragments) throw new Error(`fragments needed for ${syntax}`);
    w.encapsulated(fragments);
  }
  return concat([head.result(), w.result()]);
}

/**
 * A hostile RLE Lossless file: it declares rows × columns 16-bit pixels, all zero, in PackBits runs of 128 — about
 * 31 KiB per declared megapixel (100 MP ≈ 3 MB), the decompression bomb the decode pool's pixel budget refuses.
 */
export function rleBombDicom(rows: number, columns: number): Uint8Array {
  const count = rows * columns;
  const runs = Math.ceil(count / 128);
  const segment = new Uint8Array(runs * 2);
  for (let r = 0; r < runs; r++) {
    const length = Math.min(128, count - r * 128);
    segment[r * 2] = 257 - length; // a run of `length` copies of the next byte
  }
  const frame = new Uint8Array(64 + segment.length * 2);
  const view = new DataView(frame.buffer);
  view.setUint32(0, 2, true);
  view.setUint32(4, 64, true);
  view.setUint32(8, 64 + segment.length, true);
  frame.set(segment, 64);
  frame.set(segment, 64 + segment.length);
  return writeDicom({ rows, columns, pixels: { length: count }, bitsStored: 12, transferSyntax: RLE_LOSSLESS, fragments: [frame] });
}
