import type { Lang } from "./strings";

/** Audit actions in words, for the patient's access log and the admin's audit pages. */
const LABELS: Record<string, Record<Lang, string>> = {
  "patient.read": { fr: "Consultation du dossier", en: "Record viewed" },
  "patient.create": { fr: "Création du dossier", en: "Record created" },
  "patient.erase": { fr: "Effacement du dossier", en: "Record erased" },
  "image.list": { fr: "Liste des mammographies", en: "Mammogram list" },
  "image.read": { fr: "Consultation d'une mammographie", en: "Mammogram viewed" },
  "image.upload": { fr: "Ajout d'une mammographie", en: "Mammogram added" },
  "image.erase": { fr: "Effacement d'une mammographie", en: "Mammogram erased" },
  "image.integrity": { fr: "Alerte d'intégrité sur une image", en: "Image integrity alert" },
  "consent.read": { fr: "Lecture des consentements", en: "Consents read" },
  "consent.update": { fr: "Modification d'un consentement", en: "Consent changed" },
  "accessLog.read": { fr: "Consultation du journal d'accès", en: "Access log viewed" },
  "research.image": { fr: "Image pseudonymisée vue (recherche)", en: "Pseudonymised image viewed (research)" },
  "image.analyse": { fr: "Analyse IA d'une mammographie", en: "AI analysis of a mammogram" },
  "patient.list": { fr: "Liste des patients", en: "Patient list" },
};

export function actionLabel(action: string, lang: Lang): string {
  return LABELS[action]?.[lang] ?? action;
}
