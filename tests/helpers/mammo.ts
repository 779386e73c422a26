/**
 * Synthetic four-view screening exams for the viewer's tests and benchmark: 12-bit DICOM views written by the
 * project's writer, each a breast (half ellipse of textured tissue) against a black background, the chest wall on
 * the side the Patient Orientation says — or on a side only the pixels tell, when `orientation` is null.
 */
import { randomUUID } from "node:crypto";
import { screeningAttributes, writeDicom, type DicomAttribute } from "../../app/imaging/dicom-writer";

export const uid = () => `2.25.${BigInt(`0x${randomUUID().replace(/-/g, "")}`)}`;

export interface MammoView {
  laterality: "R" | "L";
  view: "CC" | "MLO";
  /** Column of the chest wall in the file: 0 (left) or the last column (right). */
  chestWall: "left" | "right";
  /** PatientOrientation (0020,0020), e.g. "A\\F"; null to leave it out. */
  orientation: string | null;
}

export function mammoDicom(
  o: MammoView & { studyInstanceUid: string; studyDate: string; patient: { id: string; name: string; birthDate: string; sex: string }; rows: number; columns: number; spacing?: number; extra?: DicomAttribute[] },
): Buffer {
  const { rows, columns } = o;
  const pixels = new Uint16Array(rows * columns);
  const cy = rows / 2;
  const ry = rows * 0.45;
  const rx = columns * 0.8;
  let seed = 12345;
  const noise = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      const d = o.chestWall === "left" ? x : columns - 1 - x; // distance from the chest wall
      const e = (d / rx) ** 2 + ((y - cy) / ry) ** 2;
      if (e <= 1) pixels[y * columns + x] = Math.min(4095, Math.round(1200 + 2200 * (1 - e) + noise() * 2));
    }
  }
  const attributes: DicomAttribute[] = [
    ...screeningAttributes({ patient: o.patient, studyInstanceUid: o.studyInstanceUid, studyDate: o.studyDate, laterality: o.laterality, view: o.view }),
    { tag: 0x00181164, vr: "DS", value: `${o.spacing ?? 0.1}\\${o.spacing ?? 0.1}` },
    ...(o.orientation ? [{ tag: 0x00200020, vr: "CS", value: o.orientation }] : []),
    ...(o.extra ?? []),
  ];
  return Buffer.from(writeDicom({ rows, columns, pixels, bitsStored: 12, sopInstanceUid: uid(), modality: "MG", attributes }));
}

/** The four views of a screening exam, with every way the chest wall's side is given. */
export const FOUR_VIEWS: MammoView[] = [
  { laterality: "R", view: "CC", chestWall: "left", orientation: "A\\R" }, // must be flipped
  { laterality: "L", view: "CC", chestWall: "left", orientation: "A\\L" }, // as is
  { laterality: "R", view: "MLO", chestWall: "right", orientation: "P\\F" }, // as is
  { laterality: "L", view: "MLO", chestWall: "right", orientation: null }, // pixels only: must be flipped
];
