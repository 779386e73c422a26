/**
 * What every structured report Nexus writes shares (the reading's Comprehensive SR, ./sr.server.ts, and the exam AI's
 * Mammography CAD SR, ./cad-sr.server.ts): coded concepts, content items, the patient/study/series/equipment and SR
 * document modules, the file meta information, and UIDs derived from Nexus's own ids (the same result always gets
 * the same SOP Instance UID, so a re-sent or re-downloaded report replaces itself instead of piling up at the PACS).
 */
import { createHash } from "node:crypto";
import dcmjs from "dcmjs";

const EXPLICIT_LE = "1.2.840.10008.1.2.1";
const IMPLEMENTATION_CLASS_UID = "2.25.229629856131424185409466263233520395837";

export interface CodedConcept {
  CodeValue: string;
  CodingSchemeDesignator: string;
  CodeMeaning: string;
}

export const code = (value: string, scheme: string, meaning: string): CodedConcept => ({
  CodeValue: value,
  CodingSchemeDesignator: scheme,
  CodeMeaning: meaning,
});

/** SNOMED CT, as DICOM names it. */
export const SCT = "SCT";
export const DCM = "DCM";
/** Nexus's own coding scheme (private: 99…). */
export const NEXUS_SCHEME = "99NEXUS";

export const BREAST = { R: code("73056007", SCT, "Right breast"), L: code("80248007", SCT, "Left breast") };
/** CID 244 / CID 6022 "Side". */
export const SIDE = { R: code("24028007", SCT, "Right"), L: code("7771000", SCT, "Left") };
export const LATERALITY = code("272741003", SCT, "Laterality");

export type SrItem = Record<string, unknown>;

/** One content item: relationship, value type, concept name, value attributes and children. */
export function item(relationship: string, valueType: string, concept: CodedConcept | null, value: SrItem = {}, children?: SrItem[]): SrItem {
  return {
    RelationshipType: relationship,
    ValueType: valueType,
    ...(concept ? { ConceptNameCodeSequence: [concept] } : {}),
    ...value,
    ...(children && children.length ? { ContentSequence: children } : {}),
  };
}

/** A NUM content item's value. */
export function numeric(value: number, unit: CodedConcept): SrItem {
  return { MeasuredValueSequence: [{ NumericValue: String(Number(value.toPrecision(6))), MeasurementUnitsCodeSequence: [unit] }] };
}

export const da = (d: Date) => d.toISOString().slice(0, 10).replace(/-/g, "");
export const tm = (d: Date) => d.toISOString().slice(11, 19).replace(/:/g, "");
export const dicomDate = (iso: string | null | undefined) => (iso ? iso.replace(/-/g, "") : "");

/** A UID under 2.25 (PS3.5 B.2) derived from `parts`: the same parts always give the same UID. */
export function derivedUid(...parts: string[]): string {
  const digest = createHash("sha256").update(parts.join("\u0000")).digest();
  // 128 bits shaped as a UUID (version 8, RFC 9562's variant), written as one decimal integer.
  digest[6] = (digest[6]! & 0x0f) | 0x80;
  digest[8] = (digest[8]! & 0x3f) | 0x80;
  return `2.25.${BigInt(`0x${digest.subarray(0, 16).toString("hex")}`).toString(10)}`;
}

const PREFIXES = /^(dr|pr|mme|mlle|m\.?)$/i;

/**
 * A display name ("Dr Claire Martin") as a DICOM PN ("Martin^Claire^^Dr"): the last word as family name, the words
 * before it as given names, a leading title as prefix. A value that already has `^` is kept.
 */
export function personName(display: string): string {
  if (display.includes("^")) return display;
  const words = display.trim().split(/\s+/).filter(Boolean);
  const prefix = words.length > 1 && PREFIXES.test(words[0]!) ? words.shift()! : "";
  if (words.length === 0) return "";
  const family = words.pop()!;
  const name = [family, words.join(" "), "", prefix];
  while (name.length > 1 && name[name.length - 1] === "") name.pop();
  return name.join("^").slice(0, 320);
}

