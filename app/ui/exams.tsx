/**
 * Exam pieces shared by the pages: the patient identity header, a patient's exam list, and the exam page's
 * sections (views in hanging order, completeness, AI). Each section is its own component so that a viewer and the
 * reading form can be docked beside them.
 */
import { Form, Link, useRouteLoaderData } from "@remix-run/react";
import type { ReactNode } from "react";
import type { ExamStatus } from "../db/schema";
import { STANDARD_VIEWS, type Laterality, type View } from "../exams/views";
import type { loader as rootLoader } from "../root";
import { formatBirthDate } from "./format";
import { Alert, CsrfInput } from "./forms";
import { useT } from "./shell";

const useLang = () => useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";

export interface PatientIdentity {
  id: string;
  displayName: string;
  ipp?: string | null;
  birthDate?: string | null;
  ins?: string | null;
}

/** Whose images these are: name, birth date and IPP, on every page about a patient. */
export function PatientHeader({
  patient,
  heading,
  level = 1,
  children,
}: {
  patient: PatientIdentity;
  heading?: string;
  /** 2 on pages whose own title is the h1 (an image). */
  level?: 1 | 2;
  children?: ReactNode;
}) {
  const Title = level === 1 ? "h1" : "h2";
  const t = useT();
  const lang = useLang();
  return (
    <header className="card flex flex-wrap items-baseline gap-x-6 gap-y-1 py-3" data-testid="patient-header" aria-label={t("identity.header")}>
      <Title className={level === 1 ? "text-2xl font-bold" : "text-lg font-semibold"}>
        {heading ? `${heading} — ` : ""}
        {patient.displayName}
      </Title>
      <dl className="flex flex-wrap gap-x-6 gap-y-1 text-sm">
        <div className="flex gap-1">
          <dt className="text-slate-500">{t("identity.birthDate")}</dt>
          <dd className="font-medium" data-testid="patient-birth-date">{formatBirthDate(patient.birthDate, lang)}</dd>
        </div>
        <div className="flex gap-1">
          <dt className="text-slate-500">{t("identity.ipp")}</dt>
          <dd className="font-mono font-medium" data-testid="patient-ipp">{patient.ipp ?? "—"}</dd>
        </div>
      </dl>
      {children}
    </header>
  );
}

export interface ExamListItem {
  id: string;
  date: string;
  status: ExamStatus;
  complete?: boolean;
  views: string[];
}

export function StatusBadge({ status }: { status: ExamStatus }) {
  const t = useT();
  const tone = status === "final_normal" ? "bg-emerald-100 text-emerald-800" : status === "recall" || status === "immediate_workup" ? "bg-amber-100 text-amber-900" : "bg-slate-100 text-slate-700";
  return <span className={`rounded-full px-2 py-0.5 text-xs font-medium ${tone}`} data-status={status}>{t(`exam.status.${status}`)}</span>;
}

