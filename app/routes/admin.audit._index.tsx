import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useLoaderData, useNavigation, useRouteLoaderData, useSearchParams } from "@remix-run/react";
import { chainCheckResource, searchEvents } from "../audit/audit.server";
import { verifyAnchoredChain } from "../audit/checkpoint.server";
import { FILTER_FIELDS, KNOWN_ACTIONS, type FilterValues } from "../audit/fields";
import { filterSummary, filtersOf, parsePageFilters, type ResolvedField } from "../audit/filters.server";
import { patientNames, type Match } from "../audit/resolve.server";
import { chainState, eventView } from "../audit/view.server";
import { HttpError, failure, pageContext, perform, readMutation } from "../http/context.server";
import { safeRedirect } from "../http/redirect.server";
import { actionLabel } from "../i18n/actions";
import { fieldMessage } from "../i18n/fields";
import type { loader as rootLoader } from "../root";
import { OUTCOMES } from "../vocabulary";
import { Alert, CsrfInput } from "../ui/forms";
import { ActorCell, PurposeLabel, auditDate, shortId } from "../audit/ui";
import { useT } from "../ui/shell";
import { queryString } from "../ui/query-string";
import { ScrollRegion } from "../ui/table";
import { pageTitle } from "../ui/meta";

export const meta = pageTitle("audit.title");

const PAGE_SIZE = 50;

/** The audit trail for admins: filters (GET form), keyset pages, the chain's state, exports. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const params = new URL(args.request.url).searchParams;
  let matches: Partial<Record<ResolvedField, Match[]>> = {};
  try {
    return await perform(
      ctx,
      "audit.read",
      { type: "audit" },
      async () => {
        const filters = await parsePageFilters(params, { limit: PAGE_SIZE });
        if (!filters.ok) {
          matches = filters.matches;
          throw new HttpError(400, "invalid", "Filtres invalides.", filters.errors);
        }
        const [page, chain] = await Promise.all([searchEvents(filters.query), chainState()]);
        return {
          matches,
          /** Patients by name in the table (the trail holds their ids). */
          patientNames: await patientNames(page.events.flatMap((e) => [e.patientId, e.resourceType === "patient" ? e.resourceId : null])),
          values: filters.values,
          errors: {} as Record<string, string>,
          events: page.events.map(eventView),
          nextCursor: page.nextCursor,
          paged: filters.query.cursor !== undefined,
          /** Kept in the paging links when not the default. */
          limit: filters.query.limit === PAGE_SIZE ? null : filters.query.limit,
          chain,
          query: filters.query,
        };
      },
      { describe: ({ query }) => ({ resourceId: filterSummary(filtersOf(query)) || undefined, patientId: query.patient ?? null }) },
    );
  } catch (err) {
    if (!(err instanceof HttpError) || err.status !== 400) throw err;
    const values = Object.fromEntries(FILTER_FIELDS.flatMap((f) => (params.get(f) ? [[f, params.get(f)!]] : []))) as FilterValues;
    return data(
      { matches, patientNames: {} as Record<string, string>, values, errors: err.fields ?? {}, events: [], nextCursor: null, paged: false, limit: null, chain: null, query: null },
      { status: 400 },
    );
  }
}

/** POST intent=verify: a full verification of the chain, kept in its audit event; back to the page (PRG). */
export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const form = await readMutation(ctx, "audit.read");
  try {
    await perform(
      ctx,
      "audit.read",
      { type: "audit" },
      async () => {
        if (form.get("intent") !== "verify") throw new HttpError(400, "invalid", "Action inconnue.");
        return verifyAnchoredChain();
      },
      { describe: chainCheckResource },
    );
  } catch (err) {
    if (err instanceof HttpError) throw failure(ctx, err.status, err.code, err.message);
    throw err;
  }
  const back = new URL(args.request.url);
  back.searchParams.delete("index");
  back.searchParams.set("verification", "1");
  return safeRedirect(`${back.pathname}${back.search}#chaine`, 303, "/admin/audit#chaine");
}

