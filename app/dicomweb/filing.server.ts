/**
 * Files a stored DICOM image in its exam: the exam of the same patient with the same StudyInstanceUID, created on
 * first arrival (date = StudyDate, accession = AccessionNumber), and the image's DICOM identifiers, laterality and
 * view (docs/decisions/2026-11-30-exam-model.md).
 */
import { and, eq } from "drizzle-orm";
import { db } from "../db/db.server";
import { exams, images } from "../db/schema";
import type { DicomHeaders } from "../exams/dicom-header.server";

const isoDate = (da: string | undefined) => (da && /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : null);

export async function fileDicomImage(
  imageId: string,
  patientId: string,
  actorId: string,
  headers: DicomHeaders,
  identityNotice: string | null,
): Promise<{ examId: string }> {
  const { exam } = headers;
  const studyInstanceUid = exam.studyInstanceUid!;
  await db
    .insert(exams)
    .values({
      patientId,
      studyInstanceUid,
      date: isoDate(exam.studyDate) ?? new Date().toISOString().slice(0, 10),
      accessionNumber: exam.accessionNumber ?? null,
      createdBy: actorId,
    })
    .onConflictDoNothing();
  const [row] = await db
    .select({ id: exams.id })
    .from(exams)
    .where(and(eq(exams.patientId, patientId), eq(exams.studyInstanceUid, studyInstanceUid)));
  await db
    .update(images)
    .set({
      examId: row!.id,
      laterality: exam.laterality ?? null,
      view: exam.view ?? null,
      studyInstanceUid,
      seriesInstanceUid: exam.seriesInstanceUid ?? null,
      sopInstanceUid: exam.sopInstanceUid ?? null,
      sopClassUid: exam.sopClassUid ?? null,
      modality: exam.modality ?? null,
      presentationIntent: exam.presentationIntent ?? null,
      identityNotice,
    })
    .where(eq(images.id, imageId));
  return { examId: row!.id };
}
