import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { useLoaderData } from "@remix-run/react";
import { pageContext, perform } from "../http/context.server";
import { programmeStats } from "../reading/programme.server";
import { L2_TARGET_DAYS } from "../reading/workflow";
import { BarChart } from "../ui/charts";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Programme de dépistage — Nexus" }];

/** Programme statistics: doctors (their care teams) and admins (the whole programme, no patient names). */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  return perform(ctx, "programme.stats", { type: "app" }, async () => ({
    stats: await programmeStats(ctx.actor!),
    admin: ctx.actor!.role === "admin",
  }));
}

const percent = (v: number | null) => (v === null ? "—" : `${(v * 100).toFixed(1)} %`);

function Tile({ label, value, detail, testId }: { label: string; value: string | number; detail?: string; testId?: string }) {
  return (
    <div className="card p-4">
      <dt className="text-xs text-slate-500">{label}</dt>
      <dd className="text-2xl font-semibold" data-testid={testId}>
        {value}
      </dd>
      {detail ? <dd className="text-xs text-slate-500">{detail}</dd> : null}
    </div>
  );
}

export default function Programme() {
  const t = useT();
  const { stats, admin } = useLoaderData<typeof loader>();
  const { backlog } = stats;
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold">{t("programme.title")}</h1>
        <p className="mt-1 text-sm text-slate-600">{admin ? t("programme.admin") : t("programme.doctor")}</p>
      </div>
      <dl className="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
        <Tile
          label={t("programme.backlog")}
          value={backlog.count}
          detail={`${backlog.overdue} ${t("programme.overdue")} · ${t("programme.backlogTarget")}`}
          testId="backlog"
        />
        <Tile label={t("programme.recallRate")} value={percent(stats.finals.recallRate)} detail={`${stats.finals.recall} / ${stats.finals.total} ${t("programme.finals")}`} testId="recall-rate" />
        <Tile
          label={t("programme.discordance")}
          value={percent(stats.discordance.rate)}
          detail={`${stats.discordance.discordant} / ${stats.discordance.pairs} ${t("programme.pairs")}`}
          testId="discordance"
        />
        <Tile
          label={t("programme.aiAgreement")}
          value={percent(stats.ai.rate)}
          detail={`${stats.ai.agree} / ${stats.ai.exams} ${t("programme.exams")} — ${t("programme.aiHint")}`}
          testId="ai-agreement"
        />
      </dl>
      <div className="grid gap-6 lg:grid-cols-2">
        <section className="card">
          <BarChart title={t("programme.byStatus")} data={stats.byStatus.map((s) => ({ label: t(`status.${s.status}`), value: s.count }))} />
        </section>
        <section className="card">
          <BarChart title={`${t("programme.ageBuckets")} (${t("worklist.days")})`} data={backlog.buckets.map((b) => ({ label: b.label, value: b.count }))} />
          <p className="mt-2 text-sm">
            {t("programme.oldest")} : <strong className={backlog.oldestDays !== null && backlog.oldestDays > L2_TARGET_DAYS ? "text-red-700" : ""}>{backlog.oldestDays ?? "—"}</strong>
          </p>
        </section>
      </div>
      {backlog.oldest.length > 0 ? (
        <section className="card overflow-x-auto">
          <h2 className="text-lg font-semibold">{t("programme.oldestList")}</h2>
          <table className="mt-2 min-w-full text-sm" data-testid="backlog-oldest">
            <thead className="text-left text-slate-600">
              <tr>
                {admin ? null : <th scope="col" className="py-1 pr-4 font-medium">{t("worklist.patient")}</th>}
                <th scope="col" className="py-1 pr-4 font-medium">{t("worklist.examDate")}</th>
                <th scope="col" className="py-1 pr-4 font-medium">{t("worklist.waiting")}</th>
              </tr>
            </thead>
            <tbody>
              {backlog.oldest.map((o) => (
                <tr key={o.examId}>
                  {admin ? null : <td className="py-1 pr-4">{o.patientName}</td>}
                  <td className="py-1 pr-4">{o.date}</td>
                  <td className={`py-1 pr-4 ${o.days > L2_TARGET_DAYS ? "font-semibold text-red-700" : ""}`}>
                    {o.days} {t("worklist.days")}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
      <section className="card overflow-x-auto">
        <h2 className="text-lg font-semibold">{t("programme.perReader")}</h2>
        <table className="mt-2 min-w-full text-sm" data-testid="per-reader">
          <thead className="text-left text-slate-600">
            <tr>
              <th scope="col" className="py-1 pr-4 font-medium">{t("programme.reader")}</th>
              <th scope="col" className="py-1 pr-4 font-medium">L1</th>
              <th scope="col" className="py-1 pr-4 font-medium">{t("reading.kind.workup")}</th>
              <th scope="col" className="py-1 pr-4 font-medium">L2</th>
              <th scope="col" className="py-1 pr-4 font-medium">{t("reading.kind.arbitration")}</th>
            </tr>
          </thead>
          <tbody>
            {stats.perReader.map((r) => (
              <tr key={r.readerId}>
                <td className="py-1 pr-4">{r.name}</td>
                <td className="py-1 pr-4">{r.first}</td>
                <td className="py-1 pr-4">{r.workup}</td>
                <td className="py-1 pr-4">{r.second}</td>
                <td className="py-1 pr-4">{r.arbitration}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}
