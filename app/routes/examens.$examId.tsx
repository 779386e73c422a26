import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Link, useActionData, useLoaderData, useRouteLoaderData } from "@remix-run/react";
import type { loader as rootLoader } from "../root";
import { z } from "zod";
import { config } from "../config.server";
import { latestExamAi, runExamAi } from "../exams/exam-ai.server";
import { examPatientId, getExam, listExams } from "../exams/exams.server";
import { priorExam } from "../viewer/prior.server";
import { ExamViewer } from "../viewer/ExamViewer";
import { viewerEngineUrl } from "../viewer/engine-chunk.server";
import { failure, HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { idParam } from "../http/params.server";
import { getPatient } from "../patients/patients.server";
import { authorize } from "../policy/policy.server";
import { aiVisibleTo, nextInWorklist, readingPage, worklistOfStatus } from "../reading/readings.server";
import { examUrl, LIST_PARAM, listFromParam } from "../reading/worklist-nav";
import { isFinal } from "../reading/workflow";
import { integrityRecorder } from "../vault/serve.server";
import { ExamAiPanel, ExamCompleteness, ExamViews, PatientHeader, StatusBadge } from "../ui/exams";
import { formatDate } from "../ui/format";
import { NextExam, ReadingForm, ReadingsPanel } from "../ui/reading-form";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Examen — Nexus" }];
/** On a reading screen (≥ 1536 px) the page takes the whole width: the viewer, with the reading form docked beside it. */
export const handle = { wide: true };

/** The exam page (doctors of the care team, care consent live): identity, views in hanging order, completeness, AI. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const examId = idParam(ctx, args.params.examId);
  const named = listFromParam(new URL(args.request.url).searchParams.get(LIST_PARAM));
  if (named === null) throw failure(ctx, 400, "invalid", "Liste de lecture inconnue : premiere ou deuxieme.");
  const patientId = await examPatientId(examId);
  const resource = { type: "exam", id: examId, patientId } as const;
  return perform(ctx, "exam.read", resource, async () => {
    const [exam, patient, analyse, readAi, history, worklists] = await Promise.all([
      getExam(examId),
      getPatient(patientId!),
      authorize(ctx.actor, "exam.analyse", resource),
      authorize(ctx.actor, "prediction.read", resource),
      listExams(patientId!),
      authorize(ctx.actor, "worklist.read", { type: "app" }),
    ]);
    // Worklist navigation: the list named in the URL (the worklist page's links), else the one the exam waits in.
    const list = worklists.allowed ? (named ?? worklistOfStatus(exam!.status)) : null;
    const next = list ? await nextInWorklist(ctx.actor!.id, list, examId) : null;
    const prior = priorExam(exam!, history);
    // AI_DISPLAY=after_reading: the AI shows once this reader has recorded her reading (or the result is final).
    const aiShown = readAi.allowed && (await aiVisibleTo(exam!, ctx.actor!.id, config.AI_DISPLAY));
    const ai = aiShown ? await latestExamAi(exam!) : null;
    const reading = await readingPage(exam!, ctx.actor!);
    return {
      prior: prior ? { id: prior.id, date: prior.date, images: prior.images } : null,
      aiHidden: readAi.allowed && !aiShown,
      reading: { next: reading.next, missingViews: reading.missingViews, readings: reading.readings },
      // "End of the list" only for a list the reader is working through (named in the URL), not one merely inferred.
      worklist: list && (next || named) ? { list, next: next ? examUrl(next, list) : null } : null,
      exam: exam!,
      viewerEngine: viewerEngineUrl(),
      patient: { id: patient!.id, displayName: patient!.displayName, ipp: patient!.ipp, birthDate: patient!.birthDate },
      ai,
      analyse: analyse.allowed ? { allowed: true as const } : { allowed: false as const, reason: analyse.reason },
    };
  });
}

/** The page's intents, one zod discriminated union: anything else is a 400, never a silent other action. */
const intentSchema = z.discriminatedUnion("intent", [z.object({ intent: z.literal("analyse") })]);

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const examId = idParam(ctx, args.params.examId);
  const form = await readMutation(ctx, "exam.analyse");
  const parsed = intentSchema.safeParse({ intent: form.get("intent") });
  if (!parsed.success) throw failure(ctx, 400, "invalid", "Action inconnue.");
  const patientId = await examPatientId(examId);
  try {
    const ai = await perform(
      ctx,
      "exam.analyse",
      { type: "exam", id: examId, patientId },
      async () => runExamAi((await getExam(examId))!, ctx.actor!, (row) => integrityRecorder(ctx, row)),
      { describe: (r) => ({ resourceType: "exam", resourceId: `${examId}:${r.views.map((v) => v.predictionId).join(",")}` }) },
    );
    return data({ error: null as string | null, analysed: ai.views.length }, { status: 201 });
  } catch (err) {
    if (err instanceof HttpError && err.status < 500 && err.status !== 403) {
      return data({ error: err.message as string | null, analysed: 0 }, { status: err.status });
    }
    throw err;
  }
}

