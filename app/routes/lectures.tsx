import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { useLoaderData, useRouteLoaderData } from "@remix-run/react";
import { pageContext, perform } from "../http/context.server";
import { firstReadingWorklist, secondReadingWorklist, type WorklistEntry } from "../reading/readings.server";
import { examUrl, type WorklistName } from "../reading/worklist-nav";
import type { loader as rootLoader } from "../root";
import { formatDate } from "../ui/format";
import { useT } from "../ui/shell";
import { ScrollRegion } from "../ui/table";

export const meta: MetaFunction = () => [{ title: "Listes de lecture — Nexus" }];

/** The doctor's two worklists: first reading (and her work-ups), second reading (exams she did not read). */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  return perform(ctx, "worklist.read", { type: "app" }, async () => {
    const [first, second] = await Promise.all([firstReadingWorklist(ctx.actor!.id), secondReadingWorklist(ctx.actor!.id)]);
    return { first, second, now: Date.now() };
  });
}

type Entry = Omit<WorklistEntry, never>;

function Worklist({ id, name, title, hint, list, now }: { id: string; name: WorklistName; title: string; hint: string; list: { exams: Entry[]; more: boolean }; now: number }) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  return (
    <section aria-labelledby={id} className="min-w-0 space-y-3">
      <div>
        <h2 id={id} className="text-lg font-semibold">
          {title} <span className="text-slate-500">({list.exams.length}{list.more ? "+" : ""})</span>
        </h2>
        <p className="text-sm text-slate-600">{hint}</p>
      </div>
      {list.exams.length === 0 ? (
        <p className="text-slate-600">{t("worklist.empty")}</p>
      ) : (
        <ScrollRegion label={title} className="card p-0">
          <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid={id}>
            <thead className="bg-slate-50 text-left text-slate-600">
              <tr>
                <th scope="col" className="px-3 py-2 font-medium">{t("worklist.patient")}</th>
                <th scope="col" className="px-3 py-2 font-medium">{t("worklist.examDate")}</th>
                <th scope="col" className="px-3 py-2 font-medium">{t("worklist.waiting")}</th>
                <th scope="col" className="px-3 py-2 font-medium">{t("worklist.views")}</th>
                <th scope="col" className="px-3 py-2"><span className="sr-only">{t("worklist.read")}</span></th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {list.exams.map((e) => {
                const days = Math.floor((now - new Date(e.waitingSince).getTime()) / 86_400_000);
                return (
                  <tr key={e.id} data-exam={e.id}>
                    <td className="px-3 py-2">
                      <div className="font-medium">{e.patientName}</div>
                      <div className="text-xs text-slate-500">
                        {e.birthDate ?? "—"}
                        {e.ipp ? ` · IPP ${e.ipp}` : ""}
                      </div>
                      {e.status !== "awaiting_first_reading" && e.status !== "awaiting_second_reading" ? (
                        <div className="text-xs font-medium text-amber-800">{t(`status.${e.status}`)}</div>
                      ) : null}
                    </td>
                    <td className="px-3 py-2">{e.date}</td>
                    <td className={`px-3 py-2 ${days > 15 ? "font-semibold text-red-700" : ""}`}>
                      {formatDate(e.waitingSince, lang)} ({days} {t("worklist.days")})
                    </td>
                    <td className="px-3 py-2">
                      <span className={e.complete ? "text-emerald-800" : "text-amber-800"}>
                        {e.complete ? t("worklist.complete") : t("worklist.incomplete")}
                      </span>
                      <span className="ml-1 text-xs text-slate-500">{e.views.join(" ")}</span>
                    </td>
                    <td className="px-3 py-2 text-right">
                      {/* The exam page: the viewer, the reading form, and "next exam" of this list. */}
                      <a className="btn" href={examUrl(e.id, name)}>
                        {t("worklist.read")}
                      </a>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </ScrollRegion>
      )}
      {list.more ? <p className="text-xs text-slate-500">{t("worklist.more")}</p> : null}
    </section>
  );
}

export default function Worklists() {
  const t = useT();
  const { first, second, now } = useLoaderData<typeof loader>();
  return (
    <div className="space-y-8">
      <h1 className="text-2xl font-bold">{t("worklist.title")}</h1>
      <Worklist id="worklist-first" name="first" title={t("worklist.first")} hint={t("worklist.firstHint")} list={first} now={now} />
      <Worklist id="worklist-second" name="second" title={t("worklist.second")} hint={t("worklist.secondHint")} list={second} now={now} />
    </div>
  );
}
