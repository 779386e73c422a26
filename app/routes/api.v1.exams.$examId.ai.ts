import type { ActionFunctionArgs } from "@remix-run/node";
import { runExamAi } from "../exams/exam-ai.server";
import { examPatientId, getExam } from "../exams/exams.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { integrityRecorder } from "../vault/serve.server";

/**
 * POST /api/v1/exams/:examId/ai — a doctor of the care team, with the patient's ai_analysis consent: reads every
 * view → 201 `{exam:{probability}, breasts:{R, L}, views:[…], model, skipped}`; 422 `no_readable_view`.
 */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("POST");
  const ctx = await apiContext(args);
  const examId = idParam(ctx, args.params.examId);
  const patientId = await examPatientId(examId);
  const result = await perform(
    ctx,
    "exam.analyse",
    { type: "exam", id: examId, patientId },
    async () => runExamAi((await getExam(examId))!, ctx.actor!, (row) => integrityRecorder(ctx, row)),
    { describe: (r) => ({ resourceType: "exam", resourceId: `${examId}:${r.views.map((v) => v.predictionId).join(",")}` }) },
  );
  return Response.json(result, { status: 201 });
}

export function loader() {
  return methodNotAllowed("POST");
}