export default function ExamPage() {
  const t = useT();
  const { exam, patient, ai, analyse, aiHidden, reading, prior, worklist, viewerEngine } = useLoaderData<typeof loader>();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const result = useActionData<typeof action>();
  return (
    <div className="space-y-6">
      <PatientHeader patient={patient}>
        <Link className="text-sm text-brand-700 underline" to={`/patients/${patient.id}`}>
          {t("exams.back")}
        </Link>
      </PatientHeader>
      <section className="card space-y-1" aria-labelledby="exam-title">
        <div className="flex flex-wrap items-center justify-between gap-3">
          <h2 id="exam-title" className="flex flex-wrap items-center gap-3 text-lg font-semibold">
            <span>
              {t("exams.title")} — {exam.date}
            </span>
            <StatusBadge status={exam.status} />
          </h2>
          <NextExam worklist={worklist} />
        </div>
        {exam.accessionNumber ? (
          <p className="text-sm text-slate-600">
            {t("exams.accession")} : <span className="font-mono">{exam.accessionNumber}</span>
          </p>
        ) : null}
        <ExamCompleteness complete={exam.complete} missing={exam.missing} />
      </section>
      {/* On a reading screen (2xl) the viewer and the reading column side by side; below, one after the other. */}
      <div className="space-y-6 2xl:grid 2xl:grid-cols-[minmax(0,1fr)_28rem] 2xl:items-start 2xl:gap-6 2xl:space-y-0">
        {/* The server decides whether the AI shows (AI_DISPLAY): the viewer shows what it is given, at once. */}
        <ExamViewer
          key={exam.id}
          current={{ id: exam.id, date: exam.date, images: exam.images }}
          prior={prior}
          ai={ai}
          aiDisplay={aiHidden ? "after_reading" : "concurrent"}
          nextUrl={worklist?.next ?? null}
          engineUrl={viewerEngine}
        />
        <div className="space-y-6" data-testid="reading-column">
          <div className="grid gap-6 lg:grid-cols-[2fr_1fr] 2xl:grid-cols-1">
            {/* The server-rendered previews are for browsers without JavaScript; the viewer above replaces them. */}
            <noscript>
              <ExamViews images={exam.images} ai={ai?.views} />
            </noscript>
            <div className="space-y-3">
              {aiHidden ? (
                <p className="rounded bg-sky-50 p-2 text-sm text-sky-900" data-testid="ai-hidden">
                  {t("reading.aiAfterReading")}
                </p>
              ) : null}
              <ExamAiPanel ai={ai} analyse={analyse} error={result?.error} />
            </div>
          </div>
          <div className="grid gap-6 lg:grid-cols-[2fr_1fr] 2xl:grid-cols-1">
            {reading.next.ok ? (
              <ReadingForm examId={exam.id} kind={reading.next.kind} missingViews={reading.missingViews} list={worklist?.list ?? null} />
            ) : (
              <p className="card text-sm text-slate-600">{t("reading.closed")}</p>
            )}
            <div className="space-y-3">
              {isFinal(exam.status) ? (
                <p className="card flex flex-col gap-2 text-sm">
                  <a className="underline" href={`/examens/${exam.id}/courrier`}>{t("letter.patient")}</a>
                  <a className="underline" href={`/examens/${exam.id}/courrier?pour=medecin`}>{t("letter.referrer")}</a>
                </p>
              ) : null}
              <ReadingsPanel readings={reading.readings} formatDate={(d) => formatDate(d, lang)} />
            </div>
          </div>
        </div>
      </div>
    </div>
  );
}
