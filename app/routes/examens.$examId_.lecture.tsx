import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Link, useActionData, useLoaderData, useRouteLoaderData } from "@remix-run/react";
import { config } from "../config.server";
import { HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { idParam } from "../http/params.server";
import { parseReading, readingFromForm } from "../reading/reading-schema";
import { examRef, readingPage, recordReading } from "../reading/readings.server";
import { isFinal } from "../reading/workflow";
import type { loader as rootLoader } from "../root";
import { Alert } from "../ui/forms";
import { formatDate } from "../ui/format";
import { formErrors, ReadingForm, ReadingsPanel } from "../ui/reading-form";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Lecture — Nexus" }];

/** The reading page: whose exam, the form for the reading now due (if any), the readings the viewer may see. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const examId = idParam(ctx, args.params.examId);
  const exam = await examRef(examId);
  const page = await perform(ctx, "reading.open", { type: "exam", id: examId, patientId: exam?.patientId }, () => readingPage(exam!, ctx.actor!));
  return { ...page, final: isFinal(page.exam.status) };
}

/** Records the reading (the one schema parses the form); field errors and 409 refusals come back to the form. */
export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const examId = idParam(ctx, args.params.examId);
  const form = await readMutation(ctx, "reading.create");
  const values = Object.fromEntries([...form.entries()].filter(([k, v]) => k !== "csrf" && typeof v === "string")) as Record<string, string>;
  const exam = await examRef(examId);
  try {
    const recorded = await perform(
      ctx,
      "reading.create",
      { type: "exam", id: examId, patientId: exam?.patientId },
      async () => {
        const parsed = parseReading(readingFromForm(form));
        if (!parsed.ok) throw new HttpError(400, "invalid", "Lecture invalide.", parsed.errors);
        return recordReading(examId, ctx.actor!, parsed.data, config.READING_DISAGREEMENT);
      },
      { describe: (r) => ({ resourceType: "reading", resourceId: r.id }) },
    );
    return data({ recorded, errors: {} as Record<string, string>, refusal: null as string | null, values: {} as Record<string, string> }, { status: 201 });
  } catch (err) {
    if (err instanceof HttpError && (err.status === 400 || err.status === 409)) {
      return data({ recorded: null, errors: err.fields ?? {}, refusal: err.status === 409 ? err.message : null, values }, { status: err.status });
    }
    throw err;
  }
}

export default function ReadingPageRoute() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const page = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const { exam } = page;
  return (
    <div className="space-y-6">
      <header className="card flex flex-wrap items-baseline justify-between gap-2" data-testid="patient-header">
        <div>
          <h1 className="text-2xl font-bold">
            {t("reading.title")} — {exam.patient.displayName}
          </h1>
          <p className="text-sm text-slate-600">
            {exam.patient.birthDate ?? "—"}
            {exam.patient.ipp ? ` · IPP ${exam.patient.ipp}` : ""} · {t("worklist.examDate")} {exam.date}
            {exam.accessionNumber ? ` · ${exam.accessionNumber}` : ""}
          </p>
        </div>
        <p className="text-sm font-medium" data-testid="exam-status">
          {t(`status.${result?.recorded?.examStatus ?? exam.status}`)}
        </p>
      </header>
      {result?.recorded ? (
        <Alert kind="success">
          {t("reading.recorded")} {t(`status.${result.recorded.examStatus}`)}.{" "}
          <Link className="underline" to="/lectures">
            {t("reading.backToWorklists")}
          </Link>
        </Alert>
      ) : null}
      {result?.refusal ? <Alert kind="error">{result.refusal}</Alert> : null}
      {page.final ? (
        <p className="flex flex-wrap gap-4 text-sm">
          <a className="underline" href={`/examens/${exam.id}/courrier`}>{t("letter.patient")}</a>
          <a className="underline" href={`/examens/${exam.id}/courrier?pour=medecin`}>{t("letter.referrer")}</a>
        </p>
      ) : null}
      {!result?.recorded && page.next.ok ? (
        <ReadingForm examId={exam.id} kind={page.next.kind} missingViews={page.missingViews} errors={formErrors(result?.errors)} values={result?.values} />
      ) : !result?.recorded ? (
        <p className="text-sm text-slate-600">{t("reading.closed")}</p>
      ) : null}
      <ReadingsPanel readings={page.readings} formatDate={(d) => formatDate(d, lang)} />
    </div>
  );
}
