import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { HttpError } from "../http/errors.server";
import { writeDicom } from "../imaging/dicom-writer";
import { KERAS_DENSENET_PREPROCESSING } from "./model-card";
import { preprocess } from "./preprocess.server";

const card = { inputSize: 224, preprocessing: KERAS_DENSENET_PREPROCESSING };
/** A card without normalisation: the tensor holds the [0, 1] pixel values themselves. */
const identity = { inputSize: 224, preprocessing: { scale: "0-1" as const, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] } };
const AREA = 224 * 224;
const { mean, std } = KERAS_DENSENET_PREPROCESSING;

const at = (t: Float32Array, c: number, y: number, x: number) => t[c * AREA + y * 224 + x]!;

async function solid(width: number, height: number, rgb: [number, number, number], format: "jpeg" | "png") {
  const img = sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  return format === "jpeg" ? img.jpeg({ quality: 100, chromaSubsampling: "4:4:4" }).toBuffer() : img.png().toBuffer();
}

/** Grey PNG, 8 or 16 bits, from row-major samples. */
async function greyPng(width: number, height: number, sample: (x: number, y: number) => number, bits: 8 | 16) {
  const data = bits === 16 ? new Uint16Array(width * height) : new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = sample(x, y);
  const img = sharp(data, { raw: { width, height, channels: 1 } });
  return (bits === 16 ? img.toColourspace("grey16") : img).png().toBuffer();
}

async function expectHttp(run: () => Promise<unknown>, status: number, message: RegExp) {
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HttpError);
  expect((err as HttpError).status).toBe(status);
  expect((err as HttpError).message).toMatch(message);
}

describe("JPEG and PNG", () => {
  it("produces [1, 3, 224, 224] normalised with the card's mean/std (ImageNet for Keras' DenseNet)", async () => {
    const rgb: [number, number, number] = [200, 100, 50];
    const { tensor, width, height } = await preprocess(await solid(640, 480, rgb, "jpeg"), "image/jpeg", card);
    expect(tensor).toHaveLength(3 * AREA);
    expect([width, height]).toEqual([640, 480]);
    for (let c = 0; c < 3; c++) {
      for (const [y, x] of [[0, 0], [111, 57], [223, 223]] as const) {
        expect(at(tensor, c, y, x)).toBeCloseTo((rgb[c]! / 255 - mean[c]!) / std[c]!, 1);
      }
    }
    const png = await preprocess(await solid(64, 64, rgb, "png"), "image/png", card);
    for (let c = 0; c < 3; c++) expect(at(png.tensor, c, 5, 5)).toBeCloseTo((rgb[c]! / 255 - mean[c]!) / std[c]!, 5);
  });

  it("takes mean and std from the card, not from constants", async () => {
    const bytes = await solid(32, 32, [255, 0, 51], "png");
    const { tensor } = await preprocess(bytes, "image/png", identity);
    expect([at(tensor, 0, 0, 0), at(tensor, 1, 0, 0), at(tensor, 2, 0, 0)].map((v) => +v.toFixed(5))).toEqual([1, 0, 0.2]);
  });

  it("replicates grey to three channels", async () => {
    const { tensor } = await preprocess(await greyPng(50, 50, () => 128, 8), "image/png", card);
    for (let c = 0; c < 3; c++) expect(at(tensor, c, 10, 10)).toBeCloseTo((128 / 255 - mean[c]!) / std[c]!, 5);
  });

  it("reads 16-bit PNG at 16 bits (0…65535), not as 8-bit bytes", async () => {
    const a = await greyPng(40, 40, () => 0x8000, 16);
    const b = await greyPng(40, 40, () => 0x80ff, 16); // same high byte: identical if read as 8 bits
    expect((await sharp(a).metadata()).depth).toBe("ushort");
    const ta = (await preprocess(a, "image/png", identity)).tensor;
    const tb = (await preprocess(b, "image/png", identity)).tensor;
    expect(at(ta, 0, 100, 100)).toBeCloseTo(0x8000 / 65535, 6);
    expect(at(tb, 1, 100, 100)).toBeCloseTo(0x80ff / 65535, 6);
    expect(at(tb, 2, 7, 7) - at(ta, 2, 7, 7)).toBeCloseTo(0xff / 65535, 6);
  });

  it("reads 16-bit colour PNG per channel", async () => {
    const data = new Uint16Array(8 * 8 * 3);
    for (let i = 0; i < 64; i++) data.set([65535, 0x4000, 0x0101], i * 3);
    const png = await sharp(data, { raw: { width: 8, height: 8, channels: 3 } }).toColourspace("rgb16").png().toBuffer();
    const { tensor } = await preprocess(png, "image/png", identity);
    expect([at(tensor, 0, 50, 50), at(tensor, 1, 50, 50), at(tensor, 2, 50, 50)]).toEqual([1, 0x4000 / 65535, 0x0101 / 65535].map((v) => expect.closeTo(v, 6)));
  });

  it("resizes to 224×224 ignoring the aspect ratio (fit fill, no letterbox)", async () => {
    // 400×100: left half black, right half white
    const { tensor } = await preprocess(await greyPng(400, 100, (x) => (x < 200 ? 0 : 255), 8), "image/png", identity);
    for (const y of [0, 112, 223]) {
      expect(at(tensor, 0, y, 0)).toBeCloseTo(0, 3);
      expect(at(tensor, 0, y, 100)).toBeCloseTo(0, 2);
      expect(at(tensor, 0, y, 123)).toBeCloseTo(1, 2);
      expect(at(tensor, 0, y, 223)).toBeCloseTo(1, 3);
    }
  });

  it("drops alpha and applies the EXIF orientation, reporting the displayed size", async () => {
    // stored 60×20, left third black; orientation 6 = displayed rotated 90° clockwise (20 wide, 60 high, top black)
    const raw = Buffer.alloc(60 * 20 * 4);
    for (let y = 0; y < 20; y++) for (let x = 0; x < 60; x++) raw.set(x < 20 ? [0, 0, 0, 255] : [255, 255, 255, 128], (y * 60 + x) * 4);
    const jpeg = await sharp(raw, { raw: { width: 60, height: 20, channels: 4 } }).removeAlpha().jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    const { tensor, width, height } = await preprocess(jpeg, "image/jpeg", identity);
    expect([width, height]).toEqual([20, 60]);
    expect(at(tensor, 0, 10, 112)).toBeLessThan(0.1);
    expect(at(tensor, 0, 200, 112)).toBeGreaterThan(0.9);
    const png = await sharp(raw, { raw: { width: 60, height: 20, channels: 4 } }).png().toBuffer();
    expect((await preprocess(png, "image/png", identity)).tensor).toHaveLength(3 * AREA);
  });
});

