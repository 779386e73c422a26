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
  /** SOP Instance UID (0008,0018), also the meta header's Media Storage SOP Instance UID. */
  sopInstanceUid?: string;
  /** Modality (0008,0060), default "MG". */
  modality?: string;
  /** Further attributes (patient, study, series, laterality, view…), written in tag order with the rest. */
  attributes?: DicomAttribute[];
}

/** One attribute: a string value (tag as 0xGGGGEEEE), or a sequence of items made of attributes. */
export type DicomAttribute =
  | { tag: number; vr: string; value: string }
  | { tag: number; vr: "SQ"; items: DicomAttribute[][] };

/** Common tags, for {@link DicomAttribute}. */
export const TAG = {
  SpecificCharacterSet: 0x00080005,
  StudyDate: 0x00080020,
  AccessionNumber: 0x00080050,
  PresentationIntentType: 0x00080068,
  CodeValue: 0x00080100,
  CodingSchemeDesignator: 0x00080102,
  CodeMeaning: 0x00080104,
  PatientName: 0x00100010,
  PatientID: 0x00100020,
  IssuerOfPatientID: 0x00100021,
  PatientBirthDate: 0x00100030,
  PatientSex: 0x00100040,
  ViewPosition: 0x00185101,
  StudyInstanceUID: 0x0020000d,
  SeriesInstanceUID: 0x0020000e,
  Laterality: 0x00200060,
  ImageLaterality: 0x00200062,
  ViewCodeSequence: 0x00540220,
} as const;

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
  header(group: number, element: number, vr: string, length: number) {
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
  sequence(group: number, element: number, items: Uint8Array[]) {
    const body = concat(
      items.map((item) => {
        const h = new DataView(new ArrayBuffer(8));
        h.setUint16(0, 0xfffe, this.littleEndian);
        h.setUint16(2, 0xe000, this.littleEndian);
        h.setUint32(4, item.length, this.littleEndian);
        return concat([new Uint8Array(h.buffer), item]);
      }),
    );
    this.header(group, element, "SQ", body.length);
    this.bytes(body);
  }
  attribute(a: DicomAttribute) {
    const group = a.tag >>> 16;
    const element = a.tag & 0xffff;
    if ("items" in a) {
      this.sequence(
        group,
        element,
        a.items.map((item) => {
          const inner = new Writer(this.littleEndian, this.explicit);
          for (const x of [...item].sort((p, q) => p.tag - q.tag)) inner.attribute(x);
          return inner.result();
        }),
      );
    } else this.string(group, element, a.vr, a.value);
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
  const sopInstanceUid = o.sopInstanceUid ?? "2.25.1234567890";
  meta.string(0x0002, 0x0003, "UI", sopInstanceUid);
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
  const attributes = [...(o.attributes ?? [])].sort((a, b) => a.tag - b.tag);
  const upTo = (tag: number) => {
    while (attributes.length && attributes[0]!.tag < tag) w.attribute(attributes.shift()!);
  };
  upTo(0x00080016);
  w.string(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.1.2");
  w.string(0x0008, 0x0018, "UI", sopInstanceUid);
  upTo(0x00080060);
  w.string(0x0008, 0x0060, "CS", o.modality ?? "MG");
  upTo(0x00280002);
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
  upTo(0x7fe00010);

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

/** SNOMED CT codes of CID 4014 for the views the synthetic files carry in ViewCodeSequence. */
const VIEW_SNOMED: Record<string, [string, string]> = {
  CC: ["399162004", "cranio-caudal"],
  MLO: ["399368009", "medio-lateral oblique"],
  ML: ["399260004", "medio-lateral"],
  LM: ["399352003", "latero-medial"],
  XCCL: ["399192008", "cranio-caudal exaggerated laterally"],
};

export interface ScreeningViewOptions {
  patient?: { id?: string; name?: string; birthDate?: string; sex?: string; issuer?: string };
  studyInstanceUid: string;
  seriesInstanceUid?: string;
  studyDate?: string;
  accessionNumber?: string;
  laterality: "R" | "L";
  view: string;
  /** Write the view as ViewCodeSequence only (no ViewPosition), as some modalities do. */
  viewAsCode?: boolean;
  /** Write Laterality (0020,0060) instead of ImageLaterality (0020,0062). */
  seriesLaterality?: boolean;
  presentationIntent?: "FOR PRESENTATION" | "FOR PROCESSING";
}

/** The attributes of one synthetic screening view (patient, study, laterality, view), for {@link writeDicom}. */
export function screeningAttributes(o: ScreeningViewOptions): DicomAttribute[] {
  const out: DicomAttribute[] = [
    { tag: TAG.StudyInstanceUID, vr: "UI", value: o.studyInstanceUid },
    { tag: TAG.SeriesInstanceUID, vr: "UI", value: o.seriesInstanceUid ?? `${o.studyInstanceUid}.1` },
    { tag: o.seriesLaterality ? TAG.Laterality : TAG.ImageLaterality, vr: "CS", value: o.laterality },
    { tag: TAG.PresentationIntentType, vr: "CS", value: o.presentationIntent ?? "FOR PRESENTATION" },
  ];
  if (o.studyDate) out.push({ tag: TAG.StudyDate, vr: "DA", value: o.studyDate });
  if (o.accessionNumber) out.push({ tag: TAG.AccessionNumber, vr: "SH", value: o.accessionNumber });
  const p = o.patient ?? {};
  if (p.name !== undefined) out.push({ tag: TAG.PatientName, vr: "PN", value: p.name });
  if (p.id !== undefined) out.push({ tag: TAG.PatientID, vr: "LO", value: p.id });
  if (p.issuer !== undefined) out.push({ tag: TAG.IssuerOfPatientID, vr: "LO", value: p.issuer });
  if (p.birthDate !== undefined) out.push({ tag: TAG.PatientBirthDate, vr: "DA", value: p.birthDate });
  if (p.sex !== undefined) out.push({ tag: TAG.PatientSex, vr: "CS", value: p.sex });
  const code = VIEW_SNOMED[o.view];
  if (!o.viewAsCode) out.push({ tag: TAG.ViewPosition, vr: "CS", value: o.view });
  if (code) {
    out.push({
      tag: TAG.ViewCodeSequence,
      vr: "SQ",
      items: [
        [
          { tag: TAG.CodeValue, vr: "SH", value: code[0] },
          { tag: TAG.CodingSchemeDesignator, vr: "SH", value: "SCT" },
          { tag: TAG.CodeMeaning, vr: "LO", value: code[1] },
        ],
      ],
    });
  }
  return out;
}
