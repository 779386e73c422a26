import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Link, useActionData, useLoaderData, useRouteLoaderData } from "@remix-run/react";
import { config } from "../config.server";
import { failure, HttpError, pageContext, perform, readMutation, type Ctx } from "../http/context.server";
import { authorize } from "../policy/policy.server";
import { idParam } from "../http/params.server";
import { parseReading, readingFromForm } from "../reading/reading-schema";
import { examRef, nextInWorklist, readingPage, recordReading, worklistOfKind, worklistOfStatus } from "../reading/readings.server";
import { examUrl, LIST_PARAM, listFromParam, type WorklistName } from "../reading/worklist-nav";
import { isFinal } from "../reading/workflow";
import type { loader as rootLoader } from "../root";
import { Alert } from "../ui/forms";
import { formatDate } from "../ui/format";
import { formErrors, NEXT_FIELD, NEXT_VALUE, NextExam, ReadingForm, ReadingsPanel } from "../ui/reading-form";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Lecture — Nexus" }];

/** A `liste` value (query or form): undefined when absent; an unknown one is a 400 before anything is done. */
function namedList(ctx: Ctx, value: FormDataEntryValue | null): WorklistName | undefined {
  const named = listFromParam(typeof value === "string" ? value : null);
  if (named === null) throw failure(ctx, 400, "invalid", "Liste de lecture inconnue : premiere ou deuxieme.");
  return named;
}

/** The next exam of `list` for the reader (the worklist policy decides whether she has worklists at all). */
async function worklistNav(ctx: Ctx, list: WorklistName | null, examId: string, named: boolean) {
  if (!list || !(await authorize(ctx.actor, "worklist.read", { type: "app" })).allowed) return null;
  const next = await nextInWorklist(ctx.actor!.id, list, examId);
  // "End of the list" only for a list the reader is working through (named), not one merely inferred.
  return next || named ? { list, next: next ? examUrl(next, list) : null } : null;
}

/** The reading page: whose exam, the form for the reading now due (if any), the readings the viewer may see. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const examId = idParam(ctx, args.params.examId);
  const named = namedList(ctx, new URL(args.request.url).searchParams.get(LIST_PARAM));
  const exam = await examRef(examId);
  const page = await perform(ctx, "reading.open", { type: "exam", id: examId, patientId: exam?.patientId }, async () => {
    const page = await readingPage(exam!, ctx.actor!);
    return { ...page, worklist: await worklistNav(ctx, named ?? worklistOfStatus(exam!.status), examId, !!named) };
  });
  return { ...page, final: isFinal(page.exam.status) };
}

/** Records the reading (the one schema parses the form); field errors and 409 refusals come back to the form. */
export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const examId = idParam(ctx, args.params.examId);
  const form = await readMutation(ctx, "reading.create");
  const named = namedList(ctx, form.get(LIST_PARAM));
  const thenNext = form.get(NEXT_FIELD) === NEXT_VALUE;
  const values = Object.fromEntries([...form.entries()].filter(([k, v]) => !["csrf", NEXT_FIELD, LIST_PARAM].includes(k) && typeof v === "string")) as Record<string, string>;
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
    // The list the reading was taken from: the one the form names, else the one a reading of this kind comes from.
    const worklist = await worklistNav(ctx, named ?? worklistOfKind(recorded.kind), examId, true);
    // "Record and go to the next exam": straight to it (303, a GET), or back to the worklists at the end of the list.
    if (thenNext) throw redirect(worklist?.next ?? "/lectures", 303);
    return data({ recorded, worklist, errors: {} as Record<string, string>, refusal: null as string | null, values: {} as Record<string, string> }, { status: 201 });
  } catch (err) {
    if (err instanceof HttpError && (err.status === 400 || err.status === 409)) {
      return data({ recorded: null, worklist: null, errors: err.fields ?? {}, refusal: err.status === 409 ? err.message : null, values }, { status: err.status });
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
      {(result?.recorded ? result.worklist : page.worklist) ? (
        <div className="flex justify-end">
          <NextExam worklist={result?.recorded ? result.worklist : page.worklist} />
        </div>
      ) : null}
      {result?.refusal ? <Alert kind="error">{result.refusal}</Alert> : null}
      {page.final ? (
        <p className="flex flex-wrap gap-4 text-sm">
          <a className="underline" href={`/examens/${exam.id}/courrier`}>{t("letter.patient")}</a>
          <a className="underline" href={`/examens/${exam.id}/courrier?pour=medecin`}>{t("letter.referrer")}</a>
        </p>
      ) : null}
      {!result?.recorded && page.next.ok ? (
        <ReadingForm
          examId={exam.id}
          kind={page.next.kind}
          missingViews={page.missingViews}
          errors={formErrors(result?.errors)}
          values={result?.values}
          list={page.worklist?.list ?? null}
        />
      ) : !result?.recorded ? (
        <p className="text-sm text-slate-600">{t("reading.closed")}</p>
      ) : null}
      <ReadingsPanel readings={page.readings} formatDate={(d) => formatDate(d, lang)} />
    </div>
  );
}
