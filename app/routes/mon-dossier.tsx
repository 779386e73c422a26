import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { useLoaderData, useRouteLoaderData } from "@remix-run/react";
import { consentHistoryOf, consentState } from "../consent/consent.server";
import { failure, pageContext, perform } from "../http/context.server";
import { getPatient } from "../patients/patients.server";
import type { loader as rootLoader } from "../root";
import { vault } from "../vault/instance.server";
import { ConsentHistory, ConsentList } from "../ui/consent";
import { ImageList } from "../ui/images";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Mon dossier — Nexus" }];

/** A patient's own home page: their record, as the policy lets only them see it. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const patientId = ctx.actor?.patientId ?? undefined;
  if (ctx.actor && ctx.actor.role === "patient" && !patientId) throw failure(ctx, 404, "not_found", "Aucun dossier patient n'est lié à ce compte.");
  return perform(ctx, "patient.read", { type: "patient", id: patientId }, async () => {
    const [patient, consents, history, images] = await Promise.all([
      getPatient(patientId!),
      consentState(patientId!),
      consentHistoryOf(patientId!),
      vault.listImages(patientId!),
    ]);
    return { patient: patient!, consents, history, images: images.filter((i) => !i.erasedAt) };
  });
}

export default function MyRecord() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { patient, consents, history, images } = useLoaderData<typeof loader>();
  return (
    <div className="space-y-6">
      <h1 className="text-2xl font-bold">
        {t("me.title")} — {patient.displayName}
      </h1>
      <div className="grid gap-6 md:grid-cols-2">
        <section className="card" aria-labelledby="consents-title">
          <h2 id="consents-title" className="text-lg font-semibold">{t("patient.consents")}</h2>
          <ConsentList state={consents} lang={lang} />
        </section>
        <section className="card" aria-labelledby="images-title">
          <h2 id="images-title" className="text-lg font-semibold">{t("patient.images")}</h2>
          <ImageList images={images} />
        </section>
      </div>
      <ConsentHistory history={history} />
    </div>
  );
}
