/** Dates, numbers and sizes for pages: see app/i18n/format.ts (one cached Intl formatter per language). */
export {
  formatBytes,
  formatContentType,
  formatDate,
  formatDateSeconds,
  formatDicomDate,
  formatNumber,
  formatPercent,
  formatTransferSyntax,
} from "../i18n/format";

const birthDates = {
  fr: new Intl.DateTimeFormat("fr-FR", { dateStyle: "short", timeZone: "UTC" }),
  en: new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeZone: "UTC" }),
};

/** A birth date (`YYYY-MM-DD`, a calendar day: no time zone) as 15/04/1962 or 15 Apr 1962. */
export function formatBirthDate(value: string | null | undefined, lang: "fr" | "en" = "fr"): string {
  if (!value || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return "—";
  return birthDates[lang].format(new Date(`${value}T00:00:00Z`));
}
