import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  DicomParseError,
  extractDicomMetadata,
  PIXEL_LIMIT,
  sniff,
  withinPixelLimit,
  type DicomMetadata,
} from "./sniff.server";

// ---------- hand-made test files ----------

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

function png(width: number, height: number, bitDepth: number, colorType: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

function jpegSegment(marker: number, payload: Buffer): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([head, payload]);
}

function jpeg(width: number, height: number, withSof = true): Buffer {
  const app0 = jpegSegment(0xe0, Buffer.from("JFIF\0\x01\x01\0\0\x01\0\x01\0\0", "latin1"));
  const dht = jpegSegment(0xc4, Buffer.alloc(20)); // DHT shares the SOF marker range and must be skipped
  const sofPayload = Buffer.alloc(15);
  sofPayload[0] = 8;
  sofPayload.writeUInt16BE(height, 1);
  sofPayload.writeUInt16BE(width, 3);
  sofPayload[5] = 3;
  const sof = jpegSegment(0xc2, sofPayload); // progressive
  const sos = jpegSegment(0xda, Buffer.alloc(10));
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    app0,
    dht,
    ...(withSof ? [sof] : []),
    sos,
    Buffer.from([0xff, 0xd9]),
  ]);
}

/** Values of VR OB, OW, OF, SQ, UT, UN carry a 4-byte length after 2 reserved bytes (PS3.5 7.1.2). */
const LONG_VRS = new Set(["OB", "OW", "OF", "SQ", "UT", "UN"]);

function pad(value: Buffer, vr: string): Buffer {
  if (value.length % 2 === 0) return value;
  return Buffer.concat([value, Buffer.from([vr === "UI" ? 0 : 0x20])]);
}

