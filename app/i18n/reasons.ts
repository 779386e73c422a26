/**
 * Refusal reasons as codes, translated at the edge. The policy says why in French (`REASONS`, also the API's
 * message); the audit trail stores the code (`policy.<key>`), and pages show the code's words in the reader's
 * language. Rows written before codes hold the French sentence itself: `reasonText` shows those as they are.
 */
import type { REASONS } from "../policy/policy.server";
import type { Lang } from "./strings";

export type ReasonKey = keyof typeof REASONS;

export const REASON_TEXT: Record<ReasonKey, Record<Lang, string>> = {
  role: { fr: "Votre rôle ne permet pas cette action.", en: "Your role does not allow this action." },
  adminOnly: { fr: "Action réservée aux administrateurs.", en: "Only administrators may do this." },
  careTeam: { fr: "Ce patient ne fait pas partie de votre équipe de soins.", en: "This patient is not in your care team." },
  otherPatient: { fr: "Vous ne pouvez consulter que votre propre dossier.", en: "You may only view your own record." },
  anonymous: { fr: "Connexion requise.", en: "Please log in." },
  careRevoked: {
    fr: "Consentement aux soins retiré par le patient : consultation des images refusée.",
    en: "The patient withdrew consent to care: the images cannot be viewed.",
  },
  careNeverGiven: {
    fr: "Le patient n'a pas donné son consentement aux soins : consultation des images refusée.",
    en: "The patient has not consented to care: the images cannot be viewed.",
  },
  patientOnly: { fr: "Seul le patient peut modifier ses consentements.", en: "Only the patient may change their consents." },
  ownLogOnly: { fr: "Seul le patient consulte son journal d'accès.", en: "Only the patient may read their access log." },
  researchRevoked: { fr: "Consentement retiré pour la recherche.", en: "Consent to research withdrawn." },
  researchNeverGiven: { fr: "Pas de consentement pour la recherche.", en: "No consent to research." },
  aiRevoked: { fr: "Consentement retiré pour l'analyse IA.", en: "Consent to AI analysis withdrawn." },
  aiNeverGiven: { fr: "Le patient n'a pas consenti à l'analyse IA.", en: "The patient has not consented to AI analysis." },
  noModelOutput: {
    fr: "Les résultats du modèle d'IA sont réservés aux médecins de l'équipe de soins.",
    en: "AI model results are for the doctors of the care team only.",
  },
  noStoreScope: {
    fr: "Ce compte machine n'a pas le droit d'envoyer des images (portée « store » absente).",
    en: "This machine account may not send images (no “store” scope).",
  },
  noQueryScope: {
    fr: "Ce compte machine n'a pas le droit de rechercher ou lire des examens (portée « query » absente).",
    en: "This machine account may not search or read exams (no “query” scope).",
  },
};

const PREFIX = "policy.";
const byFrench = new Map(Object.entries(REASON_TEXT).map(([k, v]) => [v.fr, k as ReasonKey]));

/** The code stored for a policy reason (`policy.careRevoked`); any other text is kept as it is. */
export function reasonCode(reason: string): string {
  const key = byFrench.get(reason);
  return key ? `${PREFIX}${key}` : reason;
}

/**
 * A stored or received reason in the reader's language: a code (`policy.careRevoked`), or a policy sentence in
 * French (older audit rows, the API's message); anything else is returned unchanged.
 */
export function reasonText(reason: string | null | undefined, lang: Lang): string | null {
  if (!reason) return null;
  const key = reason.startsWith(PREFIX) ? (reason.slice(PREFIX.length) as ReasonKey) : byFrench.get(reason);
  return key && REASON_TEXT[key] ? REASON_TEXT[key][lang] : reason;
}
