import { useRouteLoaderData } from "@remix-run/react";
import type { ReactNode } from "react";
import type { loader as rootLoader } from "../root";
import { PURPOSES, type Purpose, type Role } from "../vocabulary";
import { formatDate } from "./format";
import { useT } from "./shell";

export interface ConsentView {
  granted: boolean;
  updatedAt: string | Date | null;
}

/** The state of each purpose, in words and colour (never colour alone). */
export function ConsentList({
  state,
  lang,
  action,
}: {
  state: Record<Purpose, ConsentView>;
  lang: "fr" | "en";
  /** A control per purpose (the patient portal's grant/revoke button). */
  action?: (purpose: Purpose, granted: boolean) => ReactNode;
}) {
  const t = useT();
  return (
    <ul className="divide-y divide-slate-100">
      {PURPOSES.map((p) => {
        const s = state[p];
        const label = s.granted ? t("consent.granted") : s.updatedAt ? t("consent.revoked") : t("consent.never");
        const tone = s.granted ? "bg-emerald-100 text-emerald-800" : "bg-slate-100 text-slate-700";
        return (
          // The purpose takes the whole line; its state and control wrap below it (never one word per line).
          <li key={p} className="flex flex-wrap items-center gap-x-3 gap-y-2 py-3" data-purpose={p}>
            <span className="min-w-0 basis-full text-sm">{t(`purpose.${p}`)}</span>
            <span className="text-xs">
              <span className={`rounded-full px-2 py-0.5 font-medium ${tone}`}>{label}</span>
              {s.updatedAt ? <span className="ml-2 text-slate-500">{formatDate(s.updatedAt, lang)}</span> : null}
            </span>
            {action ? <span className="ml-auto shrink-0">{action(p, s.granted)}</span> : null}
          </li>
        );
      })}
    </ul>
  );
}

export function ConsentHistory({
  history,
}: {
  history: { id: number; purpose: Purpose; fromGranted: boolean | null; toGranted: boolean; changedByRole: Role; source: string; at: string | Date }[];
}) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const word = (v: boolean | null) => (v === null ? t("consent.never") : v ? t("consent.granted") : t("consent.revoked"));
  return (
    <section className="card" aria-labelledby="history-title">
      <h2 id="history-title" className="text-lg font-semibold">{t("patient.history")}</h2>
      {history.length === 0 ? (
        <p className="mt-2 text-sm text-slate-600">{t("patient.noHistory")}</p>
      ) : (
        <ul className="mt-2 space-y-1 text-sm">
          {history.map((h) => (
            <li key={h.id}>
              {formatDate(h.at, lang)} — {t(`purposeShort.${h.purpose}`)} : {word(h.fromGranted)} → {word(h.toGranted)} (
              {t(`role.${h.changedByRole}`)}, {t(h.source === "intake" ? "source.intake" : "source.patient")})
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
