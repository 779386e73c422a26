/** Synthetic four-view screening exams (the project's DICOM writer with real tags) uploaded through the API. */
import { randomInt } from "node:crypto";
import { screeningAttributes, writeDicom } from "../../app/imaging/dicom-writer";
import { baseUrl } from "./http";

export interface Identity {
  id: string;
  name: string;
  birthDate: string;
  sex?: string;
}

/** The demo patient's identity as her DICOM headers carry it (app/accounts/demo.server.ts). */
export const DEMO_IDENTITY: Identity = { id: "NEX-000001", name: "DUPONT^CAMILLE", birthDate: "19680514", sex: "F" };

export const newStudyUid = () => `1.2.826.0.1.3680043.10.999.${Date.now()}.${randomInt(1_000_000_000)}`;

export function screeningView(identity: Identity, studyInstanceUid: string, laterality: "R" | "L", view: string, size = 32): Uint8Array {
  const pixels = Array.from({ length: size * size }, () => randomInt(4096));
  return writeDicom({
    rows: size,
    columns: size,
    pixels,
    bitsAllocated: 16,
    bitsStored: 12,
    sopInstanceUid: `${studyInstanceUid}.${laterality === "R" ? 1 : 2}.${view.length}${randomInt(1_000_000)}`,
    attributes: screeningAttributes({
      patient: { id: identity.id, name: identity.name, birthDate: identity.birthDate, sex: identity.sex },
      studyInstanceUid,
      studyDate: "20261130",
      accessionNumber: `ACC${randomInt(1_000_000)}`,
      laterality,
      view,
    }),
  });
}

export const FOUR_VIEWS = [
  ["R", "CC"],
  ["L", "CC"],
  ["R", "MLO"],
  ["L", "MLO"],
] as const;

/** Uploads one DICOM file; the raw response. */
export async function uploadDicom(token: string, patientId: string, bytes: Uint8Array, name = "vue.dcm"): Promise<Response> {
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(bytes)], { type: "application/dicom" }), name);
  return fetch(`${baseUrl()}/api/v1/patients/${patientId}/images`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
}

/** Uploads the four standard views of a new study; the exam id. */
export async function uploadExam(token: string, patientId: string, identity: Identity = DEMO_IDENTITY, views = FOUR_VIEWS): Promise<string> {
  const study = newStudyUid();
  let examId = "";
  for (const [laterality, view] of views) {
    const res = await uploadDicom(token, patientId, screeningView(identity, study, laterality, view), `${laterality}-${view}.dcm`);
    if (res.status !== 201) throw new Error(`exam upload failed: ${res.status} ${await res.text()}`);
    examId = ((await res.json()) as { examId: string }).examId;
  }
  return examId;
}
