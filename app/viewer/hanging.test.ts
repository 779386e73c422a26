import { describe, expect, it } from "vitest";
import { chestWallSide, commonScale, flipFromOrientation, flipFromPixels, HANGING, spacingOf, windowPresets } from "./hanging";

describe("hanging protocol", () => {
  it("hangs R-CC | L-CC above R-MLO | L-MLO, right breast on the left", () => {
    expect(HANGING.map((h) => `${h.laterality}-${h.view}@${h.row}${h.column}`)).toEqual(["R-CC@00", "L-CC@01", "R-MLO@10", "L-MLO@11"]);
    expect(chestWallSide("R")).toBe("right");
    expect(chestWallSide("L")).toBe("left");
  });

  it("flips from Patient Orientation: rows toward posterior put the chest wall on the right", () => {
    expect(flipFromOrientation("R", "P\\F")).toBe(false);
    expect(flipFromOrientation("R", "A\\F")).toBe(true);
    expect(flipFromOrientation("L", "A\\R")).toBe(false);
    expect(flipFromOrientation("L", "P\\L")).toBe(true);
    expect(flipFromOrientation("R", "PL\\F")).toBe(false);
    expect(flipFromOrientation("L", null)).toBeNull();
    expect(flipFromOrientation("L", "F\\R")).toBeNull();
  });

  it("falls back on the pixels: the heavier side is the chest wall", () => {
    expect(flipFromPixels("R", 100, 10)).toBe(true);
    expect(flipFromPixels("R", 10, 100)).toBe(false);
    expect(flipFromPixels("L", 100, 10)).toBe(false);
    expect(flipFromPixels("L", 10, 100)).toBe(true);
  });

  it("gives every view the same mm per pixel, the one that fits the largest", () => {
    const views = [
      { heightMm: 300, widthMm: 240 },
      { heightMm: 240, widthMm: 190 },
    ];
    expect(commonScale(views, 400, 500)).toBeCloseTo(0.6);
    expect(commonScale(views, 100, 500)).toBeCloseTo(2.4);
    expect(commonScale([], 100, 100)).toBe(1);
  });

  it("reads spacing from PixelSpacing, else ImagerPixelSpacing", () => {
    expect(spacingOf([0.07, 0.07], [0.085, 0.085])).toEqual([0.07, 0.07]);
    expect(spacingOf(null, [0.085, 0.085])).toEqual([0.085, 0.085]);
    expect(spacingOf([0, 0], [Number.NaN, 1])).toBeNull();
  });

  it("takes window presets from WindowCenter/Width, VOI LUT Sequence and SIGMOID", () => {
    expect(windowPresets({ windowCenter: [2048, 2600], windowWidth: [4096, 1800], explanation: ["FULL", ""], voiLUTFunction: "SIGMOID" })).toEqual([
      { label: "FULL", lower: 0, upper: 4096, sigmoid: true },
      { label: "2600/1800", lower: 1700, upper: 3500, sigmoid: true },
    ]);
    expect(windowPresets({ windowCenter: 40, windowWidth: 0 })).toEqual([]);
    expect(windowPresets({ voiLUTSequence: [{ firstValueMapped: 100, lut: new Array(1000).fill(0) }] })).toEqual([{ label: "VOI LUT 1", lower: 100, upper: 1099, sigmoid: false }]);
  });
});
