/** Dates shown in the interface's language, in Europe/Paris time. */
export function formatDate(value: string | Date | null | undefined, lang: "fr" | "en" = "fr"): string {
  if (!value) return "—";
  return new Intl.DateTimeFormat(lang === "fr" ? "fr-FR" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: "Europe/Paris",
  }).format(new Date(value));
}

/** A birth date (`YYYY-MM-DD`, a calendar day: no time zone) as 15/04/1962 or 15 Apr 1962. */
export function formatBirthDate(value: string | null | undefined, lang: "fr" | "en" = "fr"): string {
  if (!value || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return "—";
  return new Intl.DateTimeFormat(lang === "fr" ? "fr-FR" : "en-GB", { dateStyle: lang === "fr" ? "short" : "medium", timeZone: "UTC" }).format(
    new Date(`${value}T00:00:00Z`),
  );
}
