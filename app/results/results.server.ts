/**
 * Results out (issue 17.4): a final exam's result as the hospital's systems take it — the reading as a Comprehensive
 * SR, the exam AI as a Mammography CAD SR (app/dicomweb/), and the FHIR R4 Bundle (./fhir.server.ts). Everything is
 * rebuilt from the database on request: no report is stored anywhere, and the same result always gives the same SOP
 * Instance UIDs (derived from the reading's and the predictions' ids).
 */
import { and, asc, eq, isNull } from "drizzle-orm";
import { cadSr, hasViewCode } from "../dicomweb/cad-sr.server";
import { derivedUid } from "../dicomweb/sr-common.server";
import { readingSr, type Acr, type Density } from "../dicomweb/sr.server";
import { db } from "../db/db.server";
import { images, patients } from "../db/schema";
import { latestExamAi, type ExamAi } from "../exams/exam-ai.server";
import { getExam, type ExamDetail } from "../exams/exams.server";
import { HttpError } from "../http/errors.server";
import { allReadings, type ReadingView } from "../reading/readings.server";
import { isFinal } from "../reading/workflow";

export interface PatientFacts {
  id: string;
  displayName: string;
  ipp: string | null;
  ins: string | null;
  birthDate: string | null;
  sex: string | null;
  erased: boolean;
}

export interface InstanceFacts {
  imageId: string;
  sopClassUid: string | null;
  sopInstanceUid: string | null;
  seriesInstanceUid: string | null;
  modality: string | null;
  laterality: string | null;
  view: string | null;
}

export interface FinalResult {
  exam: ExamDetail;
  patient: PatientFacts;
  readings: ReadingView[];
  /** The reading that made the result final. */
  final: ReadingView;
  instances: InstanceFacts[];
}

export const notFinal = () => new HttpError(409, "not_final", "Le résultat de cet examen n'est pas encore définitif.");

/** The exam's final result, or 409 `not_final` (404 when there is no such exam). */
export async function finalResult(examId: string): Promise<FinalResult> {
  const exam = await getExam(examId);
  if (!exam) throw new HttpError(404, "not_found", "Examen introuvable.");
  if (!isFinal(exam.status)) throw notFinal();
  const readings = await allReadings(examId);
  const final = [...readings].reverse().find((r) => isFinal(r.examStatus));
  if (!final) throw notFinal();
  const [patient] = await db
    .select({
      id: patients.id,
      displayName: patients.displayName,
      ipp: patients.ipp,
      ins: patients.ins,
      birthDate: patients.birthDate,
      sex: patients.sex,
      erasedAt: patients.erasedAt,
    })
    .from(patients)
    .where(eq(patients.id, exam.patientId));
  const instances = await db
    .select({
      imageId: images.id,
      sopClassUid: images.sopClassUid,
      sopInstanceUid: images.sopInstanceUid,
      seriesInstanceUid: images.seriesInstanceUid,
      modality: images.modality,
      laterality: images.laterality,
      view: images.view,
    })
    .from(images)
    .where(and(eq(images.examId, examId), isNull(images.erasedAt)))
    .orderBy(asc(images.createdAt), asc(images.id));
  const { erasedAt, ...rest } = patient!;
  return { exam, patient: { ...rest, erased: erasedAt !== null }, readings, final, instances };
}

const srPatient = (p: PatientFacts) => ({ name: p.displayName, id: p.ipp ?? p.id, birthDate: p.birthDate, sex: p.sex });
const srStudy = (e: ExamDetail) => ({ studyInstanceUid: e.studyInstanceUid, accessionNumber: e.accessionNumber, date: e.date });

export interface BuiltSr {
  bytes: Buffer;
  sopInstanceUid: string;
}

/** The final reading as a Comprehensive SR. */
export function buildReadingSr(result: FinalResult): BuiltSr {
  const { final, exam } = result;
  const sopInstanceUid = derivedUid("nexus:reading-sr", final.id);
  const bytes = readingSr({
    patient: srPatient(result.patient),
    study: srStudy(exam),
    reader: final.reader.name,
    breasts: final.breasts
      ? {
          R: { acr: final.breasts.R.acr as Acr, density: final.breasts.R.density as Density },
          L: { acr: final.breasts.L.acr as Acr, density: final.breasts.L.density as Density },
        }
      : null,
    conclusion: final.conclusion,
    at: new Date(final.createdAt),
    sopInstanceUid,
    seriesInstanceUid: derivedUid("nexus:reading-sr-series", exam.id),
  });
  return { bytes, sopInstanceUid };
}

export const noAi = () => new HttpError(404, "no_ai_result", "Aucune analyse IA de cet examen ne porte sur des images DICOM.");

/** The views of the latest exam AI that can be referenced in a CAD SR (DICOM instances with a mammography view code). */
export function cadViews(ai: ExamAi, instances: InstanceFacts[]) {
  const byId = new Map(instances.map((i) => [i.imageId, i]));
  return ai.views
    .map((v) => ({ v, i: byId.get(v.imageId) }))
    .filter(({ v, i }) => i?.sopInstanceUid && i.sopClassUid && i.seriesInstanceUid && hasViewCode(v.view))
    .map(({ v, i }) => ({
      predictionId: v.predictionId,
      seriesInstanceUid: i!.seriesInstanceUid!,
      sopClassUid: i!.sopClassUid!,
      sopInstanceUid: i!.sopInstanceUid!,
      laterality: v.laterality,
      view: v.view,
      score: v.probability,
    }));
}

/** The latest exam AI as a Mammography CAD SR; null when the AI never read a DICOM view of the exam. */
export async function buildCadSr(result: FinalResult): Promise<BuiltSr | null> {
  const ai = await latestExamAi(result.exam);
  if (!ai) return null;
  const views = cadViews(ai, result.instances);
  if (views.length === 0) return null;
  const sopInstanceUid = derivedUid("nexus:cad-sr", ...views.map((v) => v.predictionId).sort());
  const bytes = cadSr({
    patient: srPatient(result.patient),
    study: srStudy(result.exam),
    algorithm: ai.model,
    views,
    at: new Date(ai.createdAt),
    sopInstanceUid,
    seriesInstanceUid: derivedUid("nexus:cad-sr-series", result.exam.id),
  });
  return { bytes, sopInstanceUid };
}

/** A DICOM file as a download (`application/dicom`, never cached). */
export function dicomResponse(sr: BuiltSr, name: string): Response {
  return new Response(new Uint8Array(sr.bytes), {
    headers: {
      "Content-Type": "application/dicom",
      "Content-Length": String(sr.bytes.length),
      "Content-Disposition": `attachment; filename="${name}"`,
      "Cache-Control": "no-store",
    },
  });
}
