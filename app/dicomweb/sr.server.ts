/**
 * The final reading as a DICOM Comprehensive SR (1.2.840.10008.5.1.4.1.1.88.33): per breast, the ACR (BI-RADS)
 * assessment category and the breast density, in the patient's study, so that it goes back to the PACS where
 * radiologists read. Written with dcmjs (the shared modules are ./sr-common.server.ts); validated with dciodvfy
 * (dicom3tools) and shown by dsrdump (DCMTK) in the tests. app/results/ builds the input from a final exam.
 */
import dcmjs from "dcmjs";
import { BREAST, code, DCM, item, NEXUS_SCHEME, personName, SCT, srFile, type CodedConcept, type SrPatient, type SrStudy } from "./sr-common.server";

export const COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33";

export type Acr = 0 | 1 | 2 | 3 | 4 | 5;
export type Density = "A" | "B" | "C" | "D";

export interface ReadingSrInput {
  patient: SrPatient;
  study: SrStudy;
  /** The reader of the final reading (DICOM PN or a plain name). */
  reader: string;
  /** Null when the images were technically inadequate (technical recall): no assessment per breast. */
  breasts: { R: { acr: Acr; density: Density }; L: { acr: Acr; density: Density } } | null;
  conclusion?: string | null;
  /** When the reading was completed. */
  at: Date;
  /** Stable identifiers (app/results derives them from the reading's id); random when absent. */
  sopInstanceUid?: string;
  seriesInstanceUid?: string;
}

const DENSITY: Record<Density, CodedConcept> = {
  A: code("129716005", SCT, "Almost entirely fat"),
  B: code("129717001", SCT, "Scattered fibroglandular densities"),
  C: code("129718006", SCT, "Heterogeneously dense"),
  D: code("129719003", SCT, "Extremely dense"),
};
/** ACR/BI-RADS categories: Nexus's own coding scheme (the French wording of the reports). */
const ACR_MEANING = ["ACR 0 - incomplete", "ACR 1 - negative", "ACR 2 - benign", "ACR 3 - probably benign", "ACR 4 - suspicious", "ACR 5 - highly suggestive of malignancy"];
export const acrCode = (acr: Acr) => code(`ACR${acr}`, NEXUS_SCHEME, ACR_MEANING[acr]!);

/** The SR as a DICOM Part 10 file (Explicit VR Little Endian). */
export function readingSr(input: ReadingSrInput): Buffer {
  const breast = (side: "R" | "L", b: { acr: Acr; density: Density }) =>
    item("CONTAINS", "CONTAINER", code("111402", DCM, "Clinical Findings"), { ContinuityOfContent: "SEPARATE" }, [
      item("HAS CONCEPT MOD", "CODE", code("363698007", SCT, "Finding site"), { ConceptCodeSequence: [BREAST[side]] }),
      item("CONTAINS", "CODE", code("129715009", SCT, "Breast composition"), { ConceptCodeSequence: [DENSITY[b.density]] }),
      item("CONTAINS", "CODE", code("111005", DCM, "Assessment Category"), { ConceptCodeSequence: [acrCode(b.acr)] }),
    ]);
  const conclusion = input.breasts
    ? input.conclusion
    : [input.conclusion, "Technically inadequate images: new images are needed."].filter(Boolean).join("\n");
  const content = [
    item("HAS OBS CONTEXT", "PNAME", code("121008", DCM, "Person Observer Name"), { PersonName: personName(input.reader) }),
    ...(input.breasts ? [breast("R", input.breasts.R), breast("L", input.breasts.L)] : []),
    ...(conclusion ? [item("CONTAINS", "TEXT", code("121076", DCM, "Conclusion"), { TextValue: conclusion.slice(0, 10_000) })] : []),
  ];
  return srFile({
    sopClassUid: COMPREHENSIVE_SR,
    sopInstanceUid: input.sopInstanceUid ?? dcmjs.data.DicomMetaDictionary.uid(),
    seriesInstanceUid: input.seriesInstanceUid ?? dcmjs.data.DicomMetaDictionary.uid(),
    seriesNumber: "900",
    patient: input.patient,
    study: input.study,
    at: input.at,
    title: code("18748-4", "LN", "Diagnostic imaging report"),
    completion: "COMPLETE",
    content,
  });
}
