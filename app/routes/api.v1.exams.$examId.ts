import type { LoaderFunctionArgs } from "@remix-run/node";
import { config } from "../config.server";
import { latestExamAi } from "../exams/exam-ai.server";
import { examPatientId, getExam } from "../exams/exams.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { authorize } from "../policy/policy.server";
import { aiVisibleTo, visibleReadings } from "../reading/readings.server";

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
    // AI_DISPLAY=after_reading: a reader sees the AI only once she has recorded her own reading (or the result is
    // final), so the second reader reads blind. Readings: her own until the result is final, then all of them.
    const mayModel = (await authorize(ctx.actor, "prediction.read", resource)).allowed;
    const aiShown = mayModel && (await aiVisibleTo(exam, ctx.actor!.id, config.AI_DISPLAY));
    const ai = aiShown ? await latestExamAi(exam) : null;
    const readings = await visibleReadings(exam.id, exam.status, ctx.actor!.id);
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
      ...(mayModel && !aiShown ? { aiHidden: "after_reading" } : {}),
      readings,
    };
  });
  return Response.json(body);
}

export function action() {
  return methodNotAllowed("GET");
}
