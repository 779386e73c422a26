import type { LoaderFunctionArgs } from "@remix-run/node";
import { Link, useLoaderData, useRouteLoaderData } from "@remix-run/react";
import { getEvent } from "../audit/audit.server";
import { ActorCell, PurposeLabel, auditDate } from "../audit/ui";
import { eventDetail, fhirSite } from "../audit/view.server";
import { HttpError, failure, pageContext, perform } from "../http/context.server";
import { actionLabel } from "../i18n/actions";
import { reasonText } from "../i18n/reasons";
import { patientNames } from "../audit/resolve.server";
import type { loader as rootLoader } from "../root";
import { useT } from "../ui/shell";
import { pageTitle } from "../ui/meta";

export const meta = pageTitle("title.auditEvent", (p) => `${p.eventId}`);

/** One audit event: every field, whether its hash and link hold, and its FHIR AuditEvent form (admins). */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const raw = args.params.eventId ?? "";
  try {
    return await perform(
      ctx,
      "audit.read",
      { type: "audit" },
      async () => {
        const id = /^\d{1,18}$/.test(raw) ? Number(raw) : NaN;
        const row = Number.isSafeInteger(id) && id > 0 ? await getEvent(id) : null;
        if (!row) throw new HttpError(404, "not_found", "Événement introuvable (inexistant ou archivé).");
        const names = await patientNames([row.patientId]);
        return { ...(await eventDetail(row, fhirSite())), patientName: row.patientId ? (names[row.patientId] ?? null) : null };
      },
      { describe: (e) => ({ resourceType: "audit_event", resourceId: String(e.id), patientId: e.patientId }) },
    );
  } catch (err) {
    if (err instanceof HttpError) throw failure(ctx, err.status, err.code, err.message);
    throw err;
  }
}

export default function AuditEventPage() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const e = useLoaderData<typeof loader>();
  const sameAs = (field: string, value: string) => `/admin/audit?${new URLSearchParams({ [field]: value })}`;
  const rows: [string, React.ReactNode][] = [
    [t("audit.detail.at"), <time key="at" dateTime={e.at}>{auditDate(e.at, lang)} <span className="font-mono text-xs text-slate-500">({e.at})</span></time>],
    [t("audit.col.actor"), <ActorCell key="actor" event={e} />],
    [t("audit.detail.actorId"), e.actorId ? <code className="font-mono">{e.actorId}</code> : "—"],
    [
      t("audit.col.action"),
      actionLabel(e.action, lang) === e.action ? (
        <code className="font-mono">{e.action}</code>
      ) : (
        <>
          {actionLabel(e.action, lang)} <code className="font-mono text-xs text-slate-500">{e.action}</code>
        </>
      ),
    ],
    [t("audit.col.resource"), e.resourceType ? <>{e.resourceType} {e.resourceId ? <code className="font-mono break-all">{e.resourceId}</code> : null}</> : "—"],
    [t("audit.col.patient"), e.patientId ? <>{e.patientName ? `${e.patientName} ` : null}<code className="font-mono text-xs break-all">{e.patientId}</code></> : "—"],
    [t("audit.col.outcome"), <span key="o" className={e.outcome === "allowed" ? "text-emerald-700" : "font-medium text-red-700"}>{t(`outcome.${e.outcome}`)}</span>],
    [t("audit.detail.reason"), reasonText(e.reason, lang) ?? "—"],
    [t("audit.col.purpose"), <PurposeLabel key="p" purpose={e.purpose} />],
    [t("audit.filters.requestId"), e.requestId ? <code className="font-mono">{e.requestId}</code> : "—"],
    [t("audit.detail.ip"), e.ip ?? "—"],
    [t("audit.detail.userAgent"), e.userAgent ?? "—"],
    [t("audit.detail.prevHash"), <code key="ph" className="font-mono text-xs break-all">{e.prevHash}</code>],
    [t("audit.detail.hash"), <code key="h" className="font-mono text-xs break-all">{e.hash}</code>],
  ];
  return (
    <div className="space-y-6">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <h1 className="text-2xl font-bold">{`${t("audit.detail.title")} ${e.id}`}</h1>
        <Link to="/admin/audit" className="text-sm text-brand-700 underline">{t("audit.detail.back")}</Link>
      </div>
      <section className="card" aria-labelledby="integrity-title">
        <h2 id="integrity-title" className="text-lg font-semibold">{t("audit.detail.integrity")}</h2>
        <ul className="mt-2 space-y-1 text-sm" data-testid="integrity">
          <li data-ok={e.hashOk ? "true" : "false"} className={e.hashOk ? "text-emerald-700" : "font-medium text-red-700"}>
            {e.hashOk ? t("audit.detail.hashOk") : t("audit.detail.hashBad")}
          </li>
          <li data-ok={e.linked ? "true" : "false"} className={e.linked ? "text-emerald-700" : "font-medium text-red-700"}>
            {e.linked ? t("audit.detail.linkOk") : t("audit.detail.linkBad")}
          </li>
        </ul>
      </section>
      <section className="card" aria-labelledby="fields-title">
        <h2 id="fields-title" className="text-lg font-semibold">{t("audit.detail.fields")}</h2>
        <dl className="mt-3 grid gap-x-4 gap-y-2 text-sm sm:grid-cols-4">
          {rows.map(([label, value]) => (
            <div key={label} className="contents">
              <dt className="text-slate-500">{label}</dt>
              <dd className="sm:col-span-3">{value}</dd>
            </div>
          ))}
        </dl>
        <p className="mt-4 flex flex-wrap gap-4 text-sm">
          {e.requestId ? <Link className="text-brand-700 underline" to={sameAs("requestId", e.requestId)}>{t("audit.detail.sameRequest")}</Link> : null}
          {e.actorId ? <Link className="text-brand-700 underline" to={sameAs("actor", e.actorId)}>{t("audit.detail.sameActor")}</Link> : null}
          {e.patientId ? <Link className="text-brand-700 underline" to={sameAs("patient", e.patientId)}>{t("audit.detail.samePatient")}</Link> : null}
        </p>
      </section>
      <section className="card" aria-labelledby="fhir-title">
        <h2 id="fhir-title" className="text-lg font-semibold">{t("audit.detail.fhir")}</h2>
        <pre tabIndex={0} aria-label={t("audit.detail.fhir")} className="mt-3 max-h-96 overflow-auto rounded bg-slate-900 p-4 text-xs text-slate-100" data-testid="fhir">{e.fhir}</pre>
      </section>
    </div>
  );
}
