import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useRouteLoaderData, useSearchParams } from "@remix-run/react";
import { accessLogCursor, accessLogPage } from "../audit/access-log.server";
import { consentHistoryOf, consentState, setConsent } from "../consent/consent.server";
import { failure, pageContext, perform, readMutation, type Ctx } from "../http/context.server";
import { actionLabel } from "../i18n/actions";
import { getPatient } from "../patients/patients.server";
import type { loader as rootLoader } from "../root";
import { vault } from "../vault/instance.server";
import { PURPOSES, type Outcome, type Purpose, type Role } from "../vocabulary";
import { ConsentHistory, ConsentList } from "../ui/consent";
import { formatDate } from "../ui/format";
import { Alert, CsrfInput } from "../ui/forms";
import { ConfirmStep } from "../ui/confirm";
import { ImageList } from "../ui/images";
import { ExamList, PatientHeader } from "../ui/exams";
import { forPatient, listExams } from "../exams/exams.server";
import { useT } from "../ui/shell";
import { ScrollRegion } from "../ui/table";
import { pageTitle } from "../ui/meta";

export const meta = pageTitle("me.title");

/** The patient's own record id; other roles have none and are refused by the policy. */
function ownPatientId(ctx: Ctx): string | undefined {
  if (ctx.actor?.role === "patient" && !ctx.actor.patientId) {
    throw failure(ctx, 404, "not_found", "Aucun dossier patient n'est lié à ce compte.");
  }
  return ctx.actor?.patientId ?? undefined;
}

/**
 * The patient portal: her identity, her exams (status, and the result once final — never a model score or
 * heatmap), consents with grant/revoke, their history, images, and who accessed the data.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const patientId = ownPatientId(ctx);
  const before = accessLogCursor(new URL(args.request.url).searchParams.get("journal"));
  return perform(ctx, "patient.read", { type: "patient", id: patientId }, async () => {
    const [patient, consents, history, images, accessLog, exams] = await Promise.all([
      getPatient(patientId!),
      consentState(patientId!),
      consentHistoryOf(patientId!),
      vault.listImages(patientId!),
      accessLogPage(patientId!, before),
      listExams(patientId!),
    ]);
    return {
      patient: { id: patient!.id, displayName: patient!.displayName, ipp: patient!.ipp, birthDate: patient!.birthDate },
      consents,
      history,
      images: images.filter((i) => !i.erasedAt),
      accessLog: accessLog.events,
      olderLog: accessLog.older,
      pagedLog: before !== undefined,
      exams: exams.map(forPatient),
    };
  });
}

/**
 * Grant, or withdraw after the confirmation step: a withdrawal without `confirm` is sent to that step (a GET page
 * that explains its consequences), so neither a stray click nor a page without JavaScript withdraws by accident.
 */
export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const form = await readMutation(ctx, "consent.update");
  const patientId = ownPatientId(ctx);
  const purpose = String(form.get("purpose")) as Purpose;
  const granted = form.get("granted") === "true";
  if (!PURPOSES.includes(purpose)) throw failure(ctx, 400, "unknown_purpose", "Finalité inconnue.");
  if (!granted && form.get("confirm") !== "1" && patientId) throw redirect(`/mon-dossier?retirer=${purpose}#consents-title`, 303);
  await perform(
    ctx,
    "consent.update",
    { type: "patient", id: patientId },
    () => setConsent(patientId!, purpose, granted, ctx.actor!),
    { describe: () => ({ resourceType: "consent", resourceId: `${purpose}:${granted ? "granted" : "revoked"}` }) },
  );
  return data({ saved: purpose });
}

/** The confirmation step of a withdrawal: what it changes, then confirm (POST) or cancel (a link). */
function WithdrawConfirm({ purpose }: { purpose: Purpose }) {
  const t = useT();
  return (
    <div className="mt-4">
      <ConfirmStep
        id="retrait"
        testId="withdraw-confirm"
        heading="h3"
        tone="amber"
        title={`${t("portal.confirmTitle")} ${t(`purposeShort.${purpose}`)} ?`}
        action="/mon-dossier"
        fields={{ purpose, granted: "false" }}
        confirmLabel={t("portal.confirmWithdraw")}
        cancelTo="/mon-dossier"
      >
        <p>{t(`portal.consequence.${purpose}`)}</p>
        <p>{t("portal.consequenceUndo")}</p>
      </ConfirmStep>
    </div>
  );
}

