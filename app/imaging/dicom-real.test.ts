/**
 * DICOM decoding on files written by other tools: pydicom's test corpus (Debian's python3-pydicom), and files
 * converted with DCMTK and GDCM. Where the encoding is lossless, or the same lossy stream, the result must equal an
 * independent decode (DCMTK's dcmdjpeg/dcmdrle/dcmdjpls/dcmconv, GDCM's gdcmconv --raw) decoded as uncompressed.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import dicomParser from "dicom-parser";
import sharp from "sharp";
import { afterAll, describe, expect, it } from "vitest";
import { HttpError } from "../http/errors.server";
import { sniff, SNIFF_BYTES } from "../vault/sniff.server";
import { configureDecodePool, decode, decodePoolSettings } from "./decode-pool.server";
import { voiFunction } from "./dicom-decode";
import { encodeRle, RLE_LOSSLESS, rleBombDicom, writeDicom } from "./dicom-writer";
import { decodeDicom, previewProblem, renderPng } from "./dicom.server";
import { ImageError } from "./image-error";

const CORPUS = [process.env.PYDICOM_TEST_FILES, "/usr/lib/python3/dist-packages/pydicom/data/test_files"].find(
  (d) => d && existsSync(path.join(d, "MR_small.dcm")),
);
const TOOLS = ["dcmdjpeg", "dcmdrle", "dcmdjpls", "dcmconv", "dcmcjpeg", "dcmodify", "gdcmconv"];
const missingTools = TOOLS.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
if (!CORPUS) console.log("skipped: pydicom test files need python3-pydicom (apt-get install -y python3-pydicom, or PYDICOM_TEST_FILES=dir)");
if (missingTools.length) console.log(`skipped: real-file DICOM tests need ${missingTools.join(", ")} (apt-get install -y dcmtk libgdcm-tools)`);
const ready = Boolean(CORPUS) && missingTools.length === 0;

const dir = mkdtempSync(path.join(tmpdir(), "nexus-dicom-real-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const corpus = (name: string) => new Uint8Array(readFileSync(path.join(CORPUS!, name)));
let n = 0;
/** Runs a DCMTK/GDCM tool on `input` (bytes) and returns the output file's bytes. */
function tool(name: string, args: string[], input: Uint8Array): Uint8Array {
  const src = path.join(dir, `in-${++n}.dcm`);
  const out = path.join(dir, `out-${n}.dcm`);
  writeFileSync(src, input);
  execFileSync(name, [...args, src, out], { stdio: "pipe" });
  return new Uint8Array(readFileSync(out));
}
const syntaxOf = (bytes: Uint8Array) => dicomParser.readPart10Header(bytes).string("x00020010")?.replace(/\0/g, "").trim();

async function pngPixels(bytes: Uint8Array) {
  const { data, info } = await sharp(await renderPng(bytes, "application/dicom", 4096)).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), channels: info.channels, width: info.width, height: info.height };
}

function worstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

async function refusal(run: () => Promise<unknown>): Promise<ImageError> {
  const err = await run().then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImageError);
  return err as ImageError;
}

