import type { LoaderFunctionArgs } from "@remix-run/node";
import { examPatientId } from "../exams/exams.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { buildReadingSr, dicomResponse, finalResult } from "../results/results.server";

/**
 * GET /api/v1/exams/:examId/sr — the final reading as a DICOM Comprehensive SR (`application/dicom`), rebuilt on
 * request (same SOP Instance UID each time). The care team's doctors while care consent is live (`result.read`);
 * 409 `not_final` before the result is final.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const examId = idParam(ctx, args.params.examId);
  const patientId = await examPatientId(examId);
  const sr = await perform(ctx, "result.read", { type: "exam", id: examId, patientId }, async () => buildReadingSr(await finalResult(examId)), {
    describe: (s) => ({ resourceType: "reading_sr", resourceId: `${examId}:${s.sopInstanceUid}` }),
  });
  return dicomResponse(sr, `compte-rendu-${examId}.dcm`);
}

export function action() {
  return methodNotAllowed("GET");
}
