import type { LoaderFunctionArgs } from "@remix-run/node";
import { examPatientId } from "../exams/exams.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { buildCadSr, dicomResponse, finalResult, noAi } from "../results/results.server";

/**
 * GET /api/v1/exams/:examId/ai/sr — the exam AI as a DICOM Mammography CAD SR (`application/dicom`). Model output:
 * the care team's doctors only (`prediction.read`: never the patient), once the result is final (409 `not_final`);
 * 404 `no_ai_result` when the AI has not read a DICOM view of the exam.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const examId = idParam(ctx, args.params.examId);
  const patientId = await examPatientId(examId);
  const sr = await perform(
    ctx,
    "prediction.read",
    { type: "exam", id: examId, patientId },
    async () => {
      const built = await buildCadSr(await finalResult(examId));
      if (!built) throw noAi();
      return built;
    },
    { describe: (s) => ({ resourceType: "cad_sr", resourceId: `${examId}:${s.sopInstanceUid}` }) },
  );
  return dicomResponse(sr, `ia-${examId}.dcm`);
}

export function action() {
  return methodNotAllowed("GET");
}