describe.skipIf(!ready)("pydicom's corpus, against independent decodes", () => {
  // [file, the independent decoder that makes its uncompressed twin]
  const grey: Array<[string, string, string[]]> = [
    ["JPGExtended.dcm", "dcmdjpeg", []], // JPEG Extended 12-bit (…4.51)
    ["JPEG-lossy.dcm", "dcmdjpeg", []],
    ["MR_small_RLE.dcm", "dcmdrle", []],
    ["MR_small_jpeg_ls_lossless.dcm", "dcmdjpls", []],
    ["MR_small_jp2klossless.dcm", "gdcmconv", ["--raw"]],
    ["JPEG2000.dcm", "gdcmconv", ["--raw"]],
    ["image_dfl.dcm", "dcmconv", ["+te"]], // Deflated Explicit VR Little Endian
    ["MR_small_bigendian.dcm", "dcmconv", ["+te"]],
    ["MR_small_implicit.dcm", "dcmconv", ["+te"]],
  ];

  it.each(grey)("%s decodes exactly like %s's output", async (file, decoder, args) => {
    const bytes = corpus(file);
    const twin = tool(decoder, args, bytes);
    expect(syntaxOf(twin)).toMatch(/^1\.2\.840\.10008\.1\.2(\.1)?$/);
    const [ours, theirs] = await Promise.all([decodeDicom(bytes), decodeDicom(twin)]);
    expect({ width: ours.width, height: ours.height }).toEqual({ width: theirs.width, height: theirs.height });
    expect(worstDifference(ours.values, theirs.values)).toBe(0);
  });

  it("reads MR_small identically in every encoding pydicom ships", async () => {
    const reference = (await decodeDicom(corpus("MR_small.dcm"))).values;
    for (const f of ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm", "MR_small_implicit.dcm", "MR_small_padded.dcm"]) {
      expect(worstDifference((await decodeDicom(corpus(f))).values, reference), f).toBe(0);
    }
  });

  it("previews colour images in colour: RGB, YBR_FULL, YBR_FULL_422, JPEG (DCMTK, GDCM), RLE, multi-frame", async () => {
    const reference = await pngPixels(corpus("SC_rgb_rle.dcm")); // lossless RGB
    expect(reference.channels).toBe(3);
    const cases: Array<[string, number]> = [
      ["SC_rgb_rle_2frame.dcm", 0], // first frame of two
      ["SC_rgb_rle_16bit.dcm", 0],
      ["SC_rgb_gdcm_KY.dcm", 0],
      ["SC_ybr_full_422_uncompressed.dcm", 6],
      ["SC_rgb_jpeg_dcmtk.dcm", 6], // JPEG Baseline, YBR_FULL
      ["SC_rgb_dcmtk_+eb+cy+n2.dcm", 6], // JPEG Baseline, YBR_FULL_422 (subsampled)
      ["SC_rgb_jpeg_gdcm.dcm", 6],
    ];
    for (const [file, tolerance] of cases) {
      const image = await pngPixels(corpus(file));
      expect(image.channels, file).toBe(3);
      expect(worstDifference(image.data, reference.data), file).toBeLessThanOrEqual(tolerance);
    }
    // The colour preview is really in colour: the first pixel is red.
    expect(Array.from(reference.data.subarray(0, 3))).toEqual([255, 0, 0]);
  });

  it("matches DCMTK's own colour conversion of a JPEG Baseline YBR_FULL file", async () => {
    const bytes = corpus("SC_rgb_jpeg_dcmtk.dcm");
    const twin = tool("dcmdjpeg", ["+cp"], bytes); // decompressed and converted to RGB by DCMTK
    expect(worstDifference((await pngPixels(bytes)).data, (await pngPixels(twin)).data)).toBeLessThanOrEqual(1);
  });

  it("reads colour images for the AI as their BT.601 luma", async () => {
    const image = await decodeDicom(corpus("SC_rgb_rle.dcm"));
    expect(image.colour).toBe(true);
    expect(image.values[0]).toBeCloseTo(0.299, 3); // pure red
  });

  it("says which frame it read", async () => {
    const image = await decodeDicom(corpus("SC_rgb_rle_2frame.dcm"));
    expect(image.frames).toBe(2);
  });

  it("refuses what it does not decode, naming it (422), never a 500", async () => {
    expect((await refusal(() => decodeDicom(corpus("MR_truncated.dcm")))).code).toBe("unreadable");
    expect((await refusal(() => decodeDicom(corpus("rtdose.dcm")))).messageEn).toMatch(/32 bits allocated/);
    expect((await refusal(() => decodeDicom(corpus("rtplan.dcm")))).code).toBe("unreadable");
    expect((await refusal(() => decodeDicom(corpus("liver_1frame.dcm")))).status).toBe(422);
  });

  it("reads a Deflated file's attributes at upload (bounded inflate of the head)", () => {
    const head = corpus("image_dfl.dcm").subarray(0, SNIFF_BYTES);
    expect(sniff(head)).toMatchObject({ contentType: "application/dicom", width: 512, height: 512 });
  });
});

