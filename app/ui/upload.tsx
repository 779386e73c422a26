import { useRevalidator, useRouteLoaderData } from "@remix-run/react";
import type { loader as rootLoader } from "../root";
import { useState, type FormEvent } from "react";
import { VIEWS } from "../exams/views";
import { MAX_UPLOAD_BYTES, vaultMessage } from "../vault/messages";
import { Alert, CsrfInput } from "./forms";
import { useT } from "./shell";

export interface UploadResult {
  fileName: string | null;
  ok: boolean;
  id?: string;
  error?: string;
  /** The error's code, translated here (the message is French). */
  code?: string;
}

/**
 * The mammogram upload form. Without JavaScript it is a plain multipart form (the server answers with a redirect
 * back to the patient page). With JavaScript the same form is sent by XMLHttpRequest for a real progress bar, and
 * the page's data is refreshed without a full reload.
 */
export interface UploadExamChoice {
  id: string;
  date: string;
}

export function UploadForm({ patientId, exams = [] }: { patientId: string; exams?: UploadExamChoice[] }) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const revalidator = useRevalidator();
  const [progress, setProgress] = useState<number | null>(null);
  const [results, setResults] = useState<UploadResult[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    const files = Array.from((form.elements.namedItem("file") as HTMLInputElement).files ?? []);
    setResults(null);
    if (files.length === 0) return setError(t("upload.none"));
    const tooBig = files.find((f) => f.size > MAX_UPLOAD_BYTES);
    if (tooBig) return setError(`${tooBig.name} : ${vaultMessage("too_large", lang)}`);
    setError(null);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => e.lengthComputable && setProgress(e.loaded / e.total);
    xhr.onload = () => {
      setProgress(null);
      try {
        const body = JSON.parse(xhr.responseText) as { results?: UploadResult[]; error?: { message: string } };
        if (body.results) setResults(body.results);
        else setError(body.error?.message ?? t("upload.failed"));
      } catch {
        setError(t("upload.failed"));
      }
      form.reset();
      revalidator.revalidate();
    };
    xhr.onerror = () => {
      setProgress(null);
      setError(t("upload.failed"));
    };
    setProgress(0);
    xhr.send(new FormData(form));
  }

  return (
    <form
      method="post"
      action={`/patients/${patientId}/televersement`}
      encType="multipart/form-data"
      onSubmit={onSubmit}
      className="space-y-3"
    >
      {/* The CSRF field comes first: the server checks it before reading any file. */}
      <CsrfInput />
      {/* Then the placement fields: they apply to the files that follow them. */}
      <div className="grid gap-3 sm:grid-cols-3">
        <div>
          <label htmlFor="upload-laterality" className="block text-sm font-medium text-slate-800">
            {t("upload.laterality")}
          </label>
          <select id="upload-laterality" name="laterality" className="input mt-1" defaultValue="" aria-describedby="upload-placement-hint">
            <option value="">—</option>
            <option value="R">{t("laterality.R")}</option>
            <option value="L">{t("laterality.L")}</option>
          </select>
        </div>
        <div>
          <label htmlFor="upload-view" className="block text-sm font-medium text-slate-800">
            {t("upload.view")}
          </label>
          <select id="upload-view" name="view" className="input mt-1" defaultValue="" aria-describedby="upload-placement-hint">
            <option value="">—</option>
            {VIEWS.map((v) => (
              <option key={v} value={v}>
                {v}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="upload-exam" className="block text-sm font-medium text-slate-800">
            {t("upload.exam")}
          </label>
          <select id="upload-exam" name="examId" className="input mt-1" defaultValue="">
            <option value="">{t("upload.newExam")}</option>
            {exams.map((e) => (
              <option key={e.id} value={e.id}>
                {e.date}
              </option>
            ))}
          </select>
        </div>
      </div>
      <p id="upload-placement-hint" className="text-xs text-slate-500">
        {t("upload.fromHeader")}
      </p>
      <details className="text-sm">
        <summary className="cursor-pointer text-slate-700">{t("upload.override")}</summary>
        <label htmlFor="upload-override" className="mt-2 block text-xs text-slate-600">
          {t("upload.overrideHint")}
        </label>
        <input id="upload-override" name="identityOverride" maxLength={500} className="input mt-1" autoComplete="off" />
      </details>
      <label htmlFor="upload-file" className="block text-sm font-medium text-slate-800">
        {t("upload.label")}
      </label>
      <input
        id="upload-file"
        name="file"
        type="file"
        multiple
        required
        accept=".jpg,.jpeg,.png,.dcm,image/jpeg,image/png,application/dicom"
        className="block w-full text-sm file:mr-3 file:rounded-md file:border-0 file:bg-brand-50 file:px-3 file:py-2 file:font-medium file:text-brand-700"
        aria-describedby="upload-hint"
      />
      <p id="upload-hint" className="text-xs text-slate-500">
        {t("upload.hint")}
      </p>
      <button type="submit" className="btn" disabled={progress !== null}>
        {t("upload.submit")}
      </button>
      {progress !== null ? (
        <div role="status" aria-live="polite" className="space-y-1">
          <progress className="w-full accent-brand-600" value={Math.round(progress * 100)} max={100} aria-label={t("upload.progress")} />
          <p className="text-xs text-slate-600" data-testid="upload-progress">
            {progress < 1 ? `${t("upload.progress")} ${Math.round(progress * 100)} %` : t("upload.encrypting")}
          </p>
        </div>
      ) : null}
      {error ? <Alert kind="error">{error}</Alert> : null}
      {results ? <UploadResults results={results} /> : null}
    </form>
  );
}

export function UploadResults({ results }: { results: UploadResult[] }) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const ok = results.filter((r) => r.ok).length;
  return (
    <Alert kind={ok === results.length ? "success" : "error"}>
      <p>
        {ok} / {results.length} {t("upload.done")}
      </p>
      <ul className="mt-1 list-disc pl-5">
        {results
          .filter((r) => !r.ok)
          .map((r, i) => (
            <li key={i}>
              {r.fileName ?? "—"} : {r.code ? vaultMessage(r.code, lang) : r.error}
            </li>
          ))}
      </ul>
    </Alert>
  );
}
