import { describe, expect, it } from "vitest";
import { boxFilter, needsOriginal, previewFactor, previewOrigin } from "./preview";

describe("the viewer's display-resolution first pass", () => {
  it("reduces by the largest factor that still fills the viewport, or not at all", () => {
    expect(previewFactor(4096, 3328, 420, 340)).toBe(9);
    expect(previewFactor(4096, 3328, 1000, 800)).toBe(4);
    expect(previewFactor(4096, 3328, 2200, 1800)).toBeNull();
    expect(previewFactor(512, 512, 0, 0)).toBeNull();
  });

  it("averages k × k blocks, rounding integers, dropping the incomplete last row and column", () => {
    // 5 columns × 4 rows, k = 2 → 2 × 2; the fifth column is dropped.
    const src = Uint16Array.from([1, 2, 3, 4, 99, 3, 4, 5, 6, 99, 10, 10, 0, 0, 99, 10, 11, 0, 1, 99]);
    const { data, rows, columns } = boxFilter(src, 4, 5, 2);
    expect([rows, columns]).toEqual([2, 2]);
    expect(data).toBeInstanceOf(Uint16Array);
    expect(Array.from(data)).toEqual([3, 5, 10, 0]); // (1+2+3+4)/4 = 2.5 → 3 · (3+4+5+6)/4 = 4.5 → 5 · 41/4 = 10.25 → 10 · 1/4 → 0
    const signed = boxFilter(Int16Array.from([-4, -4, -4, -5]), 2, 2, 2);
    expect(Array.from(signed.data)).toEqual([-4]);
    const float = boxFilter(Float32Array.from([0.5, 1, 1.5, 2]), 2, 2, 2);
    expect(Array.from(float.data)).toEqual([1.25]);
  });

  it("keeps the image where it was in the patient's frame", () => {
    // Identity orientation, 0.1 mm pixels, k = 4: the first reduced pixel's centre is 1.5 pixels in (0.15 mm).
    const o = previewOrigin([10, 20, 0], [1, 0, 0], [0, 1, 0], 0.1, 0.1, 4);
    expect(o[0]).toBeCloseTo(10.15);
    expect(o[1]).toBeCloseTo(20.15);
    expect(o[2]).toBeCloseTo(0);
    // Rows running along −x: the shift follows the directions.
    const p = previewOrigin([0, 0, 0], [-1, 0, 0], [0, 0, 1], 0.2, 0.1, 3);
    expect(p[0]).toBeCloseTo(-0.1);
    expect(p[2]).toBeCloseTo(0.2);
  });

  it("asks for the original once a reduced pixel would cover more than 1.25 screen pixels", () => {
    // 420 px tall viewport showing 287 mm (the whole view): 1.46 px/mm × 0.07 mm × 9 = 0.92 → the reduced one will do.
    expect(needsOriginal(420, 287 / 2, 0.07, 9)).toBe(false);
    // Zoomed twice: 1.84 → the original.
    expect(needsOriginal(420, 287 / 4, 0.07, 9)).toBe(true);
  });
});
