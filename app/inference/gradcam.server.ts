/**
 * Grad-CAM (Selvaraju et al. 2017) from the model's outputs `features` = A (C × h × w: the last convolutional
 * feature map, for DenseNet121 the last dense block after its final BN + ReLU, 1024 × 7 × 7) and `gradients`
 * = ∂y_c/∂A for every class c (K × C × h × w), which the imported ONNX graph computes itself by the backward pass of
 * whatever head follows A (keras-to-onnx.ts, `headGradients`): nothing here depends on the head's layers.
 *
 *   α_k^c = (1/(h·w)) Σ_ij ∂y_c/∂A_k[i,j]        CAM^c = ReLU(Σ_k α_k^c A_k), normalised to [0, 1].
 *
 * (For GlobalAveragePooling → Dense, α_k^c = W[c,k] / (h·w) and CAM^c equals Zhou et al.'s CAM.)
 */
import sharp from "sharp";

/** Shape of the feature map A: channels × height × width. */
export interface GradCamShape {
  channels: number;
  height: number;
  width: number;
}

/** A class activation map, row-major, values in [0, 1]. */
export interface Cam {
  width: number;
  height: number;
  values: Float32Array;
}

/** α_k^c: the spatial mean of ∂y_c/∂A_k, from one image's `gradients` (K × C × h × w). */
export function gradCamWeights(gradients: Float32Array, shape: GradCamShape, classIndex: number): Float32Array {
  const { channels, height, width } = shape;
  const area = height * width;
  const classes = gradients.length / (channels * area);
  if (!Number.isInteger(classes) || classes < 1) throw new RangeError(`gradients: ${gradients.length} values, not K×${channels}×${height}×${width}`);
  if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= classes) throw new RangeError(`class ${classIndex} out of 0…${classes - 1}`);
  const alpha = new Float32Array(channels);
  const base = classIndex * channels * area;
  for (let k = 0; k < channels; k++) {
    let sum = 0;
    for (let p = 0; p < area; p++) sum += gradients[base + k * area + p]!;
    alpha[k] = sum / area;
  }
  return alpha;
}

/** Grad-CAM of class `classIndex` for one image's feature map (C × h × w) and gradients (K × C × h × w). */
export function gradCam(features: Float32Array, gradients: Float32Array, shape: GradCamShape, classIndex: number): Cam {
  const { channels, height, width } = shape;
  const area = height * width;
  if (features.length !== channels * area) throw new RangeError(`features: ${features.length} values, expected ${channels}×${height}×${width}`);
  const alpha = gradCamWeights(gradients, shape, classIndex);
  const cam = new Float32Array(area);
  for (let k = 0; k < channels; k++) {
    const a = alpha[k]!;
    if (a === 0) continue;
    const offset = k * area;
    for (let p = 0; p < area; p++) cam[p]! += a * features[offset + p]!;
  }
  let max = 0;
  for (let p = 0; p < area; p++) {
    if (cam[p]! < 0) cam[p] = 0; // ReLU: only what speaks for the class
    if (cam[p]! > max) max = cam[p]!;
  }
  if (max > 0) for (let p = 0; p < area; p++) cam[p]! /= max;
  return { width, height, values: cam };
}

/** "Jet" colour map: 0 → dark blue, 0.5 → green, 1 → dark red. */
export function jet(v: number): [number, number, number] {
  const channel = (centre: number) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - centre))));
  return [channel(3), channel(2), channel(1)];
}

export interface OverlayOptions {
  /** Longest side of the PNG (default 1024); smaller images keep their size. */
  maxSize?: number;
  /** Opacity at activation 1 (default 0.6); alpha is proportional to the activation. */
  maxAlpha?: number;
}

/** Bilinear resampling of the CAM to w × h, pixel centres aligned (as image resizers do), edges clamped. */
export function upsampleBilinear(cam: Cam, w: number, h: number): Float32Array {
  const axis = (from: number, to: number) => {
    const index = new Int32Array(to);
    const weight = new Float32Array(to);
    for (let i = 0; i < to; i++) {
      const u = Math.min(from - 1, Math.max(0, (i + 0.5) * (from / to) - 0.5));
      index[i] = Math.min(Math.max(0, from - 2), Math.floor(u));
      weight[i] = from > 1 ? u - index[i]! : 0;
    }
    return { index, weight };
  };
  const xs = axis(cam.width, w);
  const ys = axis(cam.height, h);
  // Separable: interpolate each CAM row horizontally once, then blend two such rows per output row.
  const rows = new Float32Array(cam.height * w);
  const step = cam.width > 1 ? 1 : 0;
  for (let r = 0; r < cam.height; r++) {
    for (let x = 0; x < w; x++) {
      const i = r * cam.width + xs.index[x]!;
      rows[r * w + x] = cam.values[i]! + (cam.values[i + step]! - cam.values[i]!) * xs.weight[x]!;
    }
  }
  const out = new Float32Array(w * h);
  const down = cam.height > 1 ? w : 0;
  for (let y = 0; y < h; y++) {
    const top = ys.index[y]! * w;
    const fy = ys.weight[y]!;
    const o = y * w;
    for (let x = 0; x < w; x++) out[o + x] = rows[top + x]! + (rows[top + down + x]! - rows[top + x]!) * fy;
  }
  return out;
}

/**
 * A transparent PNG to lay over the image: the CAM upsampled ({@link upsampleBilinear}) to the image's proportions, coloured with
 * {@link jet}, its alpha proportional to the activation (nothing where the model saw nothing of the class). The PNG
 * is `width` × `height` scaled down to at most `maxSize` pixels on the longest side.
 */
export async function heatmapOverlay(cam: Cam, width: number, height: number, options: OverlayOptions = {}): Promise<Buffer> {
  const maxSize = options.maxSize ?? 1024;
  const maxAlpha = options.maxAlpha ?? 0.6;
  if (!(width > 0 && height > 0)) throw new RangeError("image size must be positive");
  const scale = Math.min(1, maxSize / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const values = upsampleBilinear(cam, w, h);
  // One 32-bit RGBA word per activation level (256 levels), written with one store per pixel.
  const lut = new Uint32Array(256);
  const bytes = new Uint8Array(lut.buffer);
  for (let i = 0; i < 256; i++) {
    const [r, g, b] = jet(i / 255);
    bytes.set([r, g, b, Math.round(255 * maxAlpha * (i / 255))], i * 4);
  }
  const rgba = Buffer.alloc(w * h * 4);
  const words = new Uint32Array(rgba.buffer, rgba.byteOffset, w * h);
  for (let p = 0; p < w * h; p++) {
    const v = values[p]!;
    words[p] = lut[v <= 0 ? 0 : v >= 1 ? 255 : (v * 255 + 0.5) | 0]!;
  }
  return sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png({ compressionLevel: 3, adaptiveFiltering: false }).toBuffer();
}
