import type { Action } from "../policy/policy.server";
import type { Lang } from "./strings";

/** Actions the audit trail records besides the policy's own: logins, integrity alerts, archiving. */
type RecordedOnly = "auth.login" | "auth.otp" | "token.create" | "image.integrity" | "audit.archive" | "result.push";

/**
 * Audit actions in words, for the patient's access log and the admin's audit pages. Typed on the policy's actions,
 * so a new action without words fails the type check.
 */
const LABELS: Record<Action | RecordedOnly, Record<Lang, string>> = {
  "app.home": { fr: "Page d'accueil", en: "Home page" },
  "auth.login": { fr: "Connexion", en: "Sign-in" },
  "auth.otp": { fr: "Code de double authentification", en: "Second-factor code" },
  "account.totp": { fr: "Double authentification (réglage)", en: "Second factor (settings)" },
  "account.sessions": { fr: "Sessions et jetons actifs", en: "Active sessions and tokens" },
  "account.reset": { fr: "Réinitialisation d'un mot de passe", en: "Password reset" },
  "account.update": { fr: "Modification d'un compte", en: "Account edited" },
  "session.logout": { fr: "Déconnexion", en: "Sign-out" },
  "token.create": { fr: "Jeton d'API délivré", en: "API token issued" },
  "token.revoke": { fr: "Jeton d'API révoqué", en: "API token revoked" },
  "account.self": { fr: "Consultation de son compte", en: "Own account viewed" },
  "account.password": { fr: "Changement de mot de passe", en: "Password changed" },
  "account.list": { fr: "Liste des comptes", en: "Account list" },
  "account.create": { fr: "Création d'un compte", en: "Account created" },
  "account.disable": { fr: "Désactivation d'un compte", en: "Account disabled" },
  "account.enable": { fr: "Réactivation d'un compte", en: "Account re-enabled" },
  "audit.read": { fr: "Consultation du journal d'audit", en: "Audit trail read" },
  "audit.archive": { fr: "Archivage du journal d'audit", en: "Audit trail archived" },
  "research.view": { fr: "Espace recherche", en: "Research space" },
  "stats.view": { fr: "Statistiques des analyses", en: "Reading statistics" },
  "patient.read": { fr: "Consultation du dossier", en: "Record viewed" },
  "patient.create": { fr: "Création du dossier", en: "Record created" },
  "patient.erase": { fr: "Effacement du dossier", en: "Record erased" },
  "image.list": { fr: "Liste des mammographies", en: "Mammogram list" },
  "image.read": { fr: "Consultation d'une mammographie", en: "Mammogram viewed" },
  "image.upload": { fr: "Ajout d'une mammographie", en: "Mammogram added" },
  "dicom.store": { fr: "Réception DICOM (STOW-RS, C-STORE)", en: "DICOM received (STOW-RS, C-STORE)" },
  "dicom.search": { fr: "Recherche d'examens (QIDO-RS)", en: "Study search (QIDO-RS)" },
  "dicom.retrieve": { fr: "Lecture d'un examen DICOM (WADO-RS)", en: "DICOM study retrieved (WADO-RS)" },
  "inbox.list": { fr: "File de rapprochement DICOM", en: "DICOM reconciliation queue" },
  "inbox.resolve": { fr: "Rapprochement d'une image DICOM", en: "DICOM instance reconciled" },
  "machine.list": { fr: "Liste des comptes machines", en: "Machine account list" },
  "machine.create": { fr: "Création d'un compte machine", en: "Machine account created" },
  "machine.token": { fr: "Jeton de compte machine délivré", en: "Machine account token issued" },
  "machine.revoke": { fr: "Jeton de compte machine révoqué", en: "Machine account token revoked" },
  "machine.disable": { fr: "Désactivation d'un compte machine", en: "Machine account disabled" },
  "machine.enable": { fr: "Réactivation d'un compte machine", en: "Machine account re-enabled" },
  "image.erase": { fr: "Effacement d'une mammographie", en: "Mammogram erased" },
  "image.integrity": { fr: "Alerte d'intégrité sur une image", en: "Image integrity alert" },
  "consent.read": { fr: "Lecture des consentements", en: "Consents read" },
  "consent.update": { fr: "Modification d'un consentement", en: "Consent changed" },
  "accessLog.read": { fr: "Consultation du journal d'accès", en: "Access log viewed" },
  "research.image": { fr: "Image pseudonymisée vue (recherche)", en: "Pseudonymised image viewed (research)" },
  "image.analyse": { fr: "Analyse IA d'une mammographie", en: "AI analysis of a mammogram" },
  "patient.list": { fr: "Liste des patients", en: "Patient list" },
  "worklist.read": { fr: "Liste de travail de lecture", en: "Reading worklist" },
  "reading.open": { fr: "Ouverture du formulaire de lecture", en: "Reading form opened" },
  "reading.create": { fr: "Lecture d'un examen de dépistage", en: "Screening exam reading" },
  "letter.read": { fr: "Courrier de résultat", en: "Result letter" },
  "letter.referrer": { fr: "Compte rendu pour le médecin traitant", en: "Referring doctor's report" },
  "programme.stats": { fr: "Statistiques du programme de dépistage", en: "Screening programme statistics" },
  "exam.list": { fr: "Liste des examens", en: "Exam list" },
  "exam.read": { fr: "Consultation d'un examen", en: "Exam viewed" },
  "exam.analyse": { fr: "Analyse IA d'un examen", en: "AI analysis of an exam" },
  "prediction.read": { fr: "Consultation d'un résultat d'IA", en: "AI result viewed" },
  "result.read": { fr: "Résultat structuré (FHIR, compte rendu DICOM SR)", en: "Structured result (FHIR, DICOM SR)" },
  "result.push": { fr: "Envoi d'un compte rendu au PACS", en: "Report sent to the PACS" },
  "outbox.list": { fr: "File d'envoi vers le PACS", en: "PACS sending queue" },
  "outbox.retry": { fr: "Relance d'un envoi au PACS", en: "PACS sending retried" },
};

export function actionLabel(action: string, lang: Lang): string {
  return LABELS[action as keyof typeof LABELS]?.[lang] ?? action;
}
