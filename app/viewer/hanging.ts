/**
 * The hanging protocol, as pure functions (unit-tested): which view goes where, which way it faces, and one physical
 * scale for all. R-CC | L-CC above R-MLO | L-MLO; right-breast views show the chest wall on the right edge of their
 * viewport and left-breast views on the left edge, so the two breasts meet back to back in the middle (mirrored).
 */
import type { Laterality, View } from "../exams/views";

export const HANGING: readonly { laterality: Laterality; view: View; row: 0 | 1; column: 0 | 1 }[] = [
  { laterality: "R", view: "CC", row: 0, column: 0 },
  { laterality: "L", view: "CC", row: 0, column: 1 },
  { laterality: "R", view: "MLO", row: 1, column: 0 },
  { laterality: "L", view: "MLO", row: 1, column: 1 },
];

/** The side of the viewport where the chest wall belongs for a breast. */
export const chestWallSide = (laterality: Laterality): "left" | "right" => (laterality === "R" ? "right" : "left");

/**
 * Whether to flip a view horizontally, from Patient Orientation (0020,0020): its first value is the direction of
 * increasing column index. The chest wall on the right means the rows run toward posterior (`P`), on the left
 * toward anterior (`A`). Returns null when the file does not say (the caller then looks at the pixels).
 */
export function flipFromOrientation(laterality: Laterality, patientOrientation: string | null | undefined): boolean | null {
  const rowDirection = patientOrientation?.split("\\")[0]?.trim().toUpperCase() ?? "";
  const toward = rowDirection.includes("P") ? "P" : rowDirection.includes("A") ? "A" : null;
  if (!toward) return null;
  const wanted = chestWallSide(laterality) === "right" ? "P" : "A";
  return toward !== wanted;
}

/**
 * Whether to flip a view horizontally from its pixels, when the header is silent: the chest-wall side carries more
 * tissue (brighter in MONOCHROME2, darker in MONOCHROME1) than the side of the nipple and the air around it.
 * `leftMass` / `rightMass` are the mean displayed brightness of the left and right thirds of the image.
 */
export function flipFromPixels(laterality: Laterality, leftMass: number, rightMass: number): boolean {
  const heavierSide = leftMass > rightMass ? "left" : "right";
  return heavierSide !== chestWallSide(laterality);
}

export interface PhysicalSize {
  /** Image height and width in millimetres (rows × row spacing, columns × column spacing). */
  heightMm: number;
  widthMm: number;
}

/**
 * One scale (millimetres per screen pixel) for every view, so that the same lesion size looks the same in all: the
 * largest of what each view needs to fit a viewport of `width` × `height` CSS pixels.
 */
export function commonScale(views: readonly PhysicalSize[], width: number, height: number): number {
  let mmPerPixel = 0;
  for (const v of views) mmPerPixel = Math.max(mmPerPixel, v.heightMm / height, v.widthMm / width);
  return mmPerPixel || 1;
}

/** Spacing in mm (row, column) from PixelSpacing, else ImagerPixelSpacing; null when neither is usable. */
export function spacingOf(pixelSpacing: readonly number[] | null | undefined, imagerPixelSpacing: readonly number[] | null | undefined): [number, number] | null {
  for (const s of [pixelSpacing, imagerPixelSpacing]) {
    if (s && s.length >= 2 && s[0]! > 0 && s[1]! > 0 && Number.isFinite(s[0]) && Number.isFinite(s[1])) return [s[0]!, s[1]!];
  }
  return null;
}

export interface WindowPreset {
  label: string;
  lower: number;
  upper: number;
  sigmoid: boolean;
}

/**
 * Window presets from the file: each WindowCenter/WindowWidth pair (with its explanation if any), each VOI LUT of the
 * VOI LUT Sequence (as the linear window spanning its input range), and VOI LUT Function SIGMOID applied to them.
 */
export function windowPresets(voi: {
  windowCenter?: number | number[] | null;
  windowWidth?: number | number[] | null;
  explanation?: string[] | null;
  voiLUTFunction?: string | null;
  voiLUTSequence?: { firstValueMapped: number; lut: ArrayLike<number> }[] | null;
}): WindowPreset[] {
  const centers = voi.windowCenter == null ? [] : Array.isArray(voi.windowCenter) ? voi.windowCenter : [voi.windowCenter];
  const widths = voi.windowWidth == null ? [] : Array.isArray(voi.windowWidth) ? voi.windowWidth : [voi.windowWidth];
  const sigmoid = (voi.voiLUTFunction ?? "").trim().toUpperCase() === "SIGMOID";
  const out: WindowPreset[] = [];
  centers.forEach((c, i) => {
    const w = widths[i] ?? widths[0];
    if (!Number.isFinite(c) || w === undefined || !Number.isFinite(w) || w <= 0) return;
    const name = voi.explanation?.[i]?.trim();
    out.push({ label: name || `${Math.round(c)}/${Math.round(w)}`, lower: c - w / 2, upper: c + w / 2, sigmoid });
  });
  (voi.voiLUTSequence ?? []).forEach((lut, i) => {
    if (!lut || !lut.lut || lut.lut.length < 2) return;
    out.push({ label: `VOI LUT ${i + 1}`, lower: lut.firstValueMapped, upper: lut.firstValueMapped + lut.lut.length - 1, sigmoid: false });
  });
  return out;
}
