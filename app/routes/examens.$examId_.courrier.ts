import type { LoaderFunctionArgs } from "@remix-run/node";
import { failure, HttpError, pageContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { patientLetter, pdfResponse, referrerReport } from "../reading/letters.server";
import { examRef } from "../reading/readings.server";

/** The result letter for the browser (the woman's portal, the care team); `?pour=medecin`: the referrer's report. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const examId = idParam(ctx, args.params.examId);
  const exam = await examRef(examId);
  const referrer = new URL(args.request.url).searchParams.get("pour") === "medecin";
  try {
    const pdf = await perform(ctx, referrer ? "letter.referrer" : "letter.read", { type: "exam", id: examId, patientId: exam?.patientId }, () =>
      referrer ? referrerReport(exam!) : patientLetter(exam!),
    );
    return pdfResponse(pdf, referrer ? `compte-rendu-${exam!.date}.pdf` : `resultat-mammographie-${exam!.date}.pdf`);
  } catch (err) {
    if (err instanceof HttpError) throw failure(ctx, err.status, err.code, err.message);
    throw err;
  }
}