function ChainSection({ chain, lang }: { chain: NonNullable<ReturnType<typeof useLoaderData<typeof loader>>["chain"]>; lang: "fr" | "en" }) {
  const t = useT();
  const [params] = useSearchParams();
  const busy = useNavigation().state === "submitting";
  const last = chain.lastCheck;
  const ok = chain.tail.ok && (last?.ok ?? true);
  return (
    <section id="chaine" className="card space-y-4" aria-labelledby="chain-title">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <h2 id="chain-title" className="text-lg font-semibold">{t("audit.chain.title")}</h2>
        <span
          data-testid="chain-status"
          data-ok={ok ? "true" : "false"}
          className={`rounded-full px-3 py-1 text-sm font-medium ${ok ? "bg-emerald-100 text-emerald-800" : "bg-red-100 text-red-800"}`}
        >
          {ok ? t("audit.chain.intact") : t("audit.chain.alert")}
        </span>
      </div>
      {params.get("verification") ? <Alert kind={last?.ok ? "success" : "error"}>{t("audit.chain.verified")}</Alert> : null}
      <dl className="grid gap-x-4 gap-y-2 text-sm sm:grid-cols-3">
        <dt className="text-slate-500">{t("audit.chain.tail")}</dt>
        <dd className="sm:col-span-2" data-testid="chain-tail">
          {chain.tail.ok
            ? `${chain.tail.checked} ${t("audit.chain.tailOk")}`
            : `${t("audit.chain.brokenAt")} ${chain.tail.firstBrokenId}`}
        </dd>
        <dt className="text-slate-500">{t("audit.chain.full")}</dt>
        <dd className="sm:col-span-2" data-testid="chain-full">
          {last ? (
            <>
              {last.ok ? `${t("audit.chain.intact")} — ${last.checked} ${t("audit.chain.checked")}` : `${t("audit.chain.brokenAt")} ${last.firstBrokenId}`}
              <span className="text-slate-500">
                {" "}
                · {auditDate(last.at, lang)}
                {last.actorName ? ` · ${last.actorName}` : ""}
              </span>
            </>
          ) : (
            t("audit.chain.never")
          )}
        </dd>
        <dt className="text-slate-500">{t("audit.chain.archives")}</dt>
        <dd className="sm:col-span-2">
          {chain.archives.last ? (
            <>
              {chain.archives.count} — {t("audit.chain.archiveLast")} n° {chain.archives.last.firstId} à {chain.archives.last.lastId}{" "}
              ({auditDate(chain.archives.last.periodEnd, lang)}),{" "}
              <code className="font-mono text-xs">SHA-256 {chain.archives.last.fileSha256.slice(0, 16)}…</code>
            </>
          ) : (
            t("audit.chain.noArchive")
          )}
        </dd>
        <dt className="text-slate-500">{t("audit.chain.retention")}</dt>
        <dd className="sm:col-span-2">
          {chain.retentionDays} {t("audit.chain.days")}
        </dd>
      </dl>
      <Form method="post">
        <CsrfInput />
        <button type="submit" name="intent" value="verify" className="btn-secondary" disabled={busy}>
          {t("audit.chain.verify")}
        </button>
      </Form>
    </section>
  );
}

function FilterField({ name, label, value, error, ...rest }: { name: string; label: string; value?: string; error?: string; type?: string; list?: string; placeholder?: string }) {
  const id = `filtre-${name}`;
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  return (
    <div>
      <label htmlFor={id} className="block text-sm font-medium text-slate-800">{label}</label>
      <input
        id={id}
        name={name}
        defaultValue={value ?? ""}
        className="input mt-1"
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        {...rest}
      />
      {error ? <p id={`${id}-error`} className="mt-1 text-sm text-red-700">{fieldMessage(error, lang)}</p> : null}
    </div>
  );
}