export default function MyRecord() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { patient, consents, history, images, accessLog, olderLog, pagedLog, exams } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const [params] = useSearchParams();
  const asked = params.get("retirer") as Purpose | null;
  const confirming = !result && asked && PURPOSES.includes(asked) && consents[asked].granted ? asked : null;
  return (
    <div className="space-y-6">
      <PatientHeader patient={patient} heading={t("me.title")} />
      {result?.saved ? <Alert kind="success">{t("portal.saved")}</Alert> : null}
      <div className="grid gap-6 md:grid-cols-2">
        <section className="card min-w-0" aria-labelledby="consents-title">
          <h2 id="consents-title" className="text-lg font-semibold">{t("patient.consents")}</h2>
          <p className="mt-1 text-sm text-slate-600">{t("portal.intro")}</p>
          {confirming ? <WithdrawConfirm purpose={confirming} /> : null}
          <ConsentList
            state={consents}
            lang={lang}
            action={(purpose, granted) =>
              granted ? (
                // Withdrawing goes through the confirmation step (a GET, so it works without JavaScript).
                <Form method="get" action="/mon-dossier">
                  <input type="hidden" name="retirer" value={purpose} />
                  <button type="submit" className="btn-secondary" aria-label={`${t("portal.revoke")} — ${t(`purpose.${purpose}`)}`}>
                    {t("portal.revoke")}
                  </button>
                </Form>
              ) : (
                <Form method="post" action="/mon-dossier">
                  <CsrfInput />
                  <input type="hidden" name="purpose" value={purpose} />
                  <input type="hidden" name="granted" value="true" />
                  <button type="submit" className="btn-secondary" aria-label={`${t("portal.grant")} — ${t(`purpose.${purpose}`)}`}>
                    {t("portal.grant")}
                  </button>
                </Form>
              )
            }
          />
        </section>
        <section className="card min-w-0" aria-labelledby="images-title">
          <h2 id="images-title" className="text-lg font-semibold">{t("patient.images")}</h2>
          <ImageList images={images} />
        </section>
      </div>
      <section className="card" aria-labelledby="exams-title">
        <h2 id="exams-title" className="text-lg font-semibold">{t("exams.title")}</h2>
        <ExamList exams={exams} linkToExam={false} />
        {exams.some((e) => e.result) ? (
          <ul className="mt-3 space-y-1 text-sm" data-testid="letters">
            {exams
              .filter((e) => e.result)
              .map((e) => (
                <li key={e.id}>
                  <a className="text-brand-700 underline" href={`/examens/${e.id}/courrier`}>
                    {t("portal.letter")} — {e.date}
                  </a>
                </li>
              ))}
          </ul>
        ) : null}
      </section>
      <ConsentHistory history={history} />
      <section className="card" aria-labelledby="log-title" id="journal">
        <h2 id="log-title" className="text-lg font-semibold">{t("portal.accessLog")}</h2>
        {accessLog.length === 0 ? (
          <p className="mt-2 text-sm text-slate-600">{t("portal.noAccess")}</p>
        ) : (
          <ScrollRegion label={t("portal.accessLog")} className="mt-3">
            <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="access-log">
              <thead className="text-left text-slate-600">
                <tr>
                  <th scope="col" className="py-2 pr-3 font-medium">{t("portal.when")}</th>
                  <th scope="col" className="py-2 pr-3 font-medium">{t("portal.who")}</th>
                  <th scope="col" className="py-2 pr-3 font-medium">{t("portal.what")}</th>
                  <th scope="col" className="py-2 font-medium">{t("portal.outcome")}</th>
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100">
                {accessLog.map((e) => (
                  <tr key={e.id}>
                    <td className="py-2 pr-3 whitespace-nowrap">{formatDate(e.at, lang)}</td>
                    <td className="py-2 pr-3">
                      {e.actorName ?? "—"}
                      {e.actorRole ? <span className="text-slate-500"> · {t(`role.${e.actorRole as Role}`)}</span> : null}
                    </td>
                    <td className="py-2 pr-3">{actionLabel(e.action, lang)}</td>
                    <td className="py-2">
                      <span className={e.outcome === "allowed" ? "text-emerald-700" : "font-medium text-red-700"}>
                        {t(`outcome.${e.outcome as Outcome}`)}
                      </span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </ScrollRegion>
        )}
        {pagedLog || olderLog !== null ? (
          <nav aria-label={t("portal.logPages")} className="mt-3 flex flex-wrap justify-between gap-3 text-sm">
            {pagedLog ? <Link className="text-brand-700 underline" to="/mon-dossier#journal">{t("audit.page.newer")}</Link> : <span />}
            {olderLog !== null ? (
              <Link className="text-brand-700 underline" rel="next" to={`/mon-dossier?journal=${olderLog}#journal`}>
                {t("portal.older")}
              </Link>
            ) : null}
          </nav>
        ) : null}
      </section>
    </div>
  );
}
