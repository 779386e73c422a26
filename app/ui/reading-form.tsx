/**
 * The reading form, docked beside the images on the exam page and shown alone on /examens/:examId/lecture.
 * Field names and limits come from the one reading schema (app/reading/reading-schema.ts); the server parses the
 * same fields with the same schema and sends its field errors back here. Works without JavaScript.
 */
import { Form, Link, useNavigation } from "@remix-run/react";
import type { StringKey } from "../i18n/strings";
import { ACR_CATEGORIES, type ReadingKind } from "../reading/workflow";
import { DENSITIES, FINDING_TYPES, formFieldOf, MAX_CONCLUSION, MAX_SIZE_MM, QUADRANTS, SIDES } from "../reading/reading-schema";
import { LIST_PARAM, listParam, type WorklistName } from "../reading/worklist-nav";
import { CsrfInput } from "./forms";
import { useT } from "./shell";

export const FINDING_ROWS = 3;
/** The submit button that records the reading and opens the next exam of the worklist. */
export const NEXT_FIELD = "apres";
export const NEXT_VALUE = "suivant";

type Values = Record<string, string | undefined>;

function Select({
  name,
  label,
  options,
  values,
  errors,
}: {
  name: string;
  label: string;
  options: { value: string; label: string }[];
  values: Values;
  errors: Values;
}) {
  const t = useT();
  const id = `reading-${name.replace(/\./g, "-")}`;
  const error = errors[name];
  return (
    <div>
      <label htmlFor={id} className="block text-xs font-medium text-slate-700">
        {label}
      </label>
      <select
        id={id}
        name={name}
        defaultValue={values[name] ?? ""}
        className="input mt-1"
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
      >
        <option value="">{t("reading.choose")}</option>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      {error ? (
        <p id={`${id}-error`} className="mt-1 text-xs text-red-700">
          {error}
        </p>
      ) : null}
    </div>
  );
}

/** Server errors are keyed by schema path (`breasts.R.acr`); the form's fields by their name (`R.acr`). */
export function formErrors(errors: Record<string, string> | undefined): Values {
  return Object.fromEntries(Object.entries(errors ?? {}).map(([k, v]) => [formFieldOf(k), v]));
}

export function ReadingForm({
  examId,
  kind,
  missingViews,
  errors = {},
  values = {},
  list = null,
}: {
  examId: string;
  kind: ReadingKind;
  missingViews: string[];
  errors?: Values;
  values?: Values;
  /** The worklist the reader is working through: offers "record and go to the next exam" of it. */
  list?: WorklistName | null;
}) {
  const t = useT();
  const busy = useNavigation().state === "submitting";
  const acr = ACR_CATEGORIES.map((a) => ({ value: String(a), label: t(`reading.acr${a}` as StringKey) }));
  const density = DENSITIES.map((d) => ({ value: d, label: d }));
  const sides = SIDES.map((s) => ({ value: s, label: t(`reading.side.${s}`) }));
  const types = FINDING_TYPES.map((f) => ({ value: f, label: t(`reading.type.${f}`) }));
  const quadrants = QUADRANTS.map((q) => ({ value: q, label: t(`reading.quadrant.${q}`) }));
  const hasErrors = Object.keys(errors).length > 0;
  return (
    <Form method="post" action={`/examens/${examId}/lecture`} className="card space-y-4" aria-labelledby="reading-form-title" noValidate>
      <CsrfInput />
      {list ? <input type="hidden" name={LIST_PARAM} value={listParam(list)} /> : null}
      <h2 id="reading-form-title" className="text-lg font-semibold">
        {t(`reading.kind.${kind}`)}
      </h2>
      {missingViews.length > 0 ? (
        <p className="rounded bg-amber-50 p-2 text-sm text-amber-900" data-testid="missing-views">
          {t("reading.missingViews")} {missingViews.join(", ")}
        </p>
      ) : null}
      {hasErrors ? (
        <p role="alert" className="rounded bg-red-50 p-2 text-sm text-red-800">
          {t("reading.invalid")}
          {errors.form ? ` ${errors.form}` : ""}
          {errors.breasts ? ` ${errors.breasts}` : ""}
        </p>
      ) : null}
      <div className="grid gap-4 sm:grid-cols-2">
        {SIDES.map((side) => (
          <fieldset key={side} className="rounded border border-slate-200 p-3">
            <legend className="px-1 text-sm font-semibold">{t(side === "R" ? "reading.breastR" : "reading.breastL")}</legend>
            <div className="grid grid-cols-2 gap-2">
              <Select name={`${side}.acr`} label={t("reading.acr")} options={acr} values={values} errors={errors} />
              <Select name={`${side}.density`} label={t("reading.density")} options={density} values={values} errors={errors} />
            </div>
          </fieldset>
        ))}
      </div>
      <fieldset className="rounded border border-slate-200 p-3">
        <legend className="px-1 text-sm font-semibold">{t("reading.findings")}</legend>
        <div className="space-y-3">
          {Array.from({ length: FINDING_ROWS }, (_, i) => (
            <div key={i} className="grid grid-cols-2 gap-2 sm:grid-cols-5" role="group" aria-label={`${t("reading.finding")} ${i + 1}`}>
              <Select name={`finding.${i}.laterality`} label={t("reading.side")} options={sides} values={values} errors={errors} />
              <Select name={`finding.${i}.type`} label={t("reading.type")} options={types} values={values} errors={errors} />
              <Select name={`finding.${i}.quadrant`} label={t("reading.quadrant")} options={quadrants} values={values} errors={errors} />
              <NumberField name={`finding.${i}.clock`} label={t("reading.clock")} min={1} max={12} step={1} values={values} errors={errors} />
              <NumberField name={`finding.${i}.sizeMm`} label={t("reading.size")} min={0.1} max={MAX_SIZE_MM} step={0.1} values={values} errors={errors} />
            </div>
          ))}
        </div>
      </fieldset>
      <label className="flex items-center gap-2 text-sm">
        <input type="checkbox" name="technicallyInadequate" defaultChecked={values.technicallyInadequate === "on"} />
        {t("reading.inadequate")}
      </label>
      <div>
        <label htmlFor="reading-conclusion" className="block text-sm font-medium text-slate-800">
          {t("reading.conclusion")}
        </label>
        <textarea id="reading-conclusion" name="conclusion" rows={3} maxLength={MAX_CONCLUSION} defaultValue={values.conclusion ?? ""} className="input mt-1" />
        {errors.conclusion ? <p className="mt-1 text-xs text-red-700">{errors.conclusion}</p> : null}
      </div>
      <div className="flex flex-wrap gap-2">
        <button type="submit" className="btn" disabled={busy}>
          {t("reading.submit")}
        </button>
        {list ? (
          <button type="submit" name={NEXT_FIELD} value={NEXT_VALUE} className="btn" disabled={busy} data-testid="submit-next">
            {t("reading.submitNext")}
          </button>
        ) : null}
      </div>
    </Form>
  );
}

