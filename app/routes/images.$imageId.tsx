import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation, useRouteLoaderData, useSearchParams } from "@remix-run/react";
import { useEffect, useRef, useState } from "react";
import { HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { readIntent } from "../http/intent.server";
import { idParam } from "../http/params.server";
import { unknownAs404 } from "../http/error-page.server";
import { reasonText } from "../i18n/reasons";
import { previewProblem } from "../imaging/dicom.server";
import { ImageError } from "../imaging/image-error";
import { readerLang } from "../imaging/image-failure.server";
import { authorize } from "../policy/policy.server";
import type { loader as rootLoader } from "../root";
import { vault } from "../vault/instance.server";
import { predict, predictionsOfImage } from "../predictions/predictions.server";
import { integrityRecorder, loadImage } from "../vault/serve.server";
import { formatBytes, formatContentType, formatDate, formatDicomDate, formatNumber, formatPercent, formatTransferSyntax } from "../ui/format";
import { Alert, CsrfInput } from "../ui/forms";
import { ConfirmStep } from "../ui/confirm";
import { z } from "zod";
import { useT } from "../ui/shell";
import { pageTitle } from "../ui/meta";
import { PatientHeader } from "../ui/exams";
import { getPatient } from "../patients/patients.server";

export const meta = pageTitle("image.title");

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  const row = await loadImage(imageId);
  const resource = { type: "image", id: imageId, patientId: row?.patientId } as const;
  return unknownAs404(ctx, Boolean(row), () => perform(ctx, "image.read", resource, async () => {
    const [erase, analyse, readPredictions] = await Promise.all([
      authorize(ctx.actor, "image.erase", resource),
      authorize(ctx.actor, "image.analyse", resource),
      authorize(ctx.actor, "prediction.read", resource),
    ]);
    // Model output is for the care team: the patient's view of her image carries none.
    const predictions = readPredictions.allowed ? await predictionsOfImage(imageId) : [];
    const patient = (await getPatient(row!.patientId))!;
    return {
      patient: { id: patient.id, displayName: patient.displayName, ipp: patient.ipp, birthDate: patient.birthDate },
      predictions,
      // Shown with its reason when consent (or the role) does not allow it; the policy decides again on submit.
      analyse: analyse.allowed ? { allowed: true as const } : { allowed: false as const, reason: analyse.reason },
      image: {
        id: row!.id,
        patientId: row!.patientId,
        contentType: row!.contentType,
        size: row!.size,
        sha256: row!.sha256,
        width: row!.width,
        height: row!.height,
        bitDepth: row!.bitDepth,
        dicom: row!.dicom,
        createdAt: row!.createdAt,
        erased: Boolean(row!.erasedAt),
      },
      // A DICOM whose preview cannot be made, known from its header: the reason is shown instead of an image.
      previewProblem: row!.contentType === "application/dicom" && !row!.erasedAt ? previewProblem(row!.dicom) : null,
      canErase: erase.allowed,
      // The AI section is the care team's: the patient's view of her image has none at all.
      showAi: readPredictions.allowed,
      backTo: ctx.actor!.role === "patient" ? "/mon-dossier" : `/patients/${row!.patientId}`,
    };
  }));
}

/** The page's two intents: an AI reading, or an erasure (without its confirmation field it only shows the confirmation step). */
const imageIntent = z.discriminatedUnion("intent", [
  z.object({ intent: z.literal("analyse") }),
  z.object({ intent: z.literal("erase"), confirm: z.literal("1").optional() }),
]);

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  // One zod discriminated union of the page's intents: an unknown or missing intent is a 400, never an erasure.
  const { intent } = await readIntent(ctx, imageIntent);
  const row = await loadImage(imageId);
  const resource = { type: "image", id: imageId, patientId: row?.patientId } as const;
  if (intent === "analyse") {
    await readMutation(ctx, "image.analyse");
    try {
      const prediction = await perform(ctx, "image.analyse", resource, () => predict(row!, ctx.actor!, integrityRecorder(ctx, row!)), {
        describe: (p) => ({ resourceType: "prediction", resourceId: p.id }),
      });
      return data({ prediction, error: null }, { status: 201 });
    } catch (err) {
      if (err instanceof HttpError && err.status < 500) {
        const message = err instanceof ImageError && readerLang(args.request) === "en" ? err.messageEn : err.message;
        return data({ prediction: null, error: message }, { status: err.status, headers: err.headers });
      }
      throw err;
    }
  }
  const form = await readMutation(ctx, "image.erase");
  // Erasing is irreversible: without the confirmation step's field, show that step (works without JavaScript).
  // (Only for whoever may erase: anyone else goes on to perform(), which refuses and audits the refusal.)
  if (form.get("confirm") !== "1" && (await authorize(ctx.actor, "image.erase", resource)).allowed) {
    return redirect(`/images/${imageId}?effacer=1#effacement`, 303);
  }
  await perform(ctx, "image.erase", resource, () => vault.eraseImage(imageId, ctx.actor!.id));
  return redirect(`/patients/${row!.patientId}?efface=1`, 303);
}

