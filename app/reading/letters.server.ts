/** The data behind a result letter, gathered from the record; rendering is ./letter.server.ts (pdf-lib). */
import { and, desc, eq, isNull } from "drizzle-orm";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { images, patients, predictions } from "../db/schema";
import { HttpError } from "../http/errors.server";
import { renderPatientLetter, renderReferrerReport, type LetterData, type ReferrerData } from "./letter.server";
import { allReadings, type ExamRef } from "./readings.server";
import { isFinal } from "./workflow";

export const LETTER_NOT_FINAL = "Le résultat de cet examen n'est pas encore définitif : le courrier sera disponible après la double lecture.";

async function letterData(exam: ExamRef): Promise<LetterData> {
  if (!isFinal(exam.status)) throw new HttpError(409, "not_final", LETTER_NOT_FINAL);
  const [patient] = await db
    .select({ displayName: patients.displayName, birthDate: patients.birthDate, ipp: patients.ipp })
    .from(patients)
    .where(eq(patients.id, exam.patientId));
  if (!patient) throw new HttpError(404, "not_found", "Examen introuvable.");
  const readings = await allReadings(exam.id);
  return {
    centre: { name: config.LETTER_CENTRE_NAME, phone: config.LETTER_CENTRE_PHONE },
    patient,
    exam: { date: exam.date, accessionNumber: exam.accessionNumber, status: exam.status as LetterData["exam"]["status"] },
    readings: readings.map((r) => ({
      kind: r.kind,
      readerName: r.reader.name,
      at: new Date(r.createdAt),
      technicallyInadequate: r.technicallyInadequate,
      breasts: r.breasts,
      findings: r.findings,
      conclusion: r.conclusion,
    })),
    generatedAt: new Date(),
  };
}

/** The latest model that read the exam's views, and the exam score (the highest view of that model's latest run). */
async function examAi(examId: string): Promise<ReferrerData["ai"]> {
  const rows = await db
    .select({
      imageId: predictions.imageId,
      probability: predictions.probability,
      modelName: predictions.modelName,
      modelVersion: predictions.modelVersion,
      clinical: predictions.modelClinical,
    })
    .from(predictions)
    .innerJoin(images, eq(images.id, predictions.imageId))
    .where(and(eq(images.examId, examId), isNull(images.erasedAt), isNull(predictions.erasedAt)))
    .orderBy(desc(predictions.createdAt));
  const latest = rows[0];
  if (!latest) return null;
  const seen = new Set<string>();
  let examProbability = 0;
  for (const r of rows) {
    if (r.modelName !== latest.modelName || r.modelVersion !== latest.modelVersion || seen.has(r.imageId)) continue;
    seen.add(r.imageId);
    examProbability = Math.max(examProbability, r.probability);
  }
  return { modelName: latest.modelName, modelVersion: latest.modelVersion, clinical: latest.clinical, examProbability };
}

/** The woman's letter (no model output of any kind). 409 before the result is final. */
export async function patientLetter(exam: ExamRef): Promise<Uint8Array> {
  return renderPatientLetter(await letterData(exam));
}

/** The referring doctor's report, with the AI model and its status. 409 before the result is final. */
export async function referrerReport(exam: ExamRef): Promise<Uint8Array> {
  const data = await letterData(exam);
  return renderReferrerReport({ ...data, ai: await examAi(exam.id) });
}

export function pdfResponse(bytes: Uint8Array, fileName: string): Response {
  return new Response(Buffer.from(bytes), {
    headers: {
      "Content-Type": "application/pdf",
      "Content-Disposition": `attachment; filename="${fileName}"`,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    },
  });
}
