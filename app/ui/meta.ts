import type { MetaFunction } from "@remix-run/node";
import { parseLang, translator, type StringKey } from "../i18n/strings";

/** The page's language, from the root loader's data (French when there is none, e.g. on an early error). */
export function langOfMatches(matches: readonly { id: string; data?: unknown }[]) {
  const root = matches.find((m) => m.id === "root")?.data as { lang?: string } | undefined;
  return parseLang(root?.lang);
}

/** A page title in the page's language: "<title> — Nexus". `detail` adds a part (e.g. an event number). */
export function pageTitle(key: StringKey, detail?: (params: Record<string, string | undefined>) => string): MetaFunction {
  return ({ matches, params }) => {
    const t = translator(langOfMatches(matches));
    const parts = [detail ? `${detail(params)} — ${t(key)}` : t(key), "Nexus"];
    return [{ title: parts.join(" — ") }];
  };
}
