/**
 * Image bytes → the model's input tensor, float32 NCHW [1, 3, S, S], as Keras' DenseNet expects it:
 *
 *   decode (JPEG/PNG with sharp, 16-bit PNG at 16 bits; DICOM with windowing and MONOCHROME1 inverted)
 *   → grey replicated to 3 channels → resize to S × S ignoring the aspect ratio (fit "fill", like Keras' load_img
 *   with target_size) → scale to [0, 1] → (x − mean) / std per channel, mean and std from the model card.
 *
 * JPEG/PNG are oriented by their EXIF orientation first, as a browser displays them, so that the heatmap laid over
 * the displayed image matches. An image that cannot be decoded (truncated, corrupt) → 422 "Image illisible : …".
 */
import sharp from "sharp";
import { HttpError } from "../http/errors.server";
import { decodeDicom16 } from "../imaging/dicom.server";
import { PIXEL_LIMIT } from "../vault/sniff.server";
import type { ModelCard } from "./model-card";

export type InferenceContentType = "image/jpeg" | "image/png" | "application/dicom";

export interface PreprocessedImage {
  /** [1, 3, S, S] float32, normalised. */
  tensor: Float32Array;
  /** Size of the image as displayed (after EXIF orientation), for the heatmap. */
  width: number;
  height: number;
}

type Preprocessing = Pick<ModelCard, "inputSize" | "preprocessing">;

const KIND: Record<InferenceContentType, string> = { "image/jpeg": "JPEG", "image/png": "PNG", "application/dicom": "DICOM" };

function unreadableImage(kind: string, err: unknown): HttpError {
  const detail = err instanceof Error ? err.message.split("\n")[0]!.trim() : "";
  return new HttpError(422, "unreadable", `Image illisible : fichier ${kind} tronqué ou corrompu${detail ? ` (${detail})` : ""}.`);
}

/** Planar RGB float tensor from interleaved samples (1 or 3 channels) in [0, maxValue]. */
function normalise(samples: ArrayLike<number>, channels: number, maxValue: number, p: Preprocessing): Float32Array {
  const size = p.inputSize;
  const area = size * size;
  const { mean, std } = p.preprocessing;
  const tensor = new Float32Array(3 * area);
  for (let c = 0; c < 3; c++) {
    const source = channels === 1 ? 0 : c;
    const m = mean[c]!;
    const s = std[c]!;
    const offset = c * area;
    for (let i = 0; i < area; i++) tensor[offset + i] = (samples[i * channels + source]! / maxValue - m) / s;
  }
  return tensor;
}

async function fromRaster(bytes: Uint8Array, contentType: "image/jpeg" | "image/png", p: Preprocessing): Promise<PreprocessedImage> {
  const kind = KIND[contentType];
  const options = { failOn: "truncated" as const, limitInputPixels: PIXEL_LIMIT };
  try {
    const meta = await sharp(bytes, options).metadata();
    const expected = contentType === "image/jpeg" ? "jpeg" : "png";
    if (meta.format !== expected) throw new Error(`contenu ${meta.format ?? "inconnu"}`);
    if (!meta.width || !meta.height) throw new Error("dimensions absentes");
    const sixteen = meta.depth === "ushort";
    const grey = (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0) === 1;
    const swap = (meta.orientation ?? 1) >= 5; // 90° rotations swap width and height
    const { data, info } = await sharp(bytes, options)
      .autoOrient()
      .removeAlpha()
      .toColourspace(grey ? (sixteen ? "grey16" : "b-w") : sixteen ? "rgb16" : "srgb")
      .resize(p.inputSize, p.inputSize, { fit: "fill" })
      .raw({ depth: sixteen ? "ushort" : "uchar" })
      .toBuffer({ resolveWithObject: true });
    const samples = sixteen ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) : data;
    return {
      tensor: normalise(samples, info.channels, sixteen ? 65535 : 255, p),
      width: swap ? meta.height : meta.width,
      height: swap ? meta.width : meta.height,
    };
  } catch (err) {
    throw unreadableImage(kind, err);
  }
}

async function fromDicom(bytes: Uint8Array, p: Preprocessing): Promise<PreprocessedImage> {
  // Windowed display values at 16 bits (libvips resizes grey16 exactly; its float path is not meant for raw grey).
  const pixels = await decodeDicom16(bytes); // throws 422 itself, with the reason
  try {
    const { data, info } = await sharp(pixels.values, { raw: { width: pixels.width, height: pixels.height, channels: 1 }, limitInputPixels: PIXEL_LIMIT })
      .resize(p.inputSize, p.inputSize, { fit: "fill" })
      .toColourspace("grey16")
      .raw({ depth: "ushort" })
      .toBuffer({ resolveWithObject: true });
    const samples = new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    return { tensor: normalise(samples, info.channels, 65535, p), width: pixels.width, height: pixels.height };
  } catch (err) {
    throw unreadableImage("DICOM", err);
  }
}

export function isInferenceContentType(value: string): value is InferenceContentType {
  return value in KIND;
}

/** Decodes and prepares one image for the model described by `card`. */
export async function preprocess(bytes: Uint8Array, contentType: string, card: Preprocessing): Promise<PreprocessedImage> {
  if (!isInferenceContentType(contentType)) {
    throw new HttpError(415, "unsupported_type", `Type d'image non pris en charge pour l'analyse : ${contentType}.`);
  }
  if (bytes.length === 0) throw new HttpError(422, "unreadable", "Image illisible : fichier vide.");
  return contentType === "application/dicom" ? fromDicom(bytes, card) : fromRaster(bytes, contentType, card);
}
