import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import dicomParser from "dicom-parser";
import { afterAll, describe, expect, it } from "vitest";
import { HttpError } from "../http/errors.server";
import sharp from "sharp";
import { configureDecodePool, decodePoolSettings } from "./decode-pool.server";
import { decodeDicom, renderPng } from "./dicom.server";
import { encodeRle, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, RLE_LOSSLESS, writeDicom, type SyntheticDicomOptions } from "./dicom-writer";

const ROWS = 48;
const COLUMNS = 64;

/** A 12-bit pattern with smooth and sharp parts (compressors must be exercised, not flattered). */
function pattern(rows = ROWS, columns = COLUMNS, bits = 12): number[] {
  const max = 2 ** bits - 1;
  const out: number[] = [];
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < columns; x++) out.push(Math.round(((x * 37 + y * 11) % columns) / columns * max * 0.8 + (((x >> 3) + (y >> 3)) % 2) * max * 0.15) % (max + 1));
  return out;
}

const base: SyntheticDicomOptions = { rows: ROWS, columns: COLUMNS, pixels: pattern(), bitsStored: 12, windowCenter: 2048, windowWidth: 4096 };

async function expectHttpError(run: () => unknown, status: number, code: string, message?: RegExp) {
  let caught: unknown;
  try {
    await run();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(HttpError);
  const e = caught as HttpError;
  expect({ status: e.status, code: e.code }).toEqual({ status, code });
  if (message) expect(e.message).toMatch(message);
  return e;
}

describe("uncompressed DICOM", () => {
  it("windows 16-bit pixels at full precision (Window Center/Width)", async () => {
    const image = await decodeDicom(writeDicom(base));
    expect(image).toMatchObject({ width: COLUMNS, height: ROWS, transferSyntax: EXPLICIT_LE });
    const pixels = base.pixels as number[];
    // PS3.3 C.11.2.1.2.1 (LINEAR): (x − (c − 0.5)) / (w − 1) + 0.5, here x / 4095
    for (const i of [0, 1, 100, 1000, ROWS * COLUMNS - 1]) expect(image.values[i]).toBeCloseTo(pixels[i]! / 4095, 6);
  });

  it("reads implicit VR little endian and explicit VR big endian identically", async () => {
    const reference = (await decodeDicom(writeDicom(base))).values;
    for (const transferSyntax of [IMPLICIT_LE, EXPLICIT_BE]) {
      const image = await decodeDicom(writeDicom({ ...base, transferSyntax }));
      expect(image.transferSyntax).toBe(transferSyntax);
      expect(image.values).toEqual(reference);
    }
  });

  it("inverts MONOCHROME1 and falls back to min–max without a window", async () => {
    const pixels = [100, 200, 300, 400];
    const mono2 = await decodeDicom(writeDicom({ rows: 2, columns: 2, pixels }));
    expect(Array.from(mono2.values)).toEqual([0, 1 / 3, 2 / 3, 1].map((v) => Math.fround(v)));
    const mono1 = await decodeDicom(writeDicom({ rows: 2, columns: 2, pixels, photometric: "MONOCHROME1" }));
    expect(Array.from(mono1.values).map((v) => +v.toFixed(6))).toEqual([1, 2 / 3, 1 / 3, 0].map((v) => +v.toFixed(6)));
  });

  it("applies rescale slope/intercept to signed values before windowing", async () => {
    const image = await decodeDicom(
      writeDicom({ rows: 1, columns: 3, pixels: [-1000, 0, 1000], signed: true, rescaleSlope: 2, rescaleIntercept: 100, windowCenter: 100, windowWidth: 4000 }),
    );
    // modality values −1900, 100, 2100 in the window c = 100, w = 4000 (PS3.3 LINEAR)
    expect(image.values[0]).toBe(0);
    expect(image.values[1]).toBeCloseTo(0.5 / 3999 + 0.5, 6);
    expect(image.values[2]).toBe(1);
  });

  it("reads 8-bit pixels and ignores bits above Bits Stored", async () => {
    const eight = await decodeDicom(writeDicom({ rows: 1, columns: 3, pixels: [0, 128, 255], bitsAllocated: 8 }));
    expect(Array.from(eight.values)).toEqual([0, Math.fround(128 / 255), 1]);
    // 0xF000 is overlay garbage above the 12 stored bits
    const masked = await decodeDicom(writeDicom({ rows: 1, columns: 2, pixels: [0xf000 | 0, 0xf000 | 4095], bitsStored: 12 }));
    expect(Array.from(masked.values)).toEqual([0, 1]);
  });

  it("renders the 8-bit PNG preview (windowed grey)", async () => {
    const png = await renderPng(writeDicom({ rows: 1, columns: 3, pixels: [0, 2048, 4095], bitsStored: 12 }), "application/dicom", 1600);
    const meta = await sharp(png).metadata();
    expect({ width: meta.width, height: meta.height, channels: meta.channels }).toEqual({ width: 3, height: 1, channels: 1 }); // a grey PNG
    expect(Array.from(await sharp(png).extractChannel(0).raw().toBuffer())).toEqual([0, 128, 255]);
  });
});

describe("RLE Lossless", () => {
  it("decodes 16-bit and 8-bit frames to the uncompressed values", async () => {
    const reference = (await decodeDicom(writeDicom(base))).values;
    const rle = await decodeDicom(writeDicom({ ...base, transferSyntax: RLE_LOSSLESS }));
    expect(rle.transferSyntax).toBe(RLE_LOSSLESS);
    expect(rle.values).toEqual(reference);
    const pixels = Array.from({ length: 31 * 7 }, (_, i) => (i * 13) % 256);
    const eight = await decodeDicom(writeDicom({ rows: 7, columns: 31, pixels, bitsAllocated: 8, transferSyntax: RLE_LOSSLESS }));
    expect(Array.from(eight.values)).toEqual(pixels.map((v) => Math.fround(v / 255)));
  });

  it("refuses a truncated RLE segment with 422", async () => {
    const frame = encodeRle(base.pixels, 16);
    await expectHttpError(
      () => decodeDicom(writeDicom({ ...base, transferSyntax: RLE_LOSSLESS, fragments: [frame.subarray(0, frame.length - 40)] })),
      422,
      "unreadable",
      /^Image illisible : flux RLE Lossless corrompu ou tronqué/,
    );
  });
});

describe("refusals", () => {
  it("names an unsupported transfer syntax (422)", async () => {
    const mpeg = writeDicom({ ...base, transferSyntax: "1.2.840.10008.1.2.4.100", fragments: [new Uint8Array([0, 0, 1, 0xb3])] });
    const e = await expectHttpError(() => decodeDicom(mpeg), 422, "unsupported_transfer_syntax");
    expect(e.message).toContain("MPEG2 (1.2.840.10008.1.2.4.100)");
    const unknown = writeDicom({ ...base, transferSyntax: "1.2.3.4.5", fragments: [new Uint8Array(4)] });
    expect((await expectHttpError(() => decodeDicom(unknown), 422, "unsupported_transfer_syntax")).message).toContain("1.2.3.4.5");
    await expectHttpError(() => renderPng(mpeg, "application/dicom", 100), 422, "unsupported_transfer_syntax");
  });

  it("refuses truncated or garbage files with a clear French message (422)", async () => {
    const file = writeDicom(base);
    await expectHttpError(() => decodeDicom(file.subarray(0, file.length - 1000)), 422, "unreadable", /^Image illisible : /);
    await expectHttpError(() => decodeDicom(file.subarray(0, 200)), 422, "unreadable", /^Image illisible : /);
    await expectHttpError(() => decodeDicom(new TextEncoder().encode("ceci n'est pas un DICOM".repeat(20))), 422, "unreadable", /^Image illisible : /);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Compressed files made by DCMTK and GDCM from synthetic pixels (CI installs them; skipped elsewhere).

const TOOLS = ["dcmcjpeg", "dcmcjpls", "dcmcrle", "gdcmconv"];
const missing = TOOLS.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
if (missing.length) console.log(`skipped: compressed DICOM tests need ${missing.join(", ")} (apt-get install -y dcmtk libgdcm-tools)`);

describe.skipIf(missing.length > 0)("compressed DICOM made by DCMTK and GDCM", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "nexus-dicom-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const source = path.join(dir, "source.dcm");
  const big = { ...base, rows: 300, columns: 257, pixels: pattern(300, 257) };
  writeFileSync(source, writeDicom(big));

  function compress(name: string, tool: string, args: string[]): Uint8Array {
    const out = path.join(dir, `${name}.dcm`);
    execFileSync(tool, tool === "gdcmconv" ? [...args, source, out] : [...args, source, out], { stdio: "pipe" });
    return new Uint8Array(readFileSync(out));
  }
  const syntaxOf = (bytes: Uint8Array) => dicomParser.parseDicom(bytes, { untilTag: "x00020010" }).string("x00020010")?.replace(/\0/g, "");

  const cases: Array<{ name: string; tool: string; args: string[]; syntax: string; tolerance: number }> = [
    { name: "jpeg-lossless-sv1", tool: "dcmcjpeg", args: ["+e1"], syntax: "1.2.840.10008.1.2.4.70", tolerance: 0 },
    { name: "jpeg-lossless-p14", tool: "dcmcjpeg", args: ["+el", "+sv", "6"], syntax: "1.2.840.10008.1.2.4.57", tolerance: 0 },
    { name: "jpeg-ls-lossless", tool: "dcmcjpls", args: ["+el"], syntax: "1.2.840.10008.1.2.4.80", tolerance: 0 },
    { name: "jpeg-ls-near", tool: "dcmcjpls", args: ["+en"], syntax: "1.2.840.10008.1.2.4.81", tolerance: 2 / 4096 + 1e-6 },
    { name: "rle", tool: "dcmcrle", args: [], syntax: RLE_LOSSLESS, tolerance: 0 },
    { name: "j2k-lossless", tool: "gdcmconv", args: ["--j2k"], syntax: "1.2.840.10008.1.2.4.90", tolerance: 0 },
    { name: "j2k-lossy", tool: "gdcmconv", args: ["--j2k", "--lossy"], syntax: "1.2.840.10008.1.2.4.91", tolerance: 0.02 },
  ];

  it.each(cases)("$name ($syntax) decodes like the uncompressed original", async ({ name, tool, args, syntax, tolerance }) => {
    const reference = (await decodeDicom(writeDicom(big))).values;
    const file = compress(name, tool, args);
    expect(syntaxOf(file)).toBe(syntax);
    const image = await decodeDicom(file);
    expect(image).toMatchObject({ width: 257, height: 300, transferSyntax: syntax });
    if (tolerance === 0) expect(image.values).toEqual(reference);
    else {
      let worst = 0;
      for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(image.values[i]! - reference[i]!));
      expect(worst).toBeLessThanOrEqual(tolerance);
    }
  });

  it("serves compressed files through the 8-bit preview", async () => {
    const file = compress("preview", "dcmcjpls", ["+el"]);
    const pixels = async (png: Uint8Array) => (await sharp(png).raw().toBuffer()).toString("base64");
    expect(await pixels(await renderPng(file, "application/dicom", 1600))).toEqual(await pixels(await renderPng(writeDicom(big), "application/dicom", 1600)));
  });

  it("cuts off a decode that takes too long (worker terminated) and decodes again afterwards", async () => {
    const file = compress("slow", "gdcmconv", ["--j2k"]);
    const before = decodePoolSettings().timeoutMs;
    configureDecodePool({ timeoutMs: 1 });
    try {
      await expectHttpError(() => decodeDicom(file), 422, "decode_timeout", /décodage interrompu après/);
    } finally {
      configureDecodePool({ timeoutMs: before });
    }
    expect((await decodeDicom(file)).values).toEqual((await decodeDicom(writeDicom(big))).values);
  });

  it("refuses a truncated JPEG-LS stream with 422, at once", async () => {
    const file = compress("truncated", "dcmcjpls", ["+el"]);
    // Cut the compressed fragment short but keep the file well-formed around it: rewrite with a shorter fragment.
    const ds = dicomParser.parseDicom(file);
    const fragment = ds.elements.x7fe00010!.fragments![0]!;
    const data = file.subarray(fragment.position, fragment.position + fragment.length);
    const broken = writeDicom({ ...big, transferSyntax: "1.2.840.10008.1.2.4.80", fragments: [data.subarray(0, Math.floor(data.length / 3))] });
    // Refused before the WebAssembly decoder sees it (it would spend tens of seconds on it).
    await expectHttpError(() => decodeDicom(broken), 422, "unreadable", /^Image illisible : flux JPEG-LS Lossless tronqué/);
  });
});
