/**
 * The final reading as a DICOM Comprehensive SR (1.2.840.10008.5.1.4.1.1.88.33): per breast, the ACR (BI-RADS)
 * assessment category and the breast density, in the patient's study, so that it goes back to the PACS where
 * radiologists read. Written with dcmjs; validated with dciodvfy (dicom3tools) and shown by dsrdump (DCMTK) in the tests.
 * The input is a plain type (the reading model lives in app/reading/ once merged).
 */
import dcmjs from "dcmjs";

export const COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33";
const EXPLICIT_LE = "1.2.840.10008.1.2.1";

export type Acr = 0 | 1 | 2 | 3 | 4 | 5;
export type Density = "A" | "B" | "C" | "D";

export interface ReadingSrInput {
  patient: { name: string; id: string; birthDate?: string | null; sex?: string | null };
  study: { studyInstanceUid: string; accessionNumber?: string | null; date?: string | null };
  reader: string;
  breasts: { R: { acr: Acr; density: Density }; L: { acr: Acr; density: Density } };
  conclusion?: string | null;
  /** When the reading was completed. */
  at: Date;
}

const code = (value: string, scheme: string, meaning: string) => ({ CodeValue: value, CodingSchemeDesignator: scheme, CodeMeaning: meaning });

/** SNOMED CT, as DICOM names it. */
const SCT = "SCT";
const BREAST = { R: code("73056007", SCT, "Right breast"), L: code("80248007", SCT, "Left breast") };
const DENSITY: Record<Density, ReturnType<typeof code>> = {
  A: code("129716005", SCT, "Almost entirely fat"),
  B: code("129717001", SCT, "Scattered fibroglandular densities"),
  C: code("129718006", SCT, "Heterogeneously dense"),
  D: code("129719003", SCT, "Extremely dense"),
};
/** ACR/BI-RADS categories: Nexus's own coding scheme (the French wording of the reports). */
const ACR_SCHEME = "99NEXUS";
const ACR_MEANING = ["ACR 0 - incomplete", "ACR 1 - negative", "ACR 2 - benign", "ACR 3 - probably benign", "ACR 4 - suspicious", "ACR 5 - highly suggestive of malignancy"];

const da = (d: Date) => d.toISOString().slice(0, 10).replace(/-/g, "");
const tm = (d: Date) => d.toISOString().slice(11, 19).replace(/:/g, "");
const dicomDate = (iso: string | null | undefined) => (iso ? iso.replace(/-/g, "") : "");

function item(relationship: string, valueType: string, concept: ReturnType<typeof code>, value: Record<string, unknown> = {}, children?: unknown[]) {
  return {
    RelationshipType: relationship,
    ValueType: valueType,
    ConceptNameCodeSequence: [concept],
    ...value,
    ...(children ? { ContentSequence: children } : {}),
  };
}

/** The SR as a DICOM Part 10 file (Explicit VR Little Endian). */
export function readingSr(input: ReadingSrInput): Buffer {
  const uid = () => dcmjs.data.DicomMetaDictionary.uid();
  const sopInstanceUid = uid();
  const breast = (side: "R" | "L") =>
    item("CONTAINS", "CONTAINER", code("111402", "DCM", "Clinical Findings"), { ContinuityOfContent: "SEPARATE" }, [
      item("HAS CONCEPT MOD", "CODE", code("363698007", SCT, "Finding site"), { ConceptCodeSequence: [BREAST[side]] }),
      item("CONTAINS", "CODE", code("129715009", SCT, "Breast composition"), { ConceptCodeSequence: [DENSITY[input.breasts[side].density]] }),
      item("CONTAINS", "CODE", code("111037", "DCM", "Assessment Category"), {
        ConceptCodeSequence: [code(`ACR${input.breasts[side].acr}`, ACR_SCHEME, ACR_MEANING[input.breasts[side].acr]!)],
      }),
    ]);
  const content = [
    item("HAS OBS CONTEXT", "PNAME", code("121008", "DCM", "Person Observer Name"), { PersonName: input.reader }),
    breast("R"),
    breast("L"),
    ...(input.conclusion ? [item("CONTAINS", "TEXT", code("121076", "DCM", "Conclusion"), { TextValue: input.conclusion.slice(0, 10_000) })] : []),
  ];
  const dataset: Record<string, unknown> = {
    SpecificCharacterSet: "ISO_IR 192",
    SOPClassUID: COMPREHENSIVE_SR,
    SOPInstanceUID: sopInstanceUid,
    StudyDate: dicomDate(input.study.date),
    ContentDate: da(input.at),
    StudyTime: "",
    ContentTime: tm(input.at),
    AccessionNumber: input.study.accessionNumber ?? "",
    Modality: "SR",
    Manufacturer: "Nexus",
    ReferringPhysicianName: "",
    PatientName: input.patient.name,
    PatientID: input.patient.id,
    PatientBirthDate: dicomDate(input.patient.birthDate),
    PatientSex: input.patient.sex === "U" ? "O" : (input.patient.sex ?? ""),
    StudyInstanceUID: input.study.studyInstanceUid,
    SeriesInstanceUID: uid(),
    StudyID: "",
    SeriesNumber: "900",
    InstanceNumber: "1",
    ReferencedPerformedProcedureStepSequence: [],
    PerformedProcedureCodeSequence: [],
    ValueType: "CONTAINER",
    ConceptNameCodeSequence: [code("18748-4", "LN", "Diagnostic imaging report")],
    ContinuityOfContent: "SEPARATE",
    CompletionFlag: "COMPLETE",
    VerificationFlag: "UNVERIFIED",
    ContentSequence: content,
  };
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: COMPREHENSIVE_SR,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_LE,
    ImplementationClassUID: "2.25.229629856131424185409466263233520395837",
    ImplementationVersionName: "NEXUS_SR",
  };
  const dict = new dcmjs.data.DicomDict(dcmjs.data.DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(dict.write());
}
