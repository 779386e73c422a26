import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation, useRouteLoaderData } from "@remix-run/react";
import { useState } from "react";
import { failure, HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { idParam } from "../http/params.server";
import { authorize } from "../policy/policy.server";
import type { loader as rootLoader } from "../root";
import { vault } from "../vault/instance.server";
import { predict, predictionsOfImage } from "../predictions/predictions.server";
import { integrityRecorder, loadImage } from "../vault/serve.server";
import { formatDate } from "../ui/format";
import { Alert, CsrfInput } from "../ui/forms";
import { formatBytes } from "../ui/images";
import { z } from "zod";
import { useT } from "../ui/shell";
import { PatientHeader } from "../ui/exams";
import { getPatient } from "../patients/patients.server";

export const meta: MetaFunction = () => [{ title: "Mammographie — Nexus" }];

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  const row = await loadImage(imageId);
  const resource = { type: "image", id: imageId, patientId: row?.patientId } as const;
  return perform(ctx, "image.read", resource, async () => {
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
      canErase: erase.allowed,
      // The AI section is the care team's: the patient's view of her image has none at all.
      showAi: readPredictions.allowed,
      backTo: ctx.actor!.role === "patient" ? "/mon-dossier" : `/patients/${row!.patientId}`,
    };
  });
}

const imageIntent = z.discriminatedUnion("intent", [z.object({ intent: z.literal("analyse") }), z.object({ intent: z.literal("erase") })]);

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  // One zod discriminated union of the page's intents: an unknown or missing intent is a 400, never an erasure.
  const parsed = imageIntent.safeParse({ intent: (await args.request.clone().formData()).get("intent") });
  if (!parsed.success) throw failure(ctx, 400, "invalid", "Action inconnue.");
  const row = await loadImage(imageId);
  const resource = { type: "image", id: imageId, patientId: row?.patientId } as const;
  if (parsed.data.intent === "analyse") {
    await readMutation(ctx, "image.analyse");
    try {
      const prediction = await perform(ctx, "image.analyse", resource, () => predict(row!, ctx.actor!, integrityRecorder(ctx, row!)), {
        describe: (p) => ({ resourceType: "prediction", resourceId: p.id }),
      });
      return data({ prediction, error: null }, { status: 201 });
    } catch (err) {
      if (err instanceof HttpError && err.status < 500) return data({ prediction: null, error: err.message }, { status: err.status });
      throw err;
    }
  }
  await readMutation(ctx, "image.erase");
  await perform(ctx, "image.erase", resource, () => vault.eraseImage(imageId, ctx.actor!.id));
  return redirect(`/patients/${row!.patientId}?efface=1`, 303);
}

export default function ImagePage() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { image, canErase, backTo, analyse, predictions, patient, showAi } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const analysing = useNavigation().formData?.get("intent") === "analyse";
  const latest = predictions[0] ?? null;
  const [showMap, setShowMap] = useState(true);
  const [opacity, setOpacity] = useState(0.5);
  const file = `/images/${image.id}/fichier`;
  const isDicom = image.contentType === "application/dicom";
  const facts: [string, string][] = [
    [t("images.type"), image.contentType],
    [t("images.dimensions"), image.width && image.height ? `${image.width} × ${image.height} px` : "—"],
    [t("image.bits"), image.bitDepth ? String(image.bitDepth) : "—"],
    [t("images.size"), formatBytes(image.size)],
    ["SHA-256", image.sha256],
    [t("patients.created"), formatDate(image.createdAt, lang)],
    ...(image.dicom
      ? ([
          [t("dicom.modality"), image.dicom.modality ?? "—"],
          [t("dicom.view"), image.dicom.viewPosition ?? "—"],
          [t("dicom.laterality"), image.dicom.laterality ?? "—"],
          [t("dicom.studyDate"), image.dicom.studyDate ?? "—"],
          [t("dicom.transferSyntax"), image.dicom.transferSyntaxUid ?? "—"],
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
              <img
                src={isDicom ? `${file}?apercu=1` : file}
                alt={isDicom ? t("image.preview") : t("image.title")}
                className="block max-h-[70vh] w-auto bg-black"
              />
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
              {!analyse.allowed ? <p className="text-sm text-slate-600" data-testid="ai-refusal">{analyse.reason}</p> : null}
              {result?.error ? <Alert kind="error">{result.error}</Alert> : null}
              {predictions.length === 0 ? (
                <p className="text-sm text-slate-600">{t("ai.none")}</p>
              ) : (
                <ol className="space-y-3" data-testid="predictions">
                  {predictions.map((p) => (
                    <li key={p.id} className="rounded-md bg-slate-50 p-3 text-sm ring-1 ring-slate-200">
                      <p className="text-base font-semibold" data-testid="prediction-label">
                        {p.label} — {(p.probability * 100).toFixed(1)} %
                      </p>
                      <p className="text-slate-600">
                        {Object.entries(p.probabilities)
                          .map(([k, v]) => `${k} ${(v * 100).toFixed(1)} %`)
                          .join(" · ")}
                      </p>
                      <p className="text-xs text-slate-500">
                        {p.model.name} {p.model.version} · SHA-256 {p.model.sha256.slice(0, 12)}… · {formatDate(p.createdAt, lang)} ·{" "}
                        {Math.round(p.durationMs)} ms
                      </p>
                      {p.notice ? (
                        <p className="mt-1 text-xs font-semibold text-amber-800" data-testid="model-notice">
                          ⚠ {p.notice}
                        </p>
                      ) : null}
                    </li>
                  ))}
                </ol>
              )}
            </section>
            ) : null}
            {canErase ? (
              <Form
                method="post"
                onSubmit={(e) => {
                  if (!window.confirm(t("image.eraseConfirm"))) e.preventDefault();
                }}
              >
                <CsrfInput />
                <input type="hidden" name="intent" value="erase" />
                <button type="submit" className="btn bg-red-700 hover:bg-red-800">{t("image.erase")}</button>
              </Form>
            ) : null}
          </aside>
        </div>
      )}
    </div>
  );
}
