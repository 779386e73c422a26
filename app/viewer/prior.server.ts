import type { ExamDetail } from "../exams/exams.server";

/**
 * The prior exam to hang beside the current one: the most recent earlier exam of the same patient that has at least
 * one image (by exam date, then by when it was filed). `history` is the patient's exams, any order.
 */
export function priorExam(current: ExamDetail, history: readonly ExamDetail[]): ExamDetail | null {
  const earlier = history.filter(
    (e) => e.id !== current.id && e.patientId === current.patientId && e.images.length > 0 && (e.date < current.date || (e.date === current.date && e.createdAt < current.createdAt)),
  );
  earlier.sort((a, b) => (a.date === b.date ? b.createdAt.localeCompare(a.createdAt) : b.date.localeCompare(a.date)));
  return earlier[0] ?? null;
}