// ---------------------------------------------------------------------------------------------------------------

const ROWS = 240;
const COLUMNS = 200;
/** A 12-bit mammography-like pattern: smooth gradient, texture, a bright spot. */
function mammo(rows = ROWS, columns = COLUMNS, bits = 12): number[] {
  const max = 2 ** bits - 1;
  const out: number[] = [];
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < columns; x++) {
      const v = (x / columns) * 0.6 + 0.2 * Math.sin(y / 7) * Math.cos(x / 5) + ((x - 120) ** 2 + (y - 80) ** 2 < 200 ? 0.3 : 0);
      out.push(Math.max(0, Math.min(max, Math.round((v + 0.2) * max * 0.7))));
    }
  return out;
}
const base = { rows: ROWS, columns: COLUMNS, pixels: mammo(), bitsStored: 12, windowCenter: 2048, windowWidth: 4096 };

describe.skipIf(missingTools.length > 0)("files converted by DCMTK and GDCM", () => {
  it("JPEG Extended 12-bit (dcmcjpeg +ee) decodes exactly like dcmdjpeg's output", async () => {
    const jpeg = tool("dcmcjpeg", ["+ee"], writeDicom(base));
    expect(syntaxOf(jpeg)).toBe("1.2.840.10008.1.2.4.51");
    const twin = tool("dcmdjpeg", [], jpeg);
    expect(worstDifference((await decodeDicom(jpeg)).values, (await decodeDicom(twin)).values)).toBe(0);
  });

  it("JPEG Baseline 8-bit (dcmcjpeg +eb) decodes exactly like dcmdjpeg's output", async () => {
    const eight = writeDicom({ rows: ROWS, columns: COLUMNS, pixels: mammo(ROWS, COLUMNS, 8), bitsAllocated: 8 });
    const jpeg = tool("dcmcjpeg", ["+eb"], eight);
    expect(syntaxOf(jpeg)).toBe("1.2.840.10008.1.2.4.50");
    const twin = tool("dcmdjpeg", [], jpeg);
    expect(worstDifference((await decodeDicom(jpeg)).values, (await decodeDicom(twin)).values)).toBe(0);
  });

  it("Deflated Explicit VR (dcmconv +td) decodes like the original", async () => {
    const original = writeDicom(base);
    const deflated = tool("dcmconv", ["+td"], original);
    expect(syntaxOf(deflated)).toBe("1.2.840.10008.1.2.1.99");
    expect(worstDifference((await decodeDicom(deflated)).values, (await decodeDicom(original)).values)).toBe(0);
  });

  it("accepts JPEG streams padded after EOI (FF D9 FF, FF D9 FF 00)", async () => {
    const jpeg = tool("dcmcjpeg", ["+e1"], writeDicom(base));
    const ds = dicomParser.parseDicom(jpeg);
    const f = ds.elements.x7fe00010!.fragments![0]!;
    let stream = jpeg.subarray(f.position, f.position + f.length);
    while (stream[stream.length - 1] === 0) stream = stream.subarray(0, stream.length - 1); // as written, before padding
    const reference = (await decodeDicom(writeDicom(base))).values;
    for (const padding of [[0xff], [0xff, 0x00], [0x00]]) {
      const padded = new Uint8Array([...stream, ...padding]);
      const file = writeDicom({ ...base, transferSyntax: "1.2.840.10008.1.2.4.70", fragments: [padded] });
      expect(worstDifference((await decodeDicom(file)).values, reference)).toBe(0);
    }
    // A stream cut before its EOI is still refused.
    const cut = writeDicom({ ...base, transferSyntax: "1.2.840.10008.1.2.4.70", fragments: [stream.subarray(0, stream.length - 100)] });
    expect((await refusal(() => decodeDicom(cut))).message).toMatch(/tronqué/);
  });

  it("applies the VOI LUT Function SIGMOID, a VOI LUT Sequence, and percentiles for FOR PROCESSING", async () => {
    const file = writeDicom({ ...base, windowCenter: 2000, windowWidth: 1000 });
    // dcmodify edits in place.
    const src = path.join(dir, "sigmoid.dcm");
    writeFileSync(src, file);
    execFileSync("dcmodify", ["-nb", "-i", "(0028,1056)=SIGMOID", src]);
    const image = await decodeDicom(new Uint8Array(readFileSync(src)));
    for (const i of [0, 500, 10_000, ROWS * COLUMNS - 1]) expect(image.values[i]).toBeCloseTo(voiFunction("SIGMOID", base.pixels[i]!, 2000, 1000), 5);

    // VOI LUT Sequence, no window: a 4096-entry LUT inverting the 12-bit values (16-bit entries).
    const lutSrc = path.join(dir, "lut.dcm");
    writeFileSync(lutSrc, writeDicom({ rows: ROWS, columns: COLUMNS, pixels: base.pixels, bitsStored: 12 }));
    // dcmodify reads OW values as hexadecimal words.
    const data = Array.from({ length: 4096 }, (_, i) => ((4095 - i) * 16).toString(16)).join("\\");
    execFileSync("dcmodify", ["-nb", "-i", "(0028,3010)[0].(0028,3002)=4096\\0\\16", "-i", `(0028,3010)[0].(0028,3006)=${data}`, lutSrc]);
    const lut = await decodeDicom(new Uint8Array(readFileSync(lutSrc)));
    for (const i of [0, 500, 10_000]) expect(lut.values[i]).toBeCloseTo(((4095 - base.pixels[i]!) * 16) / 65535, 5);

    // FOR PROCESSING without a window: 0.5–99.5 % percentiles, so a few hot pixels do not flatten the image.
    const hot = [...base.pixels];
    for (let i = 0; i < 20; i++) hot[i * 37] = 4095;
    const procSrc = path.join(dir, "proc.dcm");
    writeFileSync(procSrc, writeDicom({ rows: ROWS, columns: COLUMNS, pixels: hot, bitsStored: 12 }));
    const plain = await decodeDicom(new Uint8Array(readFileSync(procSrc)));
    execFileSync("dcmodify", ["-nb", "-i", "(0008,0068)=FOR PROCESSING", procSrc]);
    const processing = await decodeDicom(new Uint8Array(readFileSync(procSrc)));
    const spread = (v: Float32Array) => v.reduce((a, x) => a + Math.abs(x - 0.5), 0) / v.length;
    expect(spread(processing.values)).toBeGreaterThan(spread(plain.values));
  });

  it("PALETTE COLOR: previewed in colour through its LUTs", async () => {
    const src = path.join(dir, "palette.dcm");
    writeFileSync(src, writeDicom({ rows: 2, columns: 2, pixels: [0, 1, 2, 255], bitsAllocated: 8 }));
    // dcmodify reads OW values as hexadecimal words.
    const lut = (f: (i: number) => number) => Array.from({ length: 256 }, (_, i) => (f(i) * 257).toString(16)).join("\\");
    execFileSync("dcmodify", [
      "-nb",
      "-m", "(0028,0004)=PALETTE COLOR",
      "-i", "(0028,1101)=256\\0\\16", "-i", "(0028,1102)=256\\0\\16", "-i", "(0028,1103)=256\\0\\16",
      "-i", `(0028,1201)=${lut((i) => (i === 1 ? 255 : 0))}`,
      "-i", `(0028,1202)=${lut((i) => (i === 2 ? 255 : 0))}`,
      "-i", `(0028,1203)=${lut((i) => (i === 255 ? 255 : 0))}`,
      src,
    ]);
    const image = await pngPixels(new Uint8Array(readFileSync(src)));
    expect(image.channels).toBe(3);
    expect(Array.from(image.data)).toEqual([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

const rleBomb = rleBombDicom;

describe("hostile files and the bounded pool", () => {
  it("refuses a 100-megapixel declaration before decoding (422 too_many_pixels, FR/EN reason)", async () => {
    const bomb = rleBomb(10_000, 10_000);
    expect(bomb.length).toBeLessThan(4_000_000);
    const e = await refusal(() => renderPng(bomb, "application/dicom", 1600));
    expect({ status: e.status, code: e.code }).toEqual({ status: 422, code: "too_many_pixels" });
    expect(e.message).toMatch(/^Image trop grande/);
    expect(e.messageEn).toMatch(/DECODE_PIXEL_LIMIT_MP/);
    expect(previewProblem({ rows: 10_000, columns: 10_000, transferSyntaxUid: RLE_LOSSLESS })?.code).toBe("too_many_pixels");
    expect(previewProblem({ rows: 100, columns: 100, transferSyntaxUid: "1.2.840.10008.1.2.4.100" })?.code).toBe("unsupported_transfer_syntax");
  });

  it("decodes a large declaration within budget off the event loop (timers keep firing)", async () => {
    const before = decodePoolSettings();
    configureDecodePool({ pixelLimitMp: 40 });
    try {
      const big = rleBomb(6000, 6000); // 36 MP
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      const png = await renderPng(big, "application/dicom", 256);
      clearInterval(timer);
      expect(png.length).toBeGreaterThan(0);
      expect(ticks).toBeGreaterThan(2); // on the event loop, the decode would have held every tick back
    } finally {
      configureDecodePool(before);
    }
  });

  it("answers 503 decode_busy with Retry-After when the queue is full", async () => {
    const before = decodePoolSettings();
    configureDecodePool({ workers: 1, queueLimit: 1 });
    try {
      const big = rleBomb(3000, 3000);
      const jobs = [0, 1, 2, 3].map(() => renderPng(big, "application/dicom", 64).then(() => null, (e: unknown) => e));
      const results = await Promise.all(jobs);
      const busy = results.filter((r): r is ImageError => r instanceof ImageError && r.code === "decode_busy");
      expect(busy.length).toBe(2);
      expect(busy[0]!.status).toBe(503);
      expect(busy[0]!.headers).toMatchObject({ "Retry-After": "2" });
      expect(results.filter((r) => r === null).length).toBe(2);
    } finally {
      configureDecodePool(before);
    }
  });

  it("refuses wrong lengths, truncated and garbage files with 422 and keeps serving", async () => {
    const good = writeDicom(base);
    const frame = encodeRle(base.pixels, 16);
    const bad = [
      good.subarray(0, good.length - 1000), // pixel data cut short
      writeDicom({ ...base, transferSyntax: RLE_LOSSLESS, fragments: [frame.subarray(0, 40)] }), // RLE header cut
      writeDicom({ ...base, transferSyntax: "1.2.840.10008.1.2.4.90", fragments: [new Uint8Array([0xff, 0x4f, 0xff, 0x51, 1, 2, 3, 4])] }),
      writeDicom({ ...base, transferSyntax: "1.2.840.10008.1.2.4.80", fragments: [new Uint8Array([0xff, 0xd8, 0xff, 0xf7, 0, 0, 0, 0, 0xff, 0xd9])] }),
      new TextEncoder().encode("not a DICOM file at all".repeat(10)),
    ];
    for (const bytes of bad) {
      const e = await refusal(() => renderPng(bytes, "application/dicom", 256));
      expect(e.status).toBe(422);
      expect(e.messageEn.length).toBeGreaterThan(10);
    }
    // A PNG or JPEG that cannot be decoded: 422 too (research renderings answered 500).
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: "#888" } }).png().toBuffer();
    const e = await refusal(() => renderPng(new Uint8Array(png.subarray(0, 40)), "image/png", 256));
    expect({ status: e.status, code: e.code }).toEqual({ status: 422, code: "unreadable" });
    expect((await refusal(() => decode("model", { bytes: new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2]), contentType: "image/jpeg", size: 8 }))).status).toBe(422);
    // …and the pool still decodes.
    expect((await decodeDicom(good)).width).toBe(COLUMNS);
    expect(e).toBeInstanceOf(HttpError);
  });
});