describe("DICOM", () => {
  const ramp = (columns: number, rows: number) => Array.from({ length: rows * columns }, (_, i) => Math.round(((i % columns) / (columns - 1)) * 4095));

  it("windows, resizes and normalises a 16-bit image", async () => {
    const bytes = writeDicom({ rows: 300, columns: 600, pixels: ramp(600, 300), bitsStored: 12, windowCenter: 2048, windowWidth: 4096 });
    const { tensor, width, height } = await preprocess(bytes, "application/dicom", identity);
    expect([width, height]).toEqual([600, 300]);
    expect(at(tensor, 0, 0, 0)).toBeCloseTo(0, 2);
    expect(at(tensor, 1, 100, 112)).toBeCloseTo(0.5, 2);
    expect(at(tensor, 2, 223, 223)).toBeCloseTo(4095 / 4096, 2);
    const normalised = (await preprocess(bytes, "application/dicom", card)).tensor;
    for (let c = 0; c < 3; c++) expect(at(normalised, c, 50, 112)).toBeCloseTo((at(tensor, c, 50, 112) - mean[c]!) / std[c]!, 4);
  });

  it("inverts MONOCHROME1", async () => {
    const pixels = ramp(64, 64);
    const mono2 = (await preprocess(writeDicom({ rows: 64, columns: 64, pixels, bitsStored: 12 }), "application/dicom", identity)).tensor;
    const mono1 = (await preprocess(writeDicom({ rows: 64, columns: 64, pixels, bitsStored: 12, photometric: "MONOCHROME1" }), "application/dicom", identity)).tensor;
    for (const x of [0, 60, 160, 223]) expect(at(mono1, 0, 30, x)).toBeCloseTo(1 - at(mono2, 0, 30, x), 3);
  });

  it("refuses an unsupported transfer syntax, naming it, and a truncated file (422)", async () => {
    const mpeg = writeDicom({ rows: 8, columns: 8, pixels: ramp(8, 8), transferSyntax: "1.2.840.10008.1.2.4.100", fragments: [Uint8Array.from([0, 0, 1, 0xb3])] });
    await expectHttp(() => preprocess(mpeg, "application/dicom", card), 422, /MPEG2 \(1\.2\.840\.10008\.1\.2\.4\.100\)/);
    // An empty JPEG Baseline stream (now a supported syntax): refused with the codec's reason.
    const baseline = writeDicom({ rows: 8, columns: 8, pixels: ramp(8, 8), transferSyntax: "1.2.840.10008.1.2.4.50", fragments: [Uint8Array.from([0xff, 0xd8, 0xff, 0xd9])] });
    await expectHttp(() => preprocess(baseline, "application/dicom", card), 422, /^Image illisible : flux JPEG Baseline/);
    const full = writeDicom({ rows: 64, columns: 64, pixels: ramp(64, 64) });
    await expectHttp(() => preprocess(full.subarray(0, full.length - 100), "application/dicom", card), 422, /^Image illisible : /);
  });
});

describe("bad input", () => {
  it("a truncated JPEG → 422 Image illisible", async () => {
    const jpeg = await sharp({ create: { width: 300, height: 300, channels: 3, background: "#808080" } }).jpeg().toBuffer();
    await expectHttp(() => preprocess(jpeg.subarray(0, jpeg.length / 2), "image/jpeg", card), 422, /^Image illisible : fichier JPEG tronqué ou corrompu/);
  });

  it("garbage, a PNG sent as JPEG, an empty file → 422; another type → 415", async () => {
    await expectHttp(() => preprocess(Buffer.from("\x89PNG\r\n\x1a\n this is not really a png"), "image/png", card), 422, /^Image illisible : fichier PNG/);
    await expectHttp(async () => preprocess(await solid(8, 8, [1, 2, 3], "png"), "image/jpeg", card), 422, /^Image illisible : fichier JPEG/);
    await expectHttp(() => preprocess(new Uint8Array(0), "image/png", card), 422, /^Image illisible : fichier vide/);
    await expectHttp(() => preprocess(new Uint8Array(10), "image/gif", card), 415, /image\/gif/);
  });
});
