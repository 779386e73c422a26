import type { LoaderFunctionArgs } from "@remix-run/node";
import { Form, Link, useLoaderData, useRouteLoaderData } from "@remix-run/react";
import { pageContext, perform } from "../http/context.server";
import { consentStates, type ConsentState } from "../consent/consent.server";
import { isUuid } from "../http/params.server";
import { listPatients, PAGE_SIZE } from "../patients/patients.server";
import { listScope } from "../policy/policy.server";
import { PURPOSES, type Purpose } from "../vocabulary";
import type { loader as rootLoader } from "../root";
import { formatBirthDate, formatDate } from "../ui/format";
import { useT } from "../ui/shell";
import { queryString } from "../ui/query-string";
import { ScrollRegion } from "../ui/table";
import { pageTitle } from "../ui/meta";

export const meta = pageTitle("nav.patients");

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const params = new URL(args.request.url).searchParams;
  const q = (params.get("q") ?? "").slice(0, 100);
  // A cursor that is not an id (edited by hand) starts the list from the top rather than failing.
  const given = params.get("cursor");
  const cursor = given && isUuid(given) ? given : undefined;
  return perform(ctx, "patient.list", { type: "patient" }, async () => {
    const scope = listScope(ctx.actor!, "patient.list");
    const { patients, nextCursor } = await listPatients(scope, { q, cursor, limit: PAGE_SIZE });
    const isDoctor = scope.kind === "careTeam";
    // Doctors see each patient's live consent state; the admin directory shows no more than names and dates.
    const states = isDoctor ? await consentStates(patients.map((p) => p.id)) : null;
    return {
      // What the list shows, no more: the page's data is also serialised into it for hydration.
      patients: patients.map((p) => ({
        id: p.id,
        displayName: p.displayName,
        birthDate: p.birthDate,
        ipp: p.ipp,
        createdAt: p.createdAt,
        consents: states ? listedConsents(states.get(p.id)!) : null,
      })),
      isDoctor,
      q,
      paged: cursor !== undefined,
      nextCursor,
    };
  });
}

/**
 * What the list shows of each consent: given, withdrawn or never given (the dates are on the patient's page). Three
 * words rather than the states with their dates: the list's data is also serialised into the page for hydration,
 * once per patient and purpose.
 */
function listedConsents(states: Record<Purpose, ConsentState>): Record<Purpose, "granted" | "revoked" | "never"> {
  const word = (s: ConsentState) => (s.granted ? "granted" : s.updatedAt ? "revoked" : "never");
  return { care: word(states.care), ai_analysis: word(states.ai_analysis), research: word(states.research) };
}

export default function Patients() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { patients, isDoctor, q, paged, nextCursor } = useLoaderData<typeof loader>();
  const listUrl = (cursor?: string) => `/patients${queryString({ q, cursor })}`;
  return (
    <div className="space-y-6">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <h1 className="text-2xl font-bold">{isDoctor ? t("patients.title") : t("patients.titleAdmin")}</h1>
        {isDoctor ? (
          <Link to="/patients/nouveau" className="btn">
            {t("nav.newPatient")}
          </Link>
        ) : null}
      </div>
      <Form method="get" role="search" className="flex flex-wrap items-end gap-2">
        <label className="flex min-w-0 flex-1 flex-col gap-1 text-sm">
          <span className="font-medium">{t("patients.search")}</span>
          <input type="search" name="q" defaultValue={q} maxLength={100} className="input w-full" placeholder={t("patients.searchHint")} />
        </label>
        <button type="submit" className="btn">
          {t("patients.searchButton")}
        </button>
      </Form>
      {patients.length === 0 ? (
        <p className="text-slate-600">{q ? t("patients.noMatch") : t("patients.empty")}</p>
      ) : (
        <ScrollRegion label={isDoctor ? t("patients.title") : t("patients.titleAdmin")} className="card p-0">
          <table className="min-w-full divide-y divide-slate-200 text-sm">
            <thead className="bg-slate-50 text-left text-slate-600">
              <tr>
                <th scope="col" className="px-4 py-3 font-medium">{t("patients.name")}</th>
                <th scope="col" className="px-4 py-3 font-medium">{t("identity.birthDate")}</th>
                <th scope="col" className="px-4 py-3 font-medium">{t("identity.ipp")}</th>
                <th scope="col" className="px-4 py-3 font-medium">{t("patients.created")}</th>
                {isDoctor ? <th scope="col" className="px-4 py-3 font-medium">{t("patient.consents")}</th> : null}
                {isDoctor ? <th scope="col" className="px-4 py-3"><span className="sr-only">{t("patients.open")}</span></th> : null}
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {patients.map((p) => (
                <tr key={p.id}>
                  <td className="px-4 py-3 font-medium">{p.displayName}</td>
                  <td className="px-4 py-3 text-slate-600">{p.birthDate ? formatBirthDate(p.birthDate, lang) : "—"}</td>
                  <td className="px-4 py-3 font-mono text-slate-600">{p.ipp ?? "—"}</td>
                  <td className="px-4 py-3 text-slate-600">{formatDate(p.createdAt, lang)}</td>
                  {p.consents ? (
                    <td className="px-4 py-3">
                      <ul className="flex flex-wrap gap-1 text-xs" aria-label={t("patient.consents")}>
                        {PURPOSES.map((purpose) => {
                          const state = p.consents![purpose];
                          return (
                            <li
                              key={purpose}
                              data-purpose={purpose}
                              className={`rounded-full px-2 py-0.5 ${state === "granted" ? "bg-emerald-100 text-emerald-800" : "bg-slate-100 text-slate-600 line-through"}`}
                            >
                              {t(`purposeShort.${purpose}`)}
                              <span className="sr-only">{` : ${t(`consent.${state}`)}`}</span>
                            </li>
                          );
                        })}
                      </ul>
                    </td>
                  ) : null}
                  {isDoctor ? (
                    <td className="px-4 py-3 text-right">
                      {/* A plain link: ScrollRegion navigates in the app (a <Link> per row cost ≈ 30 µs of render each). */}
                      <a className="text-brand-700 underline" href={`/patients/${p.id}`}>
                        {t("patients.open")}
                      </a>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollRegion>
      )}
      {paged || nextCursor !== null ? (
        <nav aria-label={t("patients.page.nav")} className="flex justify-between text-sm">
          {paged ? (
            <Link className="text-brand-700 underline" to={listUrl()}>
              {t("patients.page.first")}
            </Link>
          ) : (
            <span />
          )}
          {nextCursor !== null ? (
            <Link className="text-brand-700 underline" rel="next" to={listUrl(nextCursor)}>
              {t("patients.page.next")}
            </Link>
          ) : null}
        </nav>
      ) : null}
    </div>
  );
}