export interface SrPatient {
  /** DICOM PN (`FAMILY^GIVEN`). */
  name: string;
  id: string;
  birthDate?: string | null;
  sex?: string | null;
}

export interface SrStudy {
  studyInstanceUid: string;
  accessionNumber?: string | null;
  /** ISO date. */
  date?: string | null;
}

export interface SrDocument {
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  seriesNumber: string;
  patient: SrPatient;
  study: SrStudy;
  /** When the content was completed. */
  at: Date;
  /** The root container's concept name. */
  title: CodedConcept;
  /** Content Template Sequence of the root (e.g. TID 4000), when the IOD asks for one. */
  template?: string;
  completion: "COMPLETE" | "PARTIAL";
  content: SrItem[];
  /** The instances the content references (Current Requested Procedure Evidence Sequence), all of this study. */
  evidence?: { seriesInstanceUid: string; sopClassUid: string; sopInstanceUid: string }[];
}

/** Evidence grouped by series, as the Hierarchical SOP Instance Reference Macro wants it. */
function evidenceSequence(study: string, evidence: NonNullable<SrDocument["evidence"]>) {
  const series = [...new Set(evidence.map((e) => e.seriesInstanceUid))];
  return [
    {
      StudyInstanceUID: study,
      ReferencedSeriesSequence: series.map((uid) => ({
        SeriesInstanceUID: uid,
        ReferencedSOPSequence: evidence
          .filter((e) => e.seriesInstanceUid === uid)
          .map((e) => ({ ReferencedSOPClassUID: e.sopClassUid, ReferencedSOPInstanceUID: e.sopInstanceUid })),
      })),
    },
  ];
}

/**
 * Patient, General Study, SR Document Series, General Equipment and SR Document General/Content modules, and the
 * file meta information: the SR as a DICOM Part 10 file (Explicit VR Little Endian).
 */
export function srFile(doc: SrDocument): Buffer {
  const dataset: Record<string, unknown> = {
    SpecificCharacterSet: "ISO_IR 192",
    SOPClassUID: doc.sopClassUid,
    SOPInstanceUID: doc.sopInstanceUid,
    InstanceCreationDate: da(doc.at),
    InstanceCreationTime: tm(doc.at),
    StudyDate: dicomDate(doc.study.date),
    ContentDate: da(doc.at),
    StudyTime: "",
    ContentTime: tm(doc.at),
    AccessionNumber: doc.study.accessionNumber ?? "",
    Modality: "SR",
    Manufacturer: "Nexus",
    ReferringPhysicianName: "",
    PatientName: personName(doc.patient.name),
    PatientID: doc.patient.id,
    PatientBirthDate: dicomDate(doc.patient.birthDate),
    PatientSex: doc.patient.sex === "U" ? "O" : (doc.patient.sex ?? ""),
    StudyInstanceUID: doc.study.studyInstanceUid,
    SeriesInstanceUID: doc.seriesInstanceUid,
    StudyID: "",
    SeriesNumber: doc.seriesNumber,
    InstanceNumber: "1",
    ReferencedPerformedProcedureStepSequence: [],
    PerformedProcedureCodeSequence: [],
    ValueType: "CONTAINER",
    ConceptNameCodeSequence: [doc.title],
    ...(doc.template ? { ContentTemplateSequence: [{ MappingResource: "DCMR", TemplateIdentifier: doc.template }] } : {}),
    ContinuityOfContent: "SEPARATE",
    CompletionFlag: doc.completion,
    VerificationFlag: "UNVERIFIED",
    ...(doc.evidence?.length ? { CurrentRequestedProcedureEvidenceSequence: evidenceSequence(doc.study.studyInstanceUid, doc.evidence) } : {}),
    ContentSequence: doc.content,
  };
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: doc.sopClassUid,
    MediaStorageSOPInstanceUID: doc.sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_LE,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: "NEXUS_SR",
  };
  const dict = new dcmjs.data.DicomDict(dcmjs.data.DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(dict.write());
}
