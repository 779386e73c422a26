import { useRouteLoaderData } from "@remix-run/react";
import type { loader as rootLoader } from "../root";
import { formatDate, formatPercent } from "./format";
import { useT } from "./shell";
import { ScrollRegion } from "./table";

export interface PredictionItem {
  id: string;
  imageId: string;
  label: string;
  probability: number;
  model: { name: string; version: string };
  notice: string | null;
  createdAt: string;
}

/** A patient's AI readings, newest first, each with its model and a link to the image. */
export function PredictionHistory({ predictions, viewRefusal }: { predictions: PredictionItem[]; viewRefusal?: string | null }) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  return (
    <section className="card" aria-labelledby="predictions-title">
      <h2 id="predictions-title" className="text-lg font-semibold">{t("ai.history")}</h2>
      {predictions.length === 0 ? (
        <p className="mt-2 text-sm text-slate-600">{t("ai.noHistory")}</p>
      ) : (
        <ScrollRegion label={t("ai.history")} className="mt-3">
        <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="prediction-history">
          <thead className="text-left text-slate-600">
            <tr>
              <th scope="col" className="py-2 pr-3 font-medium">{t("portal.when")}</th>
              <th scope="col" className="py-2 pr-3 font-medium">{t("ai.result")}</th>
              <th scope="col" className="py-2 pr-3 font-medium">{t("ai.model")}</th>
              <th scope="col" className="py-2"><span className="sr-only">{t("images.view")}</span></th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {predictions.map((p) => (
              <tr key={p.id}>
                <td className="py-2 pr-3 whitespace-nowrap">{formatDate(p.createdAt, lang)}</td>
                <td className="py-2 pr-3 font-medium">
                  {p.label} — {formatPercent(p.probability, lang)}
                </td>
                <td className="py-2 pr-3 text-slate-600">
                  {p.model.name} {p.model.version}
                  {p.notice ? <span className="block text-xs text-amber-800">⚠ {t("ai.demoNotice")}</span> : null}
                </td>
                <td className="py-2 text-right">
                  {viewRefusal ? (
                    <span className="text-xs text-slate-500" title={viewRefusal}>{t("images.refused")}</span>
                  ) : (
                    <a className="text-brand-700 underline" href={`/images/${p.imageId}`}>{t("images.view")}</a>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        </ScrollRegion>
      )}
    </section>
  );
}
