/**
 * The display-resolution first pass of the viewer's CPU path (pure code, unit-tested in preview.test.ts).
 *
 * Where WebGL has no GPU, Cornerstone draws a view by building a full-size RGBA canvas of the image — 54 MB and
 * ≈ 240 ms of the main thread for a 3328 × 4096 mammogram — to show it at a few hundred pixels. The viewer first
 * shows each view box-filtered by an integer factor k (every output pixel the mean of k × k originals), as large as
 * the viewport or larger, at the same place in the patient's frame: spacing × k, origin moved to the centre of the
 * first k × k block. The original replaces it when the reader zooms in past it, picks the magnifier or the ruler, or
 * the browser is idle. Nothing is lossy in what is kept: the original stays in memory and is what the tools measure.
 */

export type PixelArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

/**
 * The largest factor k for which the reduced image still has at least as many pixels as the viewport shows (device
 * pixels) in both directions; null when k would be 1 (nothing to gain).
 */
export function previewFactor(rows: number, columns: number, viewportHeightPx: number, viewportWidthPx: number): number | null {
  if (!(viewportHeightPx > 0 && viewportWidthPx > 0)) return null;
  const k = Math.floor(Math.min(rows / viewportHeightPx, columns / viewportWidthPx));
  return k >= 2 ? k : null;
}

/** The k × k box mean of a single-channel image (rows × columns), into the same array type (rounded for integers). */
export function boxFilter(src: PixelArray, rows: number, columns: number, k: number): { data: PixelArray; rows: number; columns: number } {
  const w = Math.floor(columns / k);
  const h = Math.floor(rows / k);
  const Out = src.constructor as new (n: number) => PixelArray;
  const out = new Out(w * h);
  const integer = !(src instanceof Float32Array || src instanceof Float64Array);
  const sums = new Float64Array(w);
  const area = k * k;
  for (let y = 0; y < h; y++) {
    sums.fill(0);
    for (let dy = 0; dy < k; dy++) {
      let i = (y * k + dy) * columns;
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let dx = 0; dx < k; dx++) s += src[i++]!;
        sums[x]! += s;
      }
    }
    const row = y * w;
    for (let x = 0; x < w; x++) out[row + x] = integer ? Math.round(sums[x]! / area) : sums[x]! / area;
  }
  return { data: out, rows: h, columns: w };
}

/**
 * Where the reduced image sits in the patient's frame: the centre of its first pixel is the centre of the original's
 * first k × k block, (k − 1) / 2 original pixels along the row and the column directions from the original's origin.
 */
export function previewOrigin(
  origin: readonly number[],
  rowCosines: readonly number[],
  columnCosines: readonly number[],
  rowSpacing: number,
  columnSpacing: number,
  k: number,
): [number, number, number] {
  const half = (k - 1) / 2;
  return [0, 1, 2].map((i) => origin[i]! + half * (columnSpacing * rowCosines[i]! + rowSpacing * columnCosines[i]!)) as [number, number, number];
}

/** Whether a view shown with `parallelScale` (half the viewport's height, in mm) needs more detail than k gives. */
export function needsOriginal(viewportHeightPx: number, parallelScale: number, rowSpacing: number, k: number): boolean {
  if (!(parallelScale > 0)) return false;
  const screenPxPerMm = viewportHeightPx / (2 * parallelScale);
  // One reduced pixel spread over more than 1.25 screen pixels is visibly softer than the original.
  return screenPxPerMm * rowSpacing * k > 1.25;
}
