/** Dates shown in the interface's language, in Europe/Paris time. */
export function formatDate(value: string | Date | null | undefined, lang: "fr" | "en" = "fr"): string {
  if (!value) return "—";
  return new Intl.DateTimeFormat(lang === "fr" ? "fr-FR" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: "Europe/Paris",
  }).format(new Date(value));
}
