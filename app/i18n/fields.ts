/**
 * Form-field messages as codes, translated at the edge. `parseWith` turns zod's own (English) messages into codes
 * (`field.required`, `field.tooShort:2`, …); a schema's deliberate French message is kept and translated from the
 * catalogue below. Pages show `fieldMessage(value, lang)`; the API answers in French.
 */
import type { Lang } from "./strings";

const CODES: Record<string, Record<Lang, (n: string) => string>> = {
  required: { fr: () => "Ce champ est obligatoire.", en: () => "This field is required." },
  tooShort: { fr: (n) => `Au moins ${n} caractères.`, en: (n) => `At least ${n} characters.` },
  tooLong: { fr: (n) => `Au plus ${n} caractères.`, en: (n) => `At most ${n} characters.` },
  tooSmall: { fr: (n) => `Au moins ${n}.`, en: (n) => `At least ${n}.` },
  tooBig: { fr: (n) => `Au plus ${n}.`, en: (n) => `At most ${n}.` },
  email: { fr: () => "Adresse e-mail invalide.", en: () => "Invalid e-mail address." },
  choice: { fr: () => "Choisissez une des valeurs proposées.", en: () => "Choose one of the listed values." },
  format: { fr: () => "Format invalide.", en: () => "Invalid format." },
  invalid: { fr: () => "Valeur invalide.", en: () => "Invalid value." },
};

/** The schemas' own French messages, in English. */
const ENGLISH: Record<string, string> = {
  "Le nom doit comporter au moins 2 caractères.": "The name must be at least 2 characters long.",
  "Adresse e-mail invalide.": "Invalid e-mail address.",
  "Rôle inconnu.": "Unknown role.",
  "Saisissez votre mot de passe actuel.": "Enter your current password.",
  "Saisissez votre adresse e-mail.": "Enter your e-mail address.",
  "Saisissez votre mot de passe.": "Enter your password.",
  // The admin's audit filters.
  "Aucun compte ne correspond (nom, adresse e-mail ou identifiant).": "No account matches (name, e-mail address or id).",
  "Aucun patient ne correspond (nom ou identifiant).": "No patient matches (name or id).",
  "Aucune action ne correspond à ce libellé.": "No action matches this label.",
  "Plusieurs comptes correspondent : choisissez-en un ci-dessous.": "Several accounts match: choose one below.",
  "Plusieurs patients correspondent : choisissez-en un ci-dessous.": "Several patients match: choose one below.",
  "Plusieurs actions correspondent : choisissez-en une ci-dessous.": "Several actions match: choose one below.",
  "Date inexistante.": "No such date.",
  "Date ISO 8601 attendue (ex. 2026-11-23 ou 2026-11-23T10:00:00Z).": "An ISO 8601 date is expected (e.g. 2026-11-23).",
  "Identifiant de compte (UUID) attendu.": "An account id (UUID) is expected.",
  "Identifiant de patient (UUID) attendu.": "A patient id (UUID) is expected.",
  "Allowed, denied, error attendu.": "One of allowed, denied, error is expected.",
  "Doit être postérieur au début de la période.": "Must come after the start of the period.",
  "Entier positif attendu.": "A positive integer is expected.",
  "Entier de 1 à 500 attendu.": "An integer from 1 to 500 is expected.",
  // Machine accounts (app/accounts/machines.server.ts).
  "Portée inconnue (store, query).": "Unknown scope (store, query).",
  "Au moins une portée : store, ou store et query.": "At least one scope: store, or store and query.",
  "Titre AE invalide : 1 à 16 caractères ASCII, sans barre oblique inverse.": "Invalid AE title: 1 to 16 ASCII characters, no backslash.",
  "Ce titre AE est déjà celui d'un autre compte machine.": "This AE title already belongs to another machine account.",
  // An identity override's reason (app/exams/exams.server.ts).
  "Motif trop court : au moins 10 caractères.": "Reason too short: at least 10 characters.",
};

/** A field message (a code or a French sentence) in `lang`. */
export function fieldMessage(value: string | null | undefined, lang: Lang): string | undefined {
  if (!value) return undefined;
  const code = /^field\.(\w+)(?::(.*))?$/.exec(value);
  if (code) return CODES[code[1]!]?.[lang](code[2] ?? "") ?? CODES.invalid![lang]("");
  if (lang === "en") {
    const password = /^Le mot de passe doit comporter au moins (\d+) caractères\.$/.exec(value);
    if (password) return `The password must be at least ${password[1]} characters long.`;
    return ENGLISH[value] ?? value;
  }
  return value;
}

/** zod 4's own messages are English ("Invalid input: …", "Too small: …"): those become codes. */
const ZOD_DEFAULT = /^(Invalid|Too (small|big)|Expected|Unrecognized|Required)/;

/** The code (or the schema's own message) for one zod issue. */
export function issueMessage(issue: {
  code: string;
  message: string;
  input?: unknown;
  origin?: string;
  minimum?: unknown;
  maximum?: unknown;
  format?: string;
}): string {
  if (issue.message.startsWith("field.") || !ZOD_DEFAULT.test(issue.message)) return issue.message;
  const text = issue.origin === "string";
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined || issue.input === null ? "field.required" : "field.invalid";
    case "too_small":
      if (text && Number(issue.minimum) === 1) return "field.required";
      return `field.${text ? "tooShort" : "tooSmall"}:${String(issue.minimum)}`;
    case "too_big":
      return `field.${text ? "tooLong" : "tooBig"}:${String(issue.maximum)}`;
    case "invalid_format":
      return issue.format === "email" ? "field.email" : "field.format";
    case "invalid_value":
    case "invalid_union":
      return "field.choice";
    default:
      return "field.invalid";
  }
}
