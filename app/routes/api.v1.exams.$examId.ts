import type { LoaderFunctionArgs } from "@remix-run/node";
import { latestExamAi } from "../exams/exam-ai.server";
import { examPatientId, getExam } from "../exams/exams.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { authorize } from "../policy/policy.server";

/**
 * GET /api/v1/exams/:examId — a doctor of the patient (care consent live): `{id, patientId, date, accessionNumber?,
 * status, complete, missing, views:[{imageId, laterality, view, …}], ai?}`. An unknown exam is refused like a
 * forbidden one (403), never revealed.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const examId = idParam(ctx, args.params.examId);
  const patientId = await examPatientId(examId);
  const resource = { type: "exam", id: examId, patientId } as const;
  const body = await perform(ctx, "exam.read", resource, async () => {
    const exam = (await getExam(examId))!;
    const ai = (await authorize(ctx.actor, "prediction.read", resource)).allowed ? await latestExamAi(exam) : null;
    return {
      id: exam.id,
      patientId: exam.patientId,
      date: exam.date,
      ...(exam.accessionNumber ? { accessionNumber: exam.accessionNumber } : {}),
      studyInstanceUid: exam.studyInstanceUid,
      status: exam.status,
      complete: exam.complete,
      missing: exam.missing,
      views: exam.images.map((i) => ({
        imageId: i.imageId,
        laterality: i.laterality,
        view: i.view,
        contentType: i.contentType,
        ...(i.presentationIntent ? { presentationIntent: i.presentationIntent } : {}),
        ...(i.identityNotice ? { identityNotice: i.identityNotice } : {}),
        ...(i.duplicate ? { duplicate: true } : {}),
      })),
      ...(ai ? { ai } : {}),
    };
  });
  return Response.json(body);
}

export function action() {
  return methodNotAllowed("GET");
}
