import type { LoaderFunctionArgs } from "@remix-run/node";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { patientLetter, pdfResponse, referrerReport } from "../reading/letters.server";
import { examRef } from "../reading/readings.server";

/**
 * GET /api/v1/exams/:examId/letter — the woman's result letter (PDF, French), rendered on request; `?for=referrer`:
 * the referring doctor's report (care team only). 409 `not_final` before the result is final.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const examId = idParam(ctx, args.params.examId);
  const exam = await examRef(examId);
  const referrer = new URL(args.request.url).searchParams.get("for") === "referrer";
  const pdf = await perform(ctx, referrer ? "letter.referrer" : "letter.read", { type: "exam", id: examId, patientId: exam?.patientId }, () =>
    referrer ? referrerReport(exam!) : patientLetter(exam!),
  );
  return pdfResponse(pdf, referrer ? `compte-rendu-${exam!.date}.pdf` : `resultat-mammographie-${exam!.date}.pdf`);
}
