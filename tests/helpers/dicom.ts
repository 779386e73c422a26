/**
 * Mammography DICOM instances written with dcmjs (not the project's own writer): Digital Mammography X-Ray Image
 * Storage – For Presentation, 12 bits stored in 16, Explicit VR Little Endian, with the patient, study, series,
 * laterality and view a modality would put there.
 */
import { randomInt } from "node:crypto";
import dcmjs from "dcmjs";

export const MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2";
export const EXPLICIT_LE = "1.2.840.10008.1.2.1";

export const uid = () => dcmjs.data.DicomMetaDictionary.uid();

export interface MgOptions {
  patientId: string;
  patientName: string;
  birthDate?: string;
  sex?: string;
  issuerOfPatientId?: string;
  studyInstanceUid: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  laterality?: "R" | "L";
  view?: "CC" | "MLO";
  studyDate?: string;
  accessionNumber?: string;
  rows?: number;
  columns?: number;
}

export function mammogram(o: MgOptions): Buffer {
  const rows = o.rows ?? 64;
  const columns = o.columns ?? 48;
  const pixels = new Uint16Array(rows * columns);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + randomInt(256)) & 0x0fff;
  const sopInstanceUid = o.sopInstanceUid ?? uid();
  const dataset: Record<string, unknown> = {
    SpecificCharacterSet: "ISO_IR 192",
    SOPClassUID: MG_FOR_PRESENTATION,
    SOPInstanceUID: sopInstanceUid,
    StudyDate: o.studyDate ?? "20261130",
    StudyTime: "101500",
    AccessionNumber: o.accessionNumber ?? "",
    Modality: "MG",
    PresentationIntentType: "FOR PRESENTATION",
    Manufacturer: "Nexus tests",
    ReferringPhysicianName: "",
    PatientName: o.patientName,
    PatientID: o.patientId,
    ...(o.issuerOfPatientId ? { IssuerOfPatientID: o.issuerOfPatientId } : {}),
    PatientBirthDate: o.birthDate ?? "",
    PatientSex: o.sex ?? "F",
    ViewPosition: o.view ?? "CC",
    StudyInstanceUID: o.studyInstanceUid,
    SeriesInstanceUID: o.seriesInstanceUid ?? uid(),
    StudyID: "1",
    SeriesNumber: "1",
    InstanceNumber: "1",
    ImageLaterality: o.laterality ?? "R",
    SamplesPerPixel: 1,
    PhotometricInterpretation: "MONOCHROME2",
    Rows: rows,
    Columns: columns,
    BitsAllocated: 16,
    BitsStored: 12,
    HighBit: 11,
    PixelRepresentation: 0,
    PixelData: [pixels.buffer],
  };
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: MG_FOR_PRESENTATION,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_LE,
    ImplementationClassUID: "2.25.80302813137786398554742050926734630921",
  };
  const dict = new dcmjs.data.DicomDict(dcmjs.data.DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset);
  // dcmjs types the pixel data from the naturalised value: make it OW explicitly.
  dict.dict["7FE00010"] = { vr: "OW", Value: [pixels.buffer] };
  return Buffer.from(dict.write());
}

/** A STOW-RS body: `multipart/related; type="application/dicom"` with one part per instance. */
export function stowBody(parts: (Buffer | { type: string; bytes: Buffer })[], boundary = `b-${randomInt(1e9)}`) {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const { type, bytes } = Buffer.isBuffer(p) ? { type: "application/dicom", bytes: p } : p;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${type}\r\n\r\n`), bytes, Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}
