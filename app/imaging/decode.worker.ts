/**
 * The decode worker: one of the threads of the pool in decode-pool.server.ts. Every image decode of the server
 * (DICOM of any supported syntax, JPEG, PNG) runs here, so a heavy or hostile file costs this thread's time and
 * memory, never the event loop's. One job at a time per worker; the pool bounds how many workers and jobs exist.
 *
 * Built to build/server/decode-worker.mjs by `npm run build` (esbuild); run from source through tsx in tests and
 * development.
 */
import { createRequire } from "node:module";
import { parentPort } from "node:worker_threads";
import sharp from "sharp";
import { decodeFrame, luminance16, render16, render8InPlace, renderFloat, type DecodedFrame } from "./dicom-decode";
import { ImageError, unreadable } from "./image-error";
import type { DecodeJob, DecodeReply } from "./decode-protocol";

type Codecs = typeof import("dcmjs-codecs");

const require = createRequire(import.meta.url);
let codecs: Codecs | undefined;
const codecsReady = (async () => {
  const mod = (await import("dcmjs-codecs")) as Codecs & { default?: Codecs };
  const lib = mod.default ?? mod;
  await lib.NativeCodecs.initializeAsync({ webAssemblyModulePathOrUrl: require.resolve("dcmjs-codecs/build/dcmjs-native-codecs.wasm") });
  codecs = lib;
})();

// libvips' own thread pool: one thread per job here; the pool's size sets the parallelism.
sharp.concurrency(1);
sharp.cache(false);

const KIND: Record<string, string> = { "image/jpeg": "JPEG", "image/png": "PNG", "application/dicom": "DICOM" };

function rasterFailure(contentType: string, err: unknown): ImageError {
  if (err instanceof ImageError) return err;
  const kind = KIND[contentType] ?? contentType;
  const detail = err instanceof Error ? err.message.split("\n")[0]!.trim() : "";
  const limit = /pixel limit/i.test(detail);
  if (limit) return new ImageError(422, "too_many_pixels", "Image trop grande pour être décodée.", "Image too large to decode.");
  return unreadable(`fichier ${kind} tronqué ou corrompu${detail ? ` (${detail})` : ""}`, `truncated or corrupt ${kind} file${detail ? ` (${detail})` : ""}`);
}

async function dicom(bytes: Uint8Array, pixelLimit: number): Promise<DecodedFrame> {
  await codecsReady;
  return decodeFrame(bytes, codecs, pixelLimit);
}

function frameInfo(d: DecodedFrame) {
  return { width: d.header.columns, height: d.header.rows, frames: d.header.frames, transferSyntax: d.header.syntax, colour: d.kind === "rgb" };
}

