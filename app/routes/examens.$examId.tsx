import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Link, useActionData, useLoaderData } from "@remix-run/react";
import { z } from "zod";
import { latestExamAi, runExamAi } from "../exams/exam-ai.server";
import { examPatientId, getExam, listExams } from "../exams/exams.server";
import { config } from "../config.server";
import { priorExam } from "../viewer/prior.server";
import { ExamViewer } from "../viewer/ExamViewer";
import { failure, HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { idParam } from "../http/params.server";
import { getPatient } from "../patients/patients.server";
import { authorize } from "../policy/policy.server";
import { integrityRecorder } from "../vault/serve.server";
import { ExamAiPanel, ExamCompleteness, ExamViews, PatientHeader, StatusBadge } from "../ui/exams";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Examen — Nexus" }];

/** The exam page (doctors of the care team, care consent live): identity, views in hanging order, completeness, AI. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const examId = idParam(ctx, args.params.examId);
  const patientId = await examPatientId(examId);
  const resource = { type: "exam", id: examId, patientId } as const;
  return perform(ctx, "exam.read", resource, async () => {
    const [exam, patient, analyse, readAi, history] = await Promise.all([
      getExam(examId),
      getPatient(patientId!),
      authorize(ctx.actor, "exam.analyse", resource),
      authorize(ctx.actor, "prediction.read", resource),
      listExams(patientId!),
    ]);
    const prior = priorExam(exam!, history);
    const ai = readAi.allowed ? await latestExamAi(exam!) : null;
    return {
      exam: exam!,
      patient: { id: patient!.id, displayName: patient!.displayName, ipp: patient!.ipp, birthDate: patient!.birthDate },
      ai,
      analyse: analyse.allowed ? { allowed: true as const } : { allowed: false as const, reason: analyse.reason },
      prior: prior ? { id: prior.id, date: prior.date, images: prior.images } : null,
      aiDisplay: config.AI_DISPLAY,
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
  const { exam, patient, ai, analyse, prior, aiDisplay } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  return (
    <div className="space-y-6">
      <PatientHeader patient={patient}>
        <Link className="text-sm text-brand-700 underline" to={`/patients/${patient.id}`}>
          {t("exams.back")}
        </Link>
      </PatientHeader>
      <section className="card space-y-1" aria-labelledby="exam-title">
        <h2 id="exam-title" className="flex flex-wrap items-center gap-3 text-lg font-semibold">
          <span>
            {t("exams.title")} — {exam.date}
          </span>
          <StatusBadge status={exam.status} />
        </h2>
        {exam.accessionNumber ? (
          <p className="text-sm text-slate-600">
            {t("exams.accession")} : <span className="font-mono">{exam.accessionNumber}</span>
          </p>
        ) : null}
        <ExamCompleteness complete={exam.complete} missing={exam.missing} />
      </section>
      <ExamViewer current={{ id: exam.id, date: exam.date, images: exam.images }} prior={prior} ai={ai} aiDisplay={aiDisplay} />
      <div className="grid gap-6 lg:grid-cols-[2fr_1fr]">
        {/* The server-rendered previews are for browsers without JavaScript; the viewer above replaces them. */}
        <noscript>
          <ExamViews images={exam.images} ai={ai?.views} />
        </noscript>
        <ExamAiPanel ai={ai} analyse={analyse} error={result?.error} />
      </div>
    </div>
  );
}