function explicitElement(group: number, element: number, vr: string, raw: Buffer | string): Buffer {
  const value = pad(typeof raw === "string" ? Buffer.from(raw, "latin1") : raw, vr);
  const long = LONG_VRS.has(vr);
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(element, 2);
  head.write(vr, 4, "latin1");
  if (long) head.writeUInt32LE(value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

function implicitElement(group: number, element: number, raw: Buffer | string, vr = "CS"): Buffer {
  const value = pad(typeof raw === "string" ? Buffer.from(raw, "latin1") : raw, vr);
  const head = Buffer.alloc(8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(element, 2);
  head.writeUInt32LE(value.length, 4);
  return Buffer.concat([head, value]);
}

const us = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

const EXPLICIT_LE = "1.2.840.10008.1.2.1";
const IMPLICIT_LE = "1.2.840.10008.1.2";

/** 128-byte preamble, "DICM", file meta group (always explicit VR little endian), then the data set. */
function dicomFile(transferSyntax: string, dataSet: Buffer): Buffer {
  const meta = Buffer.concat([
    explicitElement(0x0002, 0x0001, "OB", Buffer.from([0, 1])),
    explicitElement(0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.1.2"), // digital mammography, for presentation
    explicitElement(0x0002, 0x0003, "UI", "1.2.826.0.1.3680043.2.1125.1.1"),
    explicitElement(0x0002, 0x0010, "UI", transferSyntax),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(meta.length);
  return Buffer.concat([
    Buffer.alloc(128),
    Buffer.from("DICM", "latin1"),
    explicitElement(0x0002, 0x0000, "UL", groupLength),
    meta,
    dataSet,
  ]);
}

const PATIENT_NAME = "DOE^JANE";
const PATIENT_ID = "PID-0042-SECRET";
const BIRTH_DATE = "19610203";

function mammogram(): Buffer {
  return dicomFile(
    EXPLICIT_LE,
    Buffer.concat([
      explicitElement(0x0008, 0x0020, "DA", "20260115"),
      explicitElement(0x0008, 0x0060, "CS", "MG"),
      explicitElement(0x0010, 0x0010, "PN", PATIENT_NAME),
      explicitElement(0x0010, 0x0020, "LO", PATIENT_ID),
      explicitElement(0x0010, 0x0030, "DA", BIRTH_DATE),
      explicitElement(0x0018, 0x5101, "CS", "MLO"),
      explicitElement(0x0020, 0x0062, "CS", "L"),
      explicitElement(0x0028, 0x0004, "CS", "MONOCHROME2"),
      explicitElement(0x0028, 0x0010, "US", us(4)),
      explicitElement(0x0028, 0x0011, "US", us(3)),
      explicitElement(0x0028, 0x0100, "US", us(16)),
      explicitElement(0x0028, 0x0101, "US", us(12)),
      explicitElement(0x7fe0, 0x0010, "OW", Buffer.alloc(4 * 3 * 2, 0x11)),
    ]),
  );
}

const ALLOWED_KEYS: ReadonlyArray<keyof DicomMetadata> = [
  "modality",
  "viewPosition",
  "laterality",
  "studyDate",
  "rows",
  "columns",
  "bitsStored",
  "photometricInterpretation",
  "transferSyntaxUid",
];

function expectNoPhi(metadata: unknown): void {
  const text = JSON.stringify(metadata);
  expect(text).not.toContain("DOE");
  expect(text).not.toContain(PATIENT_ID);
  expect(text).not.toContain(BIRTH_DATE);
  for (const key of Object.keys(metadata as object)) expect(ALLOWED_KEYS).toContain(key);
}

// ---------- tests ----------

describe("sniff", () => {
  it("recognises an 8-bit greyscale PNG and reads its IHDR", () => {
    expect(sniff(png(640, 480, 8, 0))).toEqual({
      contentType: "image/png",
      width: 640,
      height: 480,
      bitDepth: 8,
      colorType: 0,
    });
  });

  it("recognises a 16-bit greyscale PNG", () => {
    expect(sniff(png(3328, 4096, 16, 0))).toMatchObject({
      contentType: "image/png",
      bitDepth: 16,
      width: 3328,
      height: 4096,
    });
  });

  it("refuses a PNG whose IHDR CRC is wrong or whose depth does not fit its colour type", () => {
    const corrupt = png(10, 10, 8, 0);
    corrupt[20]! ^= 0xff; // inside the width field: the CRC no longer matches
    expect(sniff(corrupt)).toBeNull();
    expect(sniff(png(10, 10, 4, 2))).toBeNull(); // RGB must be 8 or 16 bits
    expect(sniff(png(0, 10, 8, 0))).toBeNull();
    expect(sniff(png(10, 10, 8, 0).subarray(0, 20))).toBeNull();
  });

  it("recognises a JPEG and reads its dimensions from the SOF marker, skipping DHT", () => {
    expect(sniff(jpeg(2048, 1536))).toEqual({ contentType: "image/jpeg", width: 2048, height: 1536 });
  });

  it("recognises a JPEG without dimensions when no SOF precedes the scan or the head ends first", () => {
    expect(sniff(jpeg(10, 10, false))).toEqual({ contentType: "image/jpeg" });
    expect(sniff(jpeg(10, 10).subarray(0, 30))).toEqual({ contentType: "image/jpeg" });
  });

  it("recognises DICOM Part 10 and reads its dimensions from the header", () => {
    const result = sniff(mammogram());
    expect(result).toMatchObject({ contentType: "application/dicom", width: 3, height: 4 });
    expect(result?.contentType === "application/dicom" && result.metadata?.modality).toBe("MG");
    expect(JSON.stringify(result)).not.toContain("DOE");
    if (result?.contentType === "application/dicom") expectNoPhi(result.metadata);
  });

  it("still calls DICOM by its magic when the meta header is unreadable", () => {
    const broken = Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), Buffer.from([0x02, 0x00, 0x10])]);
    expect(sniff(broken)).toEqual({ contentType: "application/dicom", metadata: null });
  });

  it("ignores names and claims: only the bytes count", () => {
    expect(sniff(Buffer.from("GIF89a\x01\x00\x01\x00", "latin1"))).toBeNull();
    expect(sniff(Buffer.from("%PDF-1.7\n"))).toBeNull();
    expect(sniff(Buffer.from("<svg xmlns='http://www.w3.org/2000/svg'/>"))).toBeNull();
    expect(sniff(new Uint8Array(0))).toBeNull();
    expect(sniff(Buffer.from([0xff, 0xd8]))).toBeNull();
    expect(sniff(Buffer.alloc(200))).toBeNull(); // a preamble without DICM
  });

  it("works on a Uint8Array view into a larger buffer", () => {
    const file = png(7, 9, 8, 6);
    const big = new Uint8Array(file.length + 10);
    big.set(file, 10);
    expect(sniff(big.subarray(10))).toMatchObject({ contentType: "image/png", width: 7, height: 9 });
  });
});

describe("extractDicomMetadata", () => {
  it("returns the allow-listed attributes and never the patient's identity", () => {
    const metadata = extractDicomMetadata(mammogram());
    expect(metadata).toEqual({
      transferSyntaxUid: EXPLICIT_LE,
      modality: "MG",
      viewPosition: "MLO",
      laterality: "L",
      studyDate: "20260115",
      rows: 4,
      columns: 3,
      bitsStored: 12,
      photometricInterpretation: "MONOCHROME2",
    });
    expectNoPhi(metadata);
  });

  it("reads what it can from a header cut short (the first bytes of an upload)", () => {
    const file = mammogram();
    const cut = file.indexOf(Buffer.from("MLO")) + 1; // in the middle of the view position value
    const metadata = extractDicomMetadata(file.subarray(0, cut));
    expect(metadata.transferSyntaxUid).toBe(EXPLICIT_LE);
    expect(metadata.modality).toBe("MG");
    expect(metadata.studyDate).toBe("20260115");
    expect(metadata.rows).toBeUndefined();
    expectNoPhi(metadata);
  });

  it("reads an implicit VR little endian data set and falls back to (0020,0060) laterality", () => {
    const file = dicomFile(
      IMPLICIT_LE,
      Buffer.concat([
        implicitElement(0x0008, 0x0060, "MG"),
        implicitElement(0x0010, 0x0010, PATIENT_NAME),
        implicitElement(0x0018, 0x5101, "CC"),
        implicitElement(0x0020, 0x0060, "R"),
        implicitElement(0x0028, 0x0010, us(2048)),
        implicitElement(0x0028, 0x0011, us(1664)),
      ]),
    );
    const metadata = extractDicomMetadata(file);
    expect(metadata).toMatchObject({
      transferSyntaxUid: IMPLICIT_LE,
      modality: "MG",
      viewPosition: "CC",
      laterality: "R",
      rows: 2048,
      columns: 1664,
    });
    expectNoPhi(metadata);
  });

  it("does not inflate a deflated data set (decompression-bomb guard)", () => {
    const file = dicomFile("1.2.840.10008.1.2.1.99", Buffer.alloc(64, 0xab));
    expect(extractDicomMetadata(file)).toEqual({ transferSyntaxUid: "1.2.840.10008.1.2.1.99" });
  });

  it("throws DicomParseError for bytes that are not DICOM Part 10", () => {
    expect(() => extractDicomMetadata(png(1, 1, 8, 0))).toThrow(DicomParseError);
  });
});

describe("pixel limit", () => {
  it("accepts up to PIXEL_LIMIT pixels and refuses more or nonsense", () => {
    expect(PIXEL_LIMIT).toBe(100_000_000);
    expect(withinPixelLimit(10_000, 10_000)).toBe(true);
    expect(withinPixelLimit(10_001, 10_000)).toBe(false);
    expect(withinPixelLimit(65_535, 65_535)).toBe(false);
    expect(withinPixelLimit(0, 10)).toBe(false);
    expect(withinPixelLimit(Number.NaN, 10)).toBe(false);
    expect(withinPixelLimit(1.5, 10)).toBe(false);
  });
});