function NumberField({
  name,
  label,
  values,
  errors,
  ...limits
}: { name: string; label: string; values: Values; errors: Values; min: number; max: number; step: number }) {
  const id = `reading-${name.replace(/\./g, "-")}`;
  const error = errors[name];
  return (
    <div>
      <label htmlFor={id} className="block text-xs font-medium text-slate-700">
        {label}
      </label>
      <input id={id} name={name} type="number" inputMode="decimal" defaultValue={values[name] ?? ""} className="input mt-1" aria-invalid={error ? true : undefined} {...limits} />
      {error ? <p className="mt-1 text-xs text-red-700">{error}</p> : null}
    </div>
  );
}

export interface ReadingSummary {
  id: string;
  kind: ReadingKind;
  reader: { name: string };
  createdAt: string;
  technicallyInadequate: boolean;
  breasts: { R: { acr: number; density: string }; L: { acr: number; density: string } } | null;
  findings: { laterality: string; type: string; quadrant?: string; clock?: number; sizeMm?: number }[];
  conclusion: string | null;
}

/** The readings the viewer may see (her own before the result is final; all of them after). */
export function ReadingsPanel({ readings, formatDate }: { readings: ReadingSummary[]; formatDate: (d: string) => string }) {
  const t = useT();
  return (
    <section className="card space-y-3" aria-labelledby="readings-title" data-testid="readings">
      <h2 id="readings-title" className="text-lg font-semibold">
        {t("reading.readings")}
      </h2>
      {readings.length === 0 ? <p className="text-sm text-slate-600">{t("reading.noneVisible")}</p> : null}
      {readings.map((r) => (
        <article key={r.id} className="rounded border border-slate-200 p-3 text-sm" data-kind={r.kind}>
          <h3 className="font-semibold">
            {t(`reading.kind.${r.kind}`)} — {t("reading.by")} {r.reader.name}, {formatDate(r.createdAt)}
          </h3>
          {r.breasts ? (
            <p>
              {t("reading.breastR")} : ACR {r.breasts.R.acr}, {t("reading.density").toLowerCase()} {r.breasts.R.density} · {t("reading.breastL")} : ACR{" "}
              {r.breasts.L.acr}, {t("reading.density").toLowerCase()} {r.breasts.L.density}
            </p>
          ) : null}
          {r.technicallyInadequate ? <p className="text-amber-800">{t("reading.inadequate")}</p> : null}
          {r.findings.length > 0 ? (
            <ul className="list-disc pl-5">
              {r.findings.map((f, i) => (
                <li key={i}>
                  {t(`reading.type.${f.type}` as StringKey)}, {t(`reading.side.${f.laterality}` as StringKey)}
                  {f.quadrant ? `, ${t(`reading.quadrant.${f.quadrant}` as StringKey)}` : ""}
                  {f.clock ? `, ${f.clock} h` : ""}
                  {f.sizeMm ? `, ${f.sizeMm} mm` : ""}
                </li>
              ))}
            </ul>
          ) : null}
          {r.conclusion ? <p className="italic">{r.conclusion}</p> : null}
        </article>
      ))}
    </section>
  );
}

/**
 * "Next exam" of the reader's worklist (a plain link: works without JavaScript; the viewer binds `N` to it), or, at
 * the end of the list, the way back to the worklists.
 */
export function NextExam({ worklist }: { worklist: { list: WorklistName; next: string | null } | null }) {
  const t = useT();
  if (!worklist) return null;
  return worklist.next ? (
    <Link className="btn" to={worklist.next} data-testid="next-exam" aria-keyshortcuts="N" title={`${t("reading.next")} ${t(`reading.nextOf.${worklist.list}`)}`}>
      {t("reading.next")} <kbd className="ml-1 text-xs opacity-80">N</kbd>
    </Link>
  ) : (
    <p className="text-sm text-slate-600" data-testid="list-done">
      {t("reading.listDone")}{" "}
      <Link className="underline" to="/lectures">
        {t("reading.backToWorklists")}
      </Link>
    </p>
  );
}