/** A patient's exams (newest first); `linkToExam` for doctors (the exam page). */
export function ExamList({ exams, linkToExam }: { exams: ExamListItem[]; linkToExam: boolean }) {
  const t = useT();
  const lang = useLang();
  if (exams.length === 0) return <p className="mt-2 text-sm text-slate-600">{t("exams.empty")}</p>;
  return (
    <div className="overflow-x-auto">
      <table className="mt-3 min-w-full divide-y divide-slate-200 text-sm" data-testid="exam-list">
        <thead className="text-left text-slate-600">
          <tr>
            <th scope="col" className="py-2 pr-3 font-medium">{t("exams.date")}</th>
            <th scope="col" className="py-2 pr-3 font-medium">{t("exams.status")}</th>
            <th scope="col" className="py-2 pr-3 font-medium">{t("exams.views")}</th>
            {linkToExam ? <th scope="col" className="py-2"><span className="sr-only">{t("exams.open")}</span></th> : null}
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">
          {exams.map((e) => (
            <tr key={e.id} data-exam-id={e.id}>
              <td className="py-2 pr-3">{formatBirthDate(e.date, lang)}</td>
              <td className="py-2 pr-3"><StatusBadge status={e.status} /></td>
              <td className="py-2 pr-3">
                {e.views.join(" · ") || "—"}
                {e.complete === undefined ? null : (
                  <span className={`ml-2 text-xs ${e.complete ? "text-emerald-700" : "text-amber-800"}`}>
                    {e.complete ? t("exams.complete") : t("exams.incomplete")}
                  </span>
                )}
              </td>
              {linkToExam ? (
                <td className="py-2 text-right">
                  <Link className="text-brand-700 underline" to={`/examens/${e.id}`}>{t("exams.open")}</Link>
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export interface ExamViewImage {
  imageId: string;
  laterality: Laterality | null;
  view: View | null;
  contentType: string;
  presentationIntent: string | null;
  identityNotice: string | null;
  duplicate: boolean;
}

export interface ExamAiViewItem {
  imageId: string;
  probability: number;
  predictionId: string;
  heatmapUrl: string | null;
}

const percent = (p: number, lang: "fr" | "en") => new Intl.NumberFormat(lang === "fr" ? "fr-FR" : "en-GB", { style: "percent", maximumFractionDigits: 1 }).format(p);

function preview(image: ExamViewImage) {
  return image.contentType === "application/dicom" ? `/images/${image.imageId}/fichier?apercu=1` : `/images/${image.imageId}/fichier`;
}

function Notice({ image }: { image: ExamViewImage }) {
  const t = useT();
  const notes: string[] = [];
  if (image.presentationIntent === "FOR PROCESSING") notes.push(t("exams.forProcessing"));
  if (image.identityNotice?.startsWith("missing:")) notes.push(`${t("exams.identityMissing")} : ${image.identityNotice.slice(8).replace(/,/g, ", ")}`);
  if (image.identityNotice?.startsWith("override:")) notes.push(`${t("exams.identityOverride")} : ${image.identityNotice.slice(9).replace(/,/g, ", ")}`);
  if (image.duplicate) notes.push(t("exams.duplicates"));
  if (notes.length === 0) return null;
  return (
    <ul className="mt-1 space-y-0.5 text-xs text-amber-200">
      {notes.map((n) => <li key={n}>{n}</li>)}
    </ul>
  );
}

/** One view: the preview (a server-rendered PNG for DICOM: works without JavaScript), the heatmap over it. */
function ViewCell({ label, image, ai }: { label: string; image: ExamViewImage | undefined; ai: ExamAiViewItem | undefined }) {
  const t = useT();
  const lang = useLang();
  return (
    <figure className="rounded-md bg-slate-900 p-2 text-slate-100" data-view={label}>
      <figcaption className="mb-1 flex items-baseline justify-between text-sm font-semibold">
        <span>{label}</span>
        {ai ? <span className="font-mono text-xs" data-testid="view-score">{percent(ai.probability, lang)}</span> : null}
      </figcaption>
      {image ? (
        <>
          <Link to={`/images/${image.imageId}`} className="relative block">
            <img src={preview(image)} alt={`${label} — ${t("image.preview")}`} className="mx-auto max-h-96 w-auto" loading="lazy" />
            {ai?.heatmapUrl ? (
              <img
                src={`/predictions/${ai.predictionId}/carte`}
                alt={`${label} — ${t("examAi.heatmap")}`}
                className="pointer-events-none absolute inset-0 mx-auto h-full w-auto object-contain opacity-60"
                data-testid="view-heatmap"
                loading="lazy"
              />
            ) : null}
          </Link>
          <Notice image={image} />
        </>
      ) : (
        <p className="flex h-40 items-center justify-center text-sm text-slate-400">{t("exams.noImage")}</p>
      )}
    </figure>
  );
}

/** The four standard views in hanging order, R-CC | L-CC over R-MLO | L-MLO, then any other view. */
export function ExamViews({ images, ai }: { images: ExamViewImage[]; ai?: ExamAiViewItem[] }) {
  const t = useT();
  const first = (l: Laterality, v: View) => images.find((i) => i.laterality === l && i.view === v && !i.duplicate);
  const aiOf = (id: string | undefined) => ai?.find((a) => a.imageId === id);
  const standard = new Set(STANDARD_VIEWS.map((s) => first(s.laterality, s.view)?.imageId).filter(Boolean));
  const others = images.filter((i) => !standard.has(i.imageId));
  return (
    <section aria-labelledby="views-title" className="space-y-3">
      <h2 id="views-title" className="text-lg font-semibold">{t("exams.views")}</h2>
      <div className="grid grid-cols-2 gap-2" data-testid="hanging">
        {STANDARD_VIEWS.map((s) => {
          const image = first(s.laterality, s.view);
          return <ViewCell key={`${s.laterality}-${s.view}`} label={`${s.laterality}-${s.view}`} image={image} ai={aiOf(image?.imageId)} />;
        })}
      </div>
      {others.length ? (
        <>
          <h3 className="text-base font-semibold">{t("exams.otherViews")}</h3>
          <div className="grid grid-cols-2 gap-2 md:grid-cols-4">
            {others.map((i) => (
              <ViewCell key={i.imageId} label={i.laterality && i.view ? `${i.laterality}-${i.view}` : "?"} image={i} ai={aiOf(i.imageId)} />
            ))}
          </div>
        </>
      ) : null}
    </section>
  );
}

/** Complete or not, and which standard views are missing. */
export function ExamCompleteness({ complete, missing }: { complete: boolean; missing: { laterality: Laterality; view: View }[] }) {
  const t = useT();
  return (
    <p className={`text-sm ${complete ? "text-emerald-700" : "text-amber-900"}`} data-testid="exam-completeness">
      {complete ? t("exams.complete") : `${t("exams.incomplete")} — ${t("exams.missing")} : ${missing.map((m) => `${m.laterality}-${m.view}`).join(", ")}`}
    </p>
  );
}

export interface ExamAiSummary {
  exam: { probability: number };
  breasts: { R: { probability: number } | null; L: { probability: number } | null };
  skipped: { imageId: string; message: string }[];
  model: { name: string; version: string; clinical: boolean };
  notice: string | null;
}

/** The exam's AI: the action (when allowed, or why not), the breast and exam scores, skipped views with reasons. */
export function ExamAiPanel({
  ai,
  analyse,
  error,
}: {
  ai: ExamAiSummary | null;
  analyse: { allowed: true } | { allowed: false; reason: string };
  error?: string | null;
}) {
  const t = useT();
  const lang = useLang();
  return (
    <section className="card space-y-3" aria-labelledby="exam-ai-title">
      <h2 id="exam-ai-title" className="text-lg font-semibold">{t("examAi.title")}</h2>
      {error ? <Alert kind="error">{error}</Alert> : null}
      {ai ? (
        <dl className="grid grid-cols-3 gap-3 text-center" data-testid="exam-ai">
          <div className="rounded-md bg-slate-50 p-2">
            <dt className="text-xs text-slate-500">{t("examAi.breast.R")}</dt>
            <dd className="font-mono text-lg" data-testid="breast-R">{ai.breasts.R ? percent(ai.breasts.R.probability, lang) : "—"}</dd>
          </div>
          <div className="rounded-md bg-slate-50 p-2">
            <dt className="text-xs text-slate-500">{t("examAi.breast.L")}</dt>
            <dd className="font-mono text-lg" data-testid="breast-L">{ai.breasts.L ? percent(ai.breasts.L.probability, lang) : "—"}</dd>
          </div>
          <div className="rounded-md bg-brand-50 p-2">
            <dt className="text-xs text-slate-500">{t("examAi.exam")}</dt>
            <dd className="font-mono text-lg font-semibold" data-testid="exam-score">{percent(ai.exam.probability, lang)}</dd>
          </div>
        </dl>
      ) : (
        <p className="text-sm text-slate-600">{t("examAi.none")}</p>
      )}
      {ai ? (
        <p className="text-xs text-slate-500">
          {ai.model.name} {ai.model.version}
          {ai.notice ? ` — ${ai.notice}` : ""}
        </p>
      ) : null}
      {ai?.skipped.length ? (
        <ul className="list-disc pl-5 text-xs text-amber-900">
          {ai.skipped.map((s) => (
            <li key={s.imageId}>{t("examAi.skipped")} : {s.message}</li>
          ))}
        </ul>
      ) : null}
      {analyse.allowed ? (
        <Form method="post">
          <CsrfInput />
          <input type="hidden" name="intent" value="analyse" />
          <button type="submit" className="btn">{t("examAi.run")}</button>
        </Form>
      ) : (
        <p className="text-sm text-slate-600">{analyse.reason}</p>
      )}
    </section>
  );
}
