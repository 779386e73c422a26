/**
 * What an arriving DICOM says about whose image it is and where it belongs: the identity attributes (for the
 * identity check only, never stored) and the exam attributes (study/series/SOP identifiers, laterality, view,
 * presentation intent). Read from the first bytes of the file (the header precedes the pixel data).
 */
import dicomParser, { type DataSet } from "dicom-parser";
import type { Laterality, View } from "./views";
import type { IdentityHeaders } from "./identity.server";

export interface ExamHeaders {
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  sopClassUid?: string;
  modality?: string;
  /** `YYYYMMDD`. */
  studyDate?: string;
  accessionNumber?: string;
  /** (0008,0068) `FOR PRESENTATION` / `FOR PROCESSING`. */
  presentationIntent?: string;
  laterality?: Laterality;
  view?: View;
}

export interface DicomHeaders {
  identity: IdentityHeaders;
  exam: ExamHeaders;
}

/**
 * SNOMED CT codes (and their SNOMED-RT legacy values) of DICOM CID 4014 "View for Mammography" and, for SPOT and
 * MAG, of CID 4015 "View Modifier for Mammography".
 */
const VIEW_CODES: Record<string, View> = {
  "399162004": "CC",
  "R-10242": "CC",
  "399368009": "MLO",
  "R-10226": "MLO",
  "399260004": "ML",
  "R-10224": "ML",
  "399352003": "LM",
  "R-10228": "LM",
  "399192008": "XCCL",
  "R-1024A": "XCCL",
  "399163009": "MAG",
  "R-102D6": "MAG",
  "399055006": "SPOT",
  "R-102D7": "SPOT",
};

/** ViewPosition values met in the wild, to the views of the exam model. */
const VIEW_POSITIONS: Record<string, View> = {
  CC: "CC",
  MLO: "MLO",
  ML: "ML",
  LM: "LM",
  XCCL: "XCCL",
  SPOT: "SPOT",
  MAG: "MAG",
  RCC: "CC",
  LCC: "CC",
  RMLO: "MLO",
  LMLO: "MLO",
};

const UTF8_CHARSET = "ISO_IR 192";

function parse(bytes: Uint8Array): DataSet | undefined {
  try {
    return dicomParser.parseDicom(bytes, { untilTag: "x7fe00010" });
  } catch (error) {
    if (typeof error === "object" && error !== null && "dataSet" in error) return (error as { dataSet: DataSet }).dataSet;
    return undefined;
  }
}

function reader(dataSet: DataSet) {
  const utf8 = (safe(() => dataSet.string("x00080005")) ?? "").includes(UTF8_CHARSET);
  const text = (tag: string): string | undefined => {
    const element = dataSet.elements[tag];
    if (!element || element.length === 0) return undefined;
    if (utf8 && element.dataOffset + element.length <= dataSet.byteArray.length) {
      const raw = Buffer.from(dataSet.byteArray.buffer, dataSet.byteArray.byteOffset + element.dataOffset, element.length);
      return raw.toString("utf8").replace(/[\0 ]+$/, "").trim() || undefined;
    }
    return safe(() => dataSet.string(tag))?.trim() || undefined;
  };
  return text;
}

function safe<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** The view from ViewPosition, else from the first item of ViewCodeSequence (then its modifier sequence). */
function viewOf(dataSet: DataSet, text: (tag: string) => string | undefined): View | undefined {
  const position = text("x00185101")?.toUpperCase().replace(/\s+/g, "");
  if (position && VIEW_POSITIONS[position]) return VIEW_POSITIONS[position];
  const item = dataSet.elements.x00540220?.items?.[0]?.dataSet;
  if (!item) return undefined;
  const code = safe(() => item.string("x00080100"))?.trim();
  const modifier = safe(() => item.elements.x00540222?.items?.[0]?.dataSet?.string("x00080100"))?.trim();
  const modified = modifier ? VIEW_CODES[modifier] : undefined;
  if (modified === "SPOT" || modified === "MAG") return modified;
  return code ? VIEW_CODES[code] : undefined;
}

function lateralityOf(text: (tag: string) => string | undefined): Laterality | undefined {
  const value = (text("x00200062") || text("x00200060"))?.toUpperCase();
  return value === "R" || value === "L" ? value : undefined;
}

/** Reads the identity and exam attributes; an unreadable header yields empty objects (the vault refuses it anyway). */
export function readDicomHeaders(head: Uint8Array): DicomHeaders {
  const dataSet = parse(head);
  if (!dataSet) return { identity: {}, exam: {} };
  const text = reader(dataSet);
  const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return {
    identity: defined({
      patientId: text("x00100020"),
      issuerOfPatientId: text("x00100021"),
      patientName: text("x00100010"),
      patientBirthDate: text("x00100030"),
      patientSex: text("x00100040"),
    }),
    exam: defined({
      studyInstanceUid: text("x0020000d")?.replace(/\0/g, ""),
      seriesInstanceUid: text("x0020000e")?.replace(/\0/g, ""),
      sopInstanceUid: text("x00080018")?.replace(/\0/g, ""),
      sopClassUid: text("x00080016")?.replace(/\0/g, ""),
      modality: text("x00080060"),
      studyDate: text("x00080020"),
      accessionNumber: text("x00080050"),
      presentationIntent: text("x00080068")?.toUpperCase(),
      laterality: lateralityOf(text),
      view: viewOf(dataSet, text),
    }),
  };
}
