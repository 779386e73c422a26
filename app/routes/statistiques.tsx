import type { LoaderFunctionArgs } from "@remix-run/node";
import { useLoaderData } from "@remix-run/react";
import { pageContext, perform } from "../http/context.server";
import { listScope } from "../policy/policy.server";
import { statisticsRows, summarise } from "../predictions/predictions.server";
import { BarChart } from "../ui/charts";
import { useT } from "../ui/shell";
import { pageTitle } from "../ui/meta";

export const meta = pageTitle("nav.stats");

/** AI reading statistics: a doctor's care team, or (researchers) consenting patients only, pseudonymised. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  return perform(ctx, "stats.view", { type: "app" }, async () => {
    const since = new Date(Date.now() - 365 * 24 * 3600 * 1000);
    const scope = listScope(ctx.actor!, "stats.view");
    return { stats: summarise(await statisticsRows(scope, since)), research: scope.kind === "research" };
  });
}

export default function Statistics() {
  const t = useT();
  const { stats, research } = useLoaderData<typeof loader>();
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold">{t("stats.title")}</h1>
        <p className="mt-1 text-sm text-slate-600">{research ? t("stats.research") : t("stats.doctor")}</p>
      </div>
      <dl className="grid gap-4 sm:grid-cols-3">
        <div className="card p-4">
          <dt className="text-xs text-slate-500">{t("stats.total")}</dt>
          <dd className="text-2xl font-semibold" data-testid="stats-total">{stats.total}</dd>
        </div>
        <div className="card p-4">
          <dt className="text-xs text-slate-500">{t("stats.patients")}</dt>
          <dd className="text-2xl font-semibold">{stats.patients}</dd>
        </div>
        <div className="card p-4">
          <dt className="text-xs text-slate-500">{t("stats.models")}</dt>
          <dd className="text-sm">
            {stats.models.length === 0 ? "—" : stats.models.map((m) => <div key={m.model}>{m.model} : {m.count}</div>)}
          </dd>
        </div>
      </dl>
      <div className="grid gap-6 lg:grid-cols-2">
        <section className="card"><BarChart title={t("stats.perWeek")} data={stats.perWeek.map((w) => ({ label: w.week.slice(5), value: w.count }))} /></section>
        <section className="card"><BarChart title={t("stats.labels")} data={stats.labels.map((l) => ({ label: l.label, value: l.count }))} /></section>
        <section className="card lg:col-span-2">
          <BarChart
            title={t("stats.histogram")}
            data={stats.histogram.map((value, i) => ({ label: `${i * 10}–${i * 10 + 10} %`, value }))}
          />
        </section>
      </div>
    </div>
  );
}
