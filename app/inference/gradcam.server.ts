/**
 * Grad-CAM (Selvaraju et al. 2017) from the model's second output, `features` = A (C × h × w: for DenseNet121 the
 * last dense block after its final BN + ReLU, 1024 × 7 × 7).
 *
 * The head after A is GlobalAveragePool → Dense → softmax, so the score of class c before the softmax is
 *   y_c = Σ_k W[c,k] · (1/(h·w)) Σ_ij A_k[i,j] + b_c
 * and its gradient with respect to the feature map is constant over positions: ∂y_c/∂A_k[i,j] = W[c,k] / (h·w).
 * Grad-CAM's channel weights α_k^c (the spatial mean of that gradient) are therefore W[c,k] / (h·w), with no
 * backward pass, and CAM^c = ReLU(Σ_k α_k^c A_k), normalised to [0, 1] (for this head it equals CAM of Zhou et al.).
 */
import sharp from "sharp";

/** The dense layer after global average pooling: kernel class-major [K][C], bias [K], and A's shape. */
export interface GradCamHead {
  kernel: Float32Array;
  bias: Float32Array;
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

/** α_k = ∂y_c/∂A_k[i,j] = W[c,k] / (h·w): Grad-CAM's weights for class `classIndex`. */
export function gradCamWeights(head: GradCamHead, classIndex: number): Float32Array {
  const classes = head.bias.length;
  if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= classes) throw new RangeError(`class ${classIndex} out of 0…${classes - 1}`);
  const scale = 1 / (head.height * head.width);
  return head.kernel.slice(classIndex * head.channels, (classIndex + 1) * head.channels).map((w) => w * scale);
}

/** The pre-softmax class scores y = W · GAP(A) + b (what the model's softmax receives). */
export function classScores(features: Float32Array, head: GradCamHead): Float32Array {
  const { channels, height, width } = head;
  const area = height * width;
  const classes = head.bias.length;
  const scores = Float32Array.from(head.bias);
  for (let k = 0; k < channels; k++) {
    let sum = 0;
    for (let p = 0; p < area; p++) sum += features[k * area + p]!;
    const mean = sum / area;
    for (let c = 0; c < classes; c++) scores[c]! += head.kernel[c * channels + k]! * mean;
  }
  return scores;
}

/** Grad-CAM of class `classIndex` for one image's feature map (C × h × w, as the model outputs it). */
export function gradCam(features: Float32Array, head: GradCamHead, classIndex: number): Cam {
  const { channels, height, width } = head;
  const area = height * width;
  if (features.length !== channels * area) throw new RangeError(`features: ${features.length} values, expected ${channels}×${height}×${width}`);
  const alpha = gradCamWeights(head, classIndex);
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