/**
 * Erasing goes through a confirmation step that says what it does: the button opens it (a GET, `?effacer=1`, so
 * it works without JavaScript), and only its own form, with `confirm=1`, erases.
 */
function EraseControl({ imageId }: { imageId: string }) {
  const t = useT();
  const [params] = useSearchParams();
  if (!params.get("effacer")) {
    return (
      <Form method="get" action={`/images/${imageId}`}>
        <input type="hidden" name="effacer" value="1" />
        <button type="submit" className="btn bg-red-700 hover:bg-red-800">{t("image.erase")}</button>
      </Form>
    );
  }
  return (
    <ConfirmStep
      id="effacement"
      testId="erase-confirm"
      heading="h3"
      title={t("image.eraseTitle")}
      action={`/images/${imageId}`}
      fields={{ intent: "erase" }}
      confirmLabel={t("image.eraseConfirmButton")}
      cancelTo={`/images/${imageId}`}
    >
      <p>{t("image.eraseConsequences")}</p>
    </ConfirmStep>
  );
}

export default function ImagePage() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { image, canErase, backTo, analyse, predictions, patient, showAi, previewProblem: problem } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const analysing = useNavigation().formData?.get("intent") === "analyse";
  const latest = predictions[0] ?? null;
  const [showMap, setShowMap] = useState(true);
  const [opacity, setOpacity] = useState(0.5);
  const file = `/images/${image.id}/fichier`;
  const isDicom = image.contentType === "application/dicom";
  const facts: [string, string][] = [
    [t("images.type"), formatContentType(image.contentType)],
    [t("images.dimensions"), image.width && image.height ? `${formatNumber(image.width, lang)} × ${formatNumber(image.height, lang)} px` : "—"],
    [t("image.bits"), image.bitDepth ? String(image.bitDepth) : "—"],
    [t("images.size"), formatBytes(image.size, lang)],
    ["SHA-256", image.sha256],
    [t("patients.created"), formatDate(image.createdAt, lang)],
    ...(image.dicom
      ? ([
          [t("dicom.modality"), image.dicom.modality ?? "—"],
          [t("dicom.view"), image.dicom.viewPosition ?? "—"],
          [t("dicom.laterality"), image.dicom.laterality ?? "—"],
          [t("dicom.studyDate"), formatDicomDate(image.dicom.studyDate, lang)],
          [t("dicom.transferSyntax"), formatTransferSyntax(image.dicom.transferSyntaxUid, lang)],
        ] as [string, string][])
      : []),
  ];
  return (
    <div className="space-y-6">
      <PatientHeader patient={patient} level={2} />
      <div className="flex flex-wrap items-center justify-between gap-3">
        <h1 className="text-2xl font-bold">{t("image.title")}</h1>
        <Link to={backTo} className="text-sm text-brand-700 underline">{t("image.back")}</Link>
      </div>
      {image.erased ? (
        <Alert kind="info">{t("image.erased")}</Alert>
      ) : (
        <div className="grid gap-6 lg:grid-cols-3">
          <figure className="card lg:col-span-2">
            <div className="relative mx-auto w-fit">
              {problem ? (
                <Alert kind="error">
                  <strong>{t("image.unavailable")}</strong> — {lang === "en" ? problem.en : problem.fr} {t("image.unavailableHint")}
                </Alert>
              ) : (
                <ImageOrReason src={isDicom ? `${file}?apercu=1` : file} alt={isDicom ? t("image.preview") : t("image.title")} />
              )}
              {latest?.heatmapUrl && showMap ? (
                <img
                  src={`/predictions/${latest.id}/carte`}
                  alt={t("ai.heatmap")}
                  data-testid="heatmap"
                  className="pointer-events-none absolute inset-0 h-full w-full"
                  style={{ opacity }}
                />
              ) : null}
            </div>
            {latest?.heatmapUrl ? (
              <div className="mt-3 flex flex-wrap items-center gap-4 text-sm">
                <label className="flex items-center gap-2">
                  <input type="checkbox" checked={showMap} onChange={(e) => setShowMap(e.target.checked)} />
                  {t("ai.showHeatmap")}
                </label>
                <label className="flex items-center gap-2">
                  {t("ai.opacity")}
                  <input type="range" min={0} max={1} step={0.05} value={opacity} onChange={(e) => setOpacity(Number(e.target.value))} />
                </label>
              </div>
            ) : latest ? (
              <p className="mt-3 text-sm text-slate-600" data-testid="no-heatmap">{t("ai.noHeatmap")}</p>
            ) : null}
            {isDicom ? <figcaption className="mt-2 text-center text-xs text-slate-500">{t("image.preview")}</figcaption> : null}
          </figure>
          <aside className="card space-y-4">
            <h2 className="text-lg font-semibold">{t("image.metadata")}</h2>
            <dl className="grid grid-cols-3 gap-x-2 gap-y-1 text-sm">
              {facts.map(([k, v]) => (
                <div key={k} className="contents">
                  <dt className="text-slate-500">{k}</dt>
                  <dd className="col-span-2 break-all">{v}</dd>
                </div>
              ))}
            </dl>
            <a className="btn-secondary" href={`${file}?telecharger=1`}>{t("image.download")}</a>
            {showAi ? (
            <section aria-labelledby="ai-title" className="space-y-3 border-t border-slate-200 pt-4">
              <h2 id="ai-title" className="text-lg font-semibold">{t("ai.title")}</h2>
              <Form method="post">
                <CsrfInput />
                <button type="submit" name="intent" value="analyse" className="btn" disabled={!analyse.allowed || analysing}>
                  {analysing ? t("ai.running") : t("ai.run")}
                </button>
              </Form>
              {!analyse.allowed ? <p className="text-sm text-slate-600" data-testid="ai-refusal">{reasonText(analyse.reason, lang)}</p> : null}
              {result?.error ? <Alert kind="error">{result.error}</Alert> : null}
              {predictions.length === 0 ? (
                <p className="text-sm text-slate-600">{t("ai.none")}</p>
              ) : (
                <ol className="space-y-3" data-testid="predictions">
                  {predictions.map((p) => (
                    <li key={p.id} className="rounded-md bg-slate-50 p-3 text-sm ring-1 ring-slate-200">
                      <p className="text-base font-semibold" data-testid="prediction-label">
                        {p.label} — {formatPercent(p.probability, lang)}
                      </p>
                      <p className="text-slate-600">
                        {Object.entries(p.probabilities)
                          .map(([k, v]) => `${k} ${formatPercent(v, lang)}`)
                          .join(" · ")}
                      </p>
                      <p className="text-xs text-slate-500">
                        {p.model.name} {p.model.version} · SHA-256 {p.model.sha256.slice(0, 12)}… · {formatDate(p.createdAt, lang)} ·{" "}
                        {formatNumber(p.durationMs, lang)} ms
                      </p>
                      {p.notice ? (
                        <p className="mt-1 text-xs font-semibold text-amber-800" data-testid="model-notice">
                          ⚠ {t("ai.demoNotice")}
                        </p>
                      ) : null}
                    </li>
                  ))}
                </ol>
              )}
            </section>
            ) : null}
            {canErase ? <EraseControl imageId={image.id} /> : null}
          </aside>
        </div>
      )}
    </div>
  );
}

/**
 * The image, or — when its URL answers an error (a corrupt stream found while decoding, a full decode pool) — the
 * reason the server gave (JSON `{ error: { code, message } }`, in the reader's language) instead of a broken image.
 */
function ImageOrReason({ src, alt }: { src: string; alt: string }) {
  const t = useT();
  const ref = useRef<HTMLImageElement>(null);
  const [reason, setReason] = useState<string | null>(null);
  const explain = () => {
    fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(async (r) => {
        const body = (await r.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
        setReason(`${body?.error?.message ?? r.statusText} (${r.status}${body?.error?.code ? ` ${body.error.code}` : ""})`);
      })
      .catch(() => setReason(t("image.unavailable")));
  };
  // The error may have happened before hydration attached onError.
  useEffect(() => {
    const img = ref.current;
    if (img && img.complete && img.naturalWidth === 0) explain();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  if (reason) {
    return (
      <div role="alert" data-testid="preview-error" className="max-w-prose p-4 text-sm text-red-800">
        <strong>{t("image.unavailable")}</strong> — {reason} {t("image.unavailableHint")}
      </div>
    );
  }
  return <img ref={ref} src={src} alt={alt} onError={explain} className="block max-h-[70vh] w-auto bg-black" />;
}
