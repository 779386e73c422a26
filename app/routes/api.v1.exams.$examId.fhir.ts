import type { LoaderFunctionArgs } from "@remix-run/node";
import { examPatientId } from "../exams/exams.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { fhirBundle } from "../results/fhir.server";
import { finalResult } from "../results/results.server";

/**
 * GET /api/v1/exams/:examId/fhir — the final result as a FHIR R4 Bundle (`application/fhir+json`, type collection:
 * DiagnosticReport, Patient, ImagingStudy, Observations per breast). The care team's doctors while care consent is
 * live (`result.read`); 409 `not_final` before the result is final. No model output in it.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const examId = idParam(ctx, args.params.examId);
  const patientId = await examPatientId(examId);
  const bundle = await perform(ctx, "result.read", { type: "exam", id: examId, patientId }, async () => fhirBundle(await finalResult(examId)), {
    describe: (b) => ({ resourceType: "fhir_bundle", resourceId: `${examId}:${b.id}` }),
  });
  return new Response(JSON.stringify(bundle), {
    headers: { "Content-Type": "application/fhir+json; charset=utf-8", "Cache-Control": "no-store" },
  });
}

export function action() {
  return methodNotAllowed("GET");
}
