/**
 * Image bytes → the model's input tensor, float32 NCHW [1, 3, S, S], as Keras' DenseNet expects it:
 *
 *   decode (JPEG/PNG with sharp, 16-bit PNG at 16 bits; DICOM with windowing and MONOCHROME1 inverted, its first
 *   frame; a colour DICOM as its ITU-R BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B)
 *   → grey replicated to 3 channels → resize to S × S ignoring the aspect ratio (fit "fill", like Keras' load_img
 *   with target_size) → scale to [0, 1] → (x − mean) / std per channel, mean and std from the model card.
 *
 * JPEG/PNG are oriented by their EXIF orientation first, as a browser displays them, so that the heatmap laid over
 * the displayed image matches. An image that cannot be decoded (truncated, corrupt) → 422 "Image illisible : …".
 */
import { HttpError } from "../http/errors.server";
import { decode } from "../imaging/decode-pool.server";
import type { ModelCard } from "./model-card";

export type InferenceContentType = "image/jpeg" | "image/png" | "application/dicom";

export interface PreprocessedImage {
  /** [1, 3, S, S] float32, normalised. */
  tensor: Float32Array;
  /** Size of the image as displayed (after EXIF orientation), for the heatmap. */
  width: number;
  height: number;
  /** DICOM: frames declared (the first is read). */
  frames?: number;
}

type Preprocessing = Pick<ModelCard, "inputSize" | "preprocessing">;

const KIND: Record<InferenceContentType, string> = { "image/jpeg": "JPEG", "image/png": "PNG", "application/dicom": "DICOM" };

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

export function isInferenceContentType(value: string): value is InferenceContentType {
  return value in KIND;
}

/**
 * Decodes and prepares one image for the model described by `card`. The decode and the resize run in the decode
 * pool (app/imaging/decode-pool.server.ts); only the S × S samples come back to be normalised here.
 */
export async function preprocess(bytes: Uint8Array, contentType: string, card: Preprocessing): Promise<PreprocessedImage> {
  if (!isInferenceContentType(contentType)) {
    throw new HttpError(415, "unsupported_type", `Type d'image non pris en charge pour l'analyse : ${contentType}.`);
  }
  const r = await decode("model", { bytes, contentType, size: card.inputSize });
  return { tensor: normalise(r.samples, r.channels, r.maxValue, card), width: r.width, height: r.height, frames: r.frames };
}