async function run(job: DecodeJob): Promise<{ reply: DecodeReply; transfer: ArrayBuffer[] }> {
  const bytes = job.bytes;
  if (job.op === "probe") {
    const d = await dicom(bytes, job.pixelLimit);
    return { reply: { op: "probe", ...frameInfo(d) }, transfer: [] };
  }
  if (job.op === "values") {
    const d = await dicom(bytes, job.pixelLimit);
    const values = d.kind === "grey" ? renderFloat(d.words, d.table) : Float32Array.from(luminance16(d.rgb), (v) => v / 65535);
    return { reply: { op: "values", ...frameInfo(d), values }, transfer: [values.buffer as ArrayBuffer] };
  }
  if (job.op === "png") {
    let input: sharp.Sharp;
    let info: { width: number; height: number; frames: number; colour: boolean };
    if (job.contentType === "application/dicom") {
      const d = await dicom(bytes, job.pixelLimit);
      info = frameInfo(d);
      input =
        d.kind === "grey"
          ? sharp(render8InPlace(d.words, d.table), { raw: { width: info.width, height: info.height, channels: 1 } }).toColourspace("b-w")
          : sharp(d.rgb, { raw: { width: info.width, height: info.height, channels: 3 } });
    } else {
      try {
        const meta = await sharp(bytes, { failOn: "truncated", limitInputPixels: job.pixelLimit }).metadata();
        if (!meta.width || !meta.height) throw new Error("dimensions absentes");
        info = { width: meta.width, height: meta.height, frames: 1, colour: (meta.channels ?? 3) >= 3 };
        input = sharp(bytes, { failOn: "truncated", limitInputPixels: job.pixelLimit }).autoOrient();
      } catch (err) {
        throw rasterFailure(job.contentType, err);
      }
    }
    try {
      // sharp writes no metadata unless asked (withMetadata): no EXIF, ICC or text chunks in the result.
      const png = await input.resize({ width: job.maxSide, height: job.maxSide, fit: "inside", withoutEnlargement: true }).png().toBuffer();
      const out = new Uint8Array(png.buffer, png.byteOffset, png.byteLength).slice();
      return { reply: { op: "png", png: out, ...info }, transfer: [out.buffer as ArrayBuffer] };
    } catch (err) {
      throw rasterFailure(job.contentType, err);
    }
  }
  // op === "model": the model's input, resized to size × size (fit "fill"), 16-bit or 8-bit samples.
  const size = job.size;
  if (job.contentType === "application/dicom") {
    const d = await dicom(bytes, job.pixelLimit);
    // Grey: windowed display values at 16 bits (libvips resizes grey16 exactly). Colour: BT.601 luma at 16 bits.
    const values = d.kind === "grey" ? render16(d.words, d.table) : luminance16(d.rgb);
    const { data } = await sharp(values, { raw: { width: d.header.columns, height: d.header.rows, channels: 1 }, limitInputPixels: false })
      .resize(size, size, { fit: "fill" })
      .toColourspace("grey16")
      .raw({ depth: "ushort" })
      .toBuffer({ resolveWithObject: true });
    const samples = new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    return { reply: { op: "model", samples, channels: 1, maxValue: 65535, ...frameInfo(d) }, transfer: [samples.buffer as ArrayBuffer] };
  }
  try {
    const options = { failOn: "truncated" as const, limitInputPixels: job.pixelLimit };
    const meta = await sharp(bytes, options).metadata();
    const expected = job.contentType === "image/jpeg" ? "jpeg" : "png";
    if (meta.format !== expected) throw new Error(`contenu ${meta.format ?? "inconnu"}`);
    if (!meta.width || !meta.height) throw new Error("dimensions absentes");
    const sixteen = meta.depth === "ushort";
    const grey = (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0) === 1;
    const swap = (meta.orientation ?? 1) >= 5; // 90° rotations swap width and height
    const { data, info } = await sharp(bytes, options)
      .autoOrient()
      .removeAlpha()
      .toColourspace(grey ? (sixteen ? "grey16" : "b-w") : sixteen ? "rgb16" : "srgb")
      .resize(size, size, { fit: "fill" })
      .raw({ depth: sixteen ? "ushort" : "uchar" })
      .toBuffer({ resolveWithObject: true });
    const copy = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    const samples = sixteen ? new Uint16Array(copy) : new Uint8Array(copy);
    return {
      reply: {
        op: "model",
        samples,
        channels: info.channels,
        maxValue: sixteen ? 65535 : 255,
        width: swap ? meta.height : meta.width,
        height: swap ? meta.width : meta.height,
        frames: 1,
        transferSyntax: null,
        colour: !grey,
      },
      transfer: [copy as ArrayBuffer],
    };
  } catch (err) {
    throw rasterFailure(job.contentType, err);
  }
}

parentPort!.on("message", (message: { id: number; job: DecodeJob }) => {
  run(message.job).then(
    ({ reply, transfer }) => parentPort!.postMessage({ id: message.id, reply }, transfer),
    (err: unknown) => {
      const e =
        err instanceof ImageError
          ? err
          : rasterFailure(message.job.op === "png" || message.job.op === "model" ? message.job.contentType : "application/dicom", err);
      parentPort!.postMessage({ id: message.id, error: e.toJSON() });
    },
  );
});
parentPort!.postMessage({ ready: true });
