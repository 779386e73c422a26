import type { LoaderFunctionArgs } from "@remix-run/node";
import { useLoaderData, useRouteLoaderData, useSearchParams } from "@remix-run/react";
import { consentHistoryOf, consentState } from "../consent/consent.server";
import { pageContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { getPatient } from "../patients/patients.server";
import { authorize } from "../policy/policy.server";
import type { loader as rootLoader } from "../root";
import { predictionsOfPatient } from "../predictions/predictions.server";
import { vault } from "../vault/instance.server";
import { vaultMessage } from "../vault/messages";
import { reasonText } from "../i18n/reasons";
import { ConsentHistory, ConsentList } from "../ui/consent";
import { formatDate } from "../ui/format";
import { Alert } from "../ui/forms";
import { ImageList } from "../ui/images";
import { PredictionHistory } from "../ui/predictions";
import { useT } from "../ui/shell";
import { UploadForm } from "../ui/upload";
import { pageTitle } from "../ui/meta";
import { ExamList, PatientHeader } from "../ui/exams";
import { forCareTeam, listExams } from "../exams/exams.server";
import { describeFields, IDENTITY_FIELDS, type IdentityField } from "../exams/identity.server";

export const meta = pageTitle("title.patient");

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  return perform(ctx, "patient.read", { type: "patient", id: patientId }, async () => {
    const resource = { type: "patient", id: patientId } as const;
    const [patient, consents, history, images, view, upload, readAi, exams] = await Promise.all([
      getPatient(patientId),
      consentState(patientId),
      consentHistoryOf(patientId),
      vault.listImages(patientId),
      // What the actor may do is shown (with the reason when not); the policy still decides on every request.
      authorize(ctx.actor, "image.read", { type: "image", patientId }),
      authorize(ctx.actor, "image.upload", resource),
      authorize(ctx.actor, "prediction.read", { type: "image", patientId }),
      listExams(patientId),
    ]);
    const predictions = readAi.allowed ? await predictionsOfPatient(patientId) : [];
    const url = new URL(args.request.url);
    const mismatch = (url.searchParams.get("champs") ?? "").split(",").filter((f): f is IdentityField => (IDENTITY_FIELDS as readonly string[]).includes(f));
    return {
      patient: patient!,
      consents,
      history,
      images: images.filter((i) => !i.erasedAt),
      viewRefusal: view.allowed ? null : view.reason,
      // After a withdrawal of care, no upload form and no links that can only end in a 403.
      canUpload: upload.allowed && !(consents.care.updatedAt !== null && !consents.care.granted),
      careWithdrawn: !consents.care.granted && consents.care.updatedAt !== null,
      predictions,
      exams: exams.map(forCareTeam).map((e) => ({ ...e, views: e.views.filter((v) => v.laterality && v.view).map((v) => `${v.laterality}-${v.view}`) })),
      mismatch: mismatch.length ? { fr: describeFields(mismatch, "fr"), en: describeFields(mismatch, "en") } : null,
    };
  });
}

/** After an erasure (`?efface=1`) or an upload without JavaScript (`?envoyes=2&refus=unsupported_type,too_large`). */
function Flash() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const [params] = useSearchParams();
  if (params.get("efface")) return <Alert kind="success">{t("image.erased")}</Alert>;
  const sent = params.get("envoyes");
  if (sent === null) return null;
  const refused = (params.get("refus") ?? "").split(",").filter(Boolean);
  return (
    <Alert kind={refused.length ? "error" : "success"}>
      <p>
        {sent} {t("upload.done")}
      </p>
      {refused.length ? (
        <ul className="mt-1 list-disc pl-5">
          {refused.map((code, i) =>
            code === "identity_mismatch" ? null : <li key={i}>{params.get("detail") ?? vaultMessage(code, lang)}</li>,
          )}
        </ul>
      ) : null}
    </Alert>
  );
}

export default function PatientPage() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { patient, consents, history, images, viewRefusal: refusal, canUpload, careWithdrawn, predictions, exams, mismatch } =
    useLoaderData<typeof loader>();
  const viewRefusal = reasonText(refusal, lang);
  return (
    <div className="space-y-6">
      <PatientHeader patient={patient}>
        <p className="text-sm text-slate-500">
          {t("patients.created")} {formatDate(patient.createdAt, lang)}
        </p>
      </PatientHeader>
      <Flash />
      {careWithdrawn ? <Alert kind="info">{t("patient.careWithdrawn")}</Alert> : null}
      {mismatch ? (
        <Alert kind="error">
          <span data-testid="identity-mismatch">{t("upload.identityMismatch")} {mismatch[lang]}</span>
        </Alert>
      ) : null}
      <section className="card" aria-labelledby="exams-title">
        <h2 id="exams-title" className="text-lg font-semibold">{t("exams.title")}</h2>
        <ExamList exams={exams} linkToExam={!viewRefusal} />
      </section>
      <div className="grid gap-6 md:grid-cols-2">
        <section className="card" aria-labelledby="consents-title">
          <h2 id="consents-title" className="text-lg font-semibold">{t("patient.consents")}</h2>
          <ConsentList state={consents} lang={lang} />
        </section>
        {canUpload ? (
          <section className="card" aria-labelledby="upload-title">
            <h2 id="upload-title" className="text-lg font-semibold">{t("upload.title")}</h2>
            <div className="mt-3">
              <UploadForm patientId={patient.id} exams={exams.map((e) => ({ id: e.id, date: e.date }))} />
            </div>
          </section>
        ) : null}
      </div>
      <section className="card" aria-labelledby="images-title">
        <h2 id="images-title" className="text-lg font-semibold">{t("patient.images")}</h2>
        {viewRefusal ? (
          <div className="mt-2">
            <Alert kind="info">{viewRefusal}</Alert>
          </div>
        ) : null}
        <ImageList images={images} viewRefusal={viewRefusal} />
      </section>
      <PredictionHistory predictions={predictions} viewRefusal={viewRefusal} />
      <ConsentHistory history={history} />
    </div>
  );
}