export default function AuditPage() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { values, errors, events, nextCursor, paged, limit, chain, matches, patientNames: names } = useLoaderData<typeof loader>();
  const err: Record<string, string | undefined> = errors;
  const filters = Object.fromEntries(FILTER_FIELDS.map((f) => [f, values[f as keyof typeof values]]));
  const hasErrors = Object.keys(errors).length > 0;
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold">{t("audit.title")}</h1>
        <p className="mt-1 max-w-3xl text-sm text-slate-600">{t("audit.intro")}</p>
      </div>

      {chain ? <ChainSection chain={chain} lang={lang} /> : null}

      <section className="card" aria-labelledby="filters-title">
        <h2 id="filters-title" className="text-lg font-semibold">{t("audit.filters.title")}</h2>
        {hasErrors ? <div className="mt-3"><Alert kind="error">{t("form.errors")}</Alert></div> : null}
        <Form method="get" className="mt-4 grid gap-4 sm:grid-cols-2 lg:grid-cols-4" noValidate>
          <FilterField name="actor" label={t("audit.filters.actorAny")} value={values.actor} error={err.actor} />
          <FilterField name="patient" label={t("audit.filters.patientAny")} value={values.patient} error={err.patient} />
          <FilterField name="action" label={t("audit.filters.actionAny")} value={values.action} error={err.action} list="audit-actions" />
          <datalist id="audit-actions">
            {KNOWN_ACTIONS.map((a) => (
              <option key={a} value={a}>{actionLabel(a, lang)}</option>
            ))}
          </datalist>
          <div>
            <label htmlFor="filtre-outcome" className="block text-sm font-medium text-slate-800">{t("audit.filters.outcome")}</label>
            <select
              id="filtre-outcome"
              name="outcome"
              className="input mt-1"
              defaultValue={values.outcome ?? ""}
              aria-invalid={err.outcome ? true : undefined}
              aria-describedby={err.outcome ? "filtre-outcome-error" : undefined}
            >
              <option value="">{t("audit.filters.any")}</option>
              {OUTCOMES.map((o) => (
                <option key={o} value={o}>{t(`outcome.${o}`)}</option>
              ))}
            </select>
            {err.outcome ? <p id="filtre-outcome-error" className="mt-1 text-sm text-red-700">{fieldMessage(err.outcome, lang)}</p> : null}
          </div>
          <FilterField name="from" type="date" label={t("audit.filters.from")} value={values.from} error={err.from} />
          <FilterField name="to" type="date" label={t("audit.filters.to")} value={values.to} error={err.to} />
          <FilterField name="requestId" label={t("audit.filters.requestId")} value={values.requestId} error={err.requestId} />
          <div className="flex items-end gap-3">
            <button type="submit" className="btn">{t("audit.filters.submit")}</button>
            <Link to="/admin/audit" className="text-sm text-brand-700 underline">{t("audit.filters.reset")}</Link>
          </div>
        </Form>
        <p className="mt-2 text-xs text-slate-500">{t("audit.filters.hint")}</p>
        {(Object.entries(matches) as [ResolvedField, Match[]][]).map(([field, found]) => (
          <nav key={field} aria-label={`${t("audit.filters.matches")} — ${t(`audit.col.${field}`)}`} className="mt-3 text-sm" data-testid={`matches-${field}`}>
            <p className="font-medium">{t("audit.filters.matches")} — {t(`audit.col.${field}`)} :</p>
            <ul className="mt-1 flex flex-wrap gap-x-4 gap-y-1">
              {found.map((m) => (
                <li key={m.id}>
                  <Link className="text-brand-700 underline" to={`/admin/audit${queryString({ ...filters, [field]: m.id })}`}>
                    {field === "action" ? actionLabel(m.id, lang) : m.label}
                  </Link>
                </li>
              ))}
            </ul>
          </nav>
        ))}
      </section>

      {hasErrors ? null : (
        <section aria-labelledby="events-title" className="space-y-3">
          <div className="flex flex-wrap items-center justify-between gap-3">
            <h2 id="events-title" className="text-lg font-semibold">{t("audit.table.caption")}</h2>
            <p className="flex flex-wrap items-center gap-3 text-sm">
              <span className="text-slate-600">{t("audit.export.title")} :</span>
              <a className="btn-secondary" href={`/admin/audit/export${queryString({ ...filters, format: "csv" })}`}>
                {t("audit.export.csv")}
              </a>
              <a className="btn-secondary" href={`/admin/audit/export${queryString({ ...filters, format: "ndjson" })}`}>
                {t("audit.export.ndjson")}
              </a>
            </p>
          </div>
          {events.length === 0 ? (
            <p className="card text-slate-600">{t("audit.empty")}</p>
          ) : (
            <ScrollRegion label={t("audit.table.caption")} className="card p-0">
              <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="audit-events">
                <caption className="sr-only">{t("audit.table.caption")}</caption>
                <thead className="bg-slate-50 text-left text-slate-600">
                  <tr>
                    <th scope="col" className="px-3 py-3 font-medium">{t("audit.col.when")}</th>
                    <th scope="col" className="px-3 py-3 font-medium">{t("audit.col.actor")}</th>
                    <th scope="col" className="px-3 py-3 font-medium">{t("audit.col.action")}</th>
                    <th scope="col" className="px-3 py-3 font-medium">{t("audit.col.resource")}</th>
                    <th scope="col" className="px-3 py-3 font-medium">{t("audit.col.patient")}</th>
                    <th scope="col" className="px-3 py-3 font-medium">{t("audit.col.outcome")}</th>
                    <th scope="col" className="px-3 py-3 font-medium">{t("audit.col.purpose")}</th>
                    <th scope="col" className="px-3 py-3"><span className="sr-only">{t("audit.col.detail")}</span></th>
                  </tr>
                </thead>
                <tbody className="divide-y divide-slate-100">
                  {events.map((e) => (
                    <tr key={e.id} data-event-id={e.id} data-outcome={e.outcome}>
                      <td className="px-3 py-2 whitespace-nowrap">
                        <time dateTime={e.at}>{auditDate(e.at, lang)}</time>
                      </td>
                      <td className="px-3 py-2"><ActorCell event={e} href={(id) => `/admin/audit${queryString({ ...filters, actor: id })}`} /></td>
                      <td className="px-3 py-2">
                        <span>{actionLabel(e.action, lang)}</span>
                        {actionLabel(e.action, lang) !== e.action ? <span className="block font-mono text-xs text-slate-500">{e.action}</span> : null}
                      </td>
                      <td className="px-3 py-2">
                        {e.resourceType ? (
                          <>
                            <span>{e.resourceType}</span>
                            {e.resourceId && names[e.resourceId] ? <span className="block text-xs text-slate-600">{names[e.resourceId]}</span> : null}
                            {e.resourceId && !names[e.resourceId] ? <span className="block font-mono text-xs text-slate-500" title={e.resourceId}>{shortId(e.resourceId)}</span> : null}
                          </>
                        ) : (
                          "—"
                        )}
                      </td>
                      <td className={`px-3 py-2 ${e.patientId && names[e.patientId] ? "" : "font-mono text-xs"}`}>
                        {e.patientId ? (
                          <a className="text-brand-700 underline" href={`/admin/audit${queryString({ ...filters, patient: e.patientId })}`} title={e.patientId}>
                            {names[e.patientId] ?? shortId(e.patientId)}
                          </a>
                        ) : (
                          "—"
                        )}
                      </td>
                      <td className="px-3 py-2">
                        <span className={e.outcome === "allowed" ? "text-emerald-700" : "font-medium text-red-700"}>{t(`outcome.${e.outcome}`)}</span>
                      </td>
                      <td className="px-3 py-2">
                        <PurposeLabel purpose={e.purpose} />
                      </td>
                      <td className="px-3 py-2 text-right">
                        <a className="text-brand-700 underline" href={`/admin/audit/${e.id}`}>
                          {t("audit.col.detail")}
                          <span className="sr-only"> n° {e.id}</span>
                        </a>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </ScrollRegion>
          )}
          <nav aria-label={t("audit.page.nav")} className="flex justify-between text-sm">
            {paged ? (
              <Link className="text-brand-700 underline" to={`/admin/audit${queryString({ ...filters, limit })}`}>{t("audit.page.newer")}</Link>
            ) : (
              <span />
            )}
            {nextCursor !== null ? (
              <Link className="text-brand-700 underline" rel="next" to={`/admin/audit${queryString({ ...filters, limit, cursor: nextCursor })}`}>
                {t("audit.page.older")}
              </Link>
            ) : null}
          </nav>
        </section>
      )}
    </div>
  );
}
