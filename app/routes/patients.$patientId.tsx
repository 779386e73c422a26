import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { useLoaderData, useRouteLoaderData } from "@remix-run/react";
import { consentHistoryOf, consentState } from "../consent/consent.server";
import { pageContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { getPatient } from "../patients/patients.server";
import type { loader as rootLoader } from "../root";
import { ConsentHistory, ConsentList } from "../ui/consent";
import { formatDate } from "../ui/format";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Dossier patient — Nexus" }];

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  return perform(ctx, "patient.read", { type: "patient", id: patientId }, async () => {
    const [patient, consents, history] = await Promise.all([
      getPatient(patientId),
      consentState(patientId),
      consentHistoryOf(patientId),
    ]);
    return { patient: patient!, consents, history };
  });
}

export default function PatientPage() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { patient, consents, history } = useLoaderData<typeof loader>();
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold">{patient.displayName}</h1>
        <p className="text-sm text-slate-500">
          {t("patients.created")} {formatDate(patient.createdAt, lang)}
        </p>
      </div>
      <div className="grid gap-6 md:grid-cols-2">
        <section className="card" aria-labelledby="consents-title">
          <h2 id="consents-title" className="text-lg font-semibold">{t("patient.consents")}</h2>
          <ConsentList state={consents} lang={lang} />
        </section>
        <section className="card" aria-labelledby="images-title">
          <h2 id="images-title" className="text-lg font-semibold">{t("patient.images")}</h2>
          <p className="mt-2 text-sm text-slate-600">{t("patient.imagesSoon")}</p>
        </section>
      </div>
      <ConsentHistory history={history} />
    </div>
  );
}
