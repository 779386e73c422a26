/** The words of a screening exam, shared by server and interface (no server-only imports here). */
import type { ExamStatus } from "../db/schema";

export const LATERALITIES = ["R", "L"] as const;
export type Laterality = (typeof LATERALITIES)[number];

export const VIEWS = ["CC", "MLO", "ML", "LM", "XCCL", "SPOT", "MAG"] as const;
export type View = (typeof VIEWS)[number];

/** The four standard screening views, in hanging order: R-CC | L-CC over R-MLO | L-MLO. */
export const STANDARD_VIEWS: readonly { laterality: Laterality; view: View }[] = [
  { laterality: "R", view: "CC" },
  { laterality: "L", view: "CC" },
  { laterality: "R", view: "MLO" },
  { laterality: "L", view: "MLO" },
];

export type { ExamStatus };

export const isLaterality = (value: unknown): value is Laterality =>
  typeof value === "string" && (LATERALITIES as readonly string[]).includes(value);
export const isView = (value: unknown): value is View =>
  typeof value === "string" && (VIEWS as readonly string[]).includes(value);
