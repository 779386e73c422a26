/**
 * The policy: the only place that says who may do what. Deny by default: an action absent from the table, a
 * role absent from an action's rule, or a missing resource id is refused. Callers never re-implement a rule;
 * they go through `perform()` in app/http/guard.server.ts, which calls `authorize()` and the audit writer.
 *
 * Rule for resources the actor may not reach: the answer is 403 whether or not the resource exists, so that
 * refusals never reveal which patients exist (docs/decisions/2026-11-23-access-rules.md).
 */
import type { Actor } from "../accounts/actor";
import type { PurposeOfUse } from "../audit/purpose";
import type { Role } from "../db/schema";
import { consentOf } from "../consent/consent.server";
import { careTeamConsent, isInCareTeam } from "../patients/care-team.server";

export type Resource =
  | { type: "app" }
  | { type: "account"; id?: string }
  | { type: "token"; id?: string }
  | { type: "audit" }
  | { type: "patient"; id?: string }
  /** An image names its patient (looked up before authorising); an unknown image has none and is refused. */
  | { type: "image"; id?: string; patientId?: string }
  /** An exam names its patient too (looked up before authorising). */
  | { type: "exam"; id?: string; patientId?: string }
  /** A DICOM study (id: StudyInstanceUID), series or instance, named with the patient it belongs to. */
  | { type: "study"; id?: string; patientId?: string }
  /** An entry of the DICOM reconciliation queue (not yet any patient's). */
  | { type: "inbox"; id?: string }
  /** A machine account (modality, PACS). */
  | { type: "machine"; id?: string }
  /** A report waiting in (or gone through) the PACS push outbox. */
  | { type: "outbox"; id?: string };

export type Action =
  | "app.home"
  | "account.self"
  | "account.password"
  | "account.list"
  | "account.create"
  | "account.disable"
  | "account.enable"
  | "session.logout"
  | "token.revoke"
  | "audit.read"
  | "patient.list"
  | "patient.create"
  | "patient.read"
  | "research.view"
  | "patient.erase"
  | "image.upload"
  | "image.list"
  | "image.read"
  | "image.erase"
  | "consent.read"
  | "consent.update"
  | "accessLog.read"
  | "research.image"
  | "image.analyse"
  | "stats.view"
  | "worklist.read"
  | "reading.open"
  | "reading.create"
  | "letter.read"
  | "letter.referrer"
  | "programme.stats"
  | "exam.list"
  | "exam.read"
  | "exam.analyse"
  | "prediction.read"
  | "dicom.store"
  | "dicom.search"
  | "dicom.retrieve"
  | "inbox.list"
  | "inbox.resolve"
  | "machine.list"
  | "machine.create"
  | "machine.token"
  | "machine.revoke"
  | "machine.disable"
  | "machine.enable"
  | "account.totp"
  | "account.sessions"
  | "account.reset"
  | "account.update"
  | "result.read"
  | "outbox.list"
  | "outbox.retry";

export type Decision = { allowed: true } | { allowed: false; reason: string };

const ALLOW: Decision = { allowed: true };
const deny = (reason: string): Decision => ({ allowed: false, reason });

export const REASONS = {
  role: "Votre rôle ne permet pas cette action.",
  adminOnly: "Action réservée aux administrateurs.",
  careTeam: "Ce patient ne fait pas partie de votre équipe de soins.",
  otherPatient: "Vous ne pouvez consulter que votre propre dossier.",
  anonymous: "Connexion requise.",
  careRevoked: "Consentement aux soins retiré par le patient : consultation des images refusée.",
  careNeverGiven: "Le patient n'a pas donné son consentement aux soins : consultation des images refusée.",
  patientOnly: "Seul le patient peut modifier ses consentements.",
  ownLogOnly: "Seul le patient consulte son journal d'accès.",
  researchRevoked: "Consentement retiré pour la recherche.",
  researchNeverGiven: "Pas de consentement pour la recherche.",
  aiRevoked: "Consentement retiré pour l'analyse IA.",
  aiNeverGiven: "Le patient n'a pas consenti à l'analyse IA.",
  noModelOutput: "Les résultats du modèle d'IA sont réservés aux médecins de l'équipe de soins.",
  noStoreScope: "Ce compte machine n'a pas le droit d'envoyer des images (portée « store » absente).",
  noQueryScope: "Ce compte machine n'a pas le droit de rechercher ou lire des examens (portée « query » absente).",
} as const;

type Rule = (actor: Actor, resource: Resource) => Decision | Promise<Decision>;

const anyone: Rule = () => ALLOW;
const adminOnly: Rule = (actor) => (actor.role === "admin" ? ALLOW : deny(REASONS.adminOnly));
const onlyRoles =
  (...roles: Role[]): Rule =>
  (actor) =>
    roles.includes(actor.role) ? ALLOW : deny(REASONS.role);

/** The patient a resource belongs to: the patient itself, or an image's patient. */
export function patientOf(resource: Resource): string | undefined {
  if (resource.type === "patient") return resource.id;
  if (resource.type === "image" || resource.type === "exam" || resource.type === "study") return resource.patientId;
  return undefined;
}

/** A doctor of the patient's care team. */
const careTeamDoctor: Rule = async (actor, resource) => {
  const patientId = patientOf(resource);
  if (!patientId || actor.role !== "doctor") return deny(REASONS.role);
  return (await isInCareTeam(actor.id, patientId)) ? ALLOW : deny(REASONS.careTeam);
};

/** A doctor of the care team, or an admin (erasure requests handled by the hospital's data office). */
const careTeamOrAdmin: Rule = (actor, resource) => (actor.role === "admin" ? ALLOW : careTeamDoctor(actor, resource));

/** A machine account holding `scope`. */
const hasScope = (actor: Actor, scope: string) => actor.role === "system" && (actor.scopes ?? []).includes(scope);

/**
 * Viewing images: the patient themself; a doctor of the care team while the patient's `care` consent is live; a
 * machine account with the `query` scope (the hospital's PACS or viewer, acting for the care team) under the same
 * live `care` consent.
 */
const imageViewer: Rule = async (actor, resource) => {
  const patientId = patientOf(resource);
  if (actor.role === "patient") return patientId && actor.patientId === patientId ? ALLOW : deny(REASONS.otherPatient);
  if (actor.role === "system") {
    if (!hasScope(actor, "query")) return deny(REASONS.noQueryScope);
    if (!patientId) return deny(REASONS.role);
    const care = await consentOf(patientId, "care");
    return care.granted ? ALLOW : deny(care.updatedAt ? REASONS.careRevoked : REASONS.careNeverGiven);
  }
  return careTeamUnderConsent(actor, patientId, "care", REASONS.careRevoked, REASONS.careNeverGiven);
};

/** A doctor of the care team, while the patient's consent to `purpose` is live (both read in one round trip). */
async function careTeamUnderConsent(actor: Actor, patientId: string | undefined, purpose: "care" | "ai_analysis", revoked: string, neverGiven: string): Promise<Decision> {
  if (!patientId || actor.role !== "doctor") return deny(REASONS.role);
  const { member, consent } = await careTeamConsent(actor.id, patientId, purpose);
  if (!member) return deny(REASONS.careTeam);
  if (consent.granted) return ALLOW;
  return deny(consent.updatedAt ? revoked : neverGiven);
}

/** A reading: a doctor of the care team while the patient's `care` consent is live (checked at every step). */
const careReader: Rule = async (actor, resource) => (actor.role === "doctor" ? imageViewer(actor, resource) : deny(REASONS.role));

/** The patient themself, and nobody else (consent changes, own access log). */
const patientSelf =
  (reason: string): Rule =>
  (actor, resource) => {
    const patientId = patientOf(resource);
    return actor.role === "patient" && patientId !== undefined && actor.patientId === patientId ? ALLOW : deny(reason);
  };

/** Researchers see a patient's (pseudonymised) images only while the patient's `research` consent is live. */
const researchImage: Rule = async (actor, resource) => {
  const patientId = patientOf(resource);
  if (actor.role !== "researcher" || !patientId) return deny(REASONS.role);
  const research = await consentOf(patientId, "research");
  if (research.granted) return ALLOW;
  return deny(research.updatedAt ? REASONS.researchRevoked : REASONS.researchNeverGiven);
};

/** An AI reading: a doctor of the care team, while the patient's `ai_analysis` consent is live. */
const aiAnalysis: Rule = (actor, resource) =>
  careTeamUnderConsent(actor, patientOf(resource), "ai_analysis", REASONS.aiRevoked, REASONS.aiNeverGiven);

/** A doctor of the patient's care team, or the patient themself. */
const patientRecord: Rule = async (actor, resource) => {
  const patientId = patientOf(resource);
  if (!patientId) return deny(REASONS.role);
  if (actor.role === "doctor") return (await isInCareTeam(actor.id, patientId)) ? ALLOW : deny(REASONS.careTeam);
  if (actor.role === "patient") return actor.patientId === patientId ? ALLOW : deny(REASONS.otherPatient);
  return deny(REASONS.role);
};

/**
 * Storing a DICOM instance (STOW-RS, C-STORE) for a known patient: a doctor of the care team (as an upload), or a
 * machine account with the `store` scope (a modality or PACS sends for every patient of the site).
 */
const dicomStore: Rule = (actor, resource) => {
  if (actor.role === "system") return hasScope(actor, "store") ? ALLOW : deny(REASONS.noStoreScope);
  return careTeamDoctor(actor, resource);
};

/** Holding an instance for an unknown patient in the reconciliation queue: whoever may store. */
const dicomQueue: Rule = (actor) => {
  if (actor.role === "system") return hasScope(actor, "store") ? ALLOW : deny(REASONS.noStoreScope);
  return actor.role === "doctor" ? ALLOW : deny(REASONS.role);
};

/** Searching (QIDO-RS): doctors, patients, `query` machines; each study listed is then checked with image.read. */
const dicomSearch: Rule = (actor) => {
  if (actor.role === "system") return hasScope(actor, "query") ? ALLOW : deny(REASONS.noQueryScope);
  return actor.role === "doctor" || actor.role === "patient" ? ALLOW : deny(REASONS.role);
};

const RULES: Record<Action, Rule> = {
  "app.home": anyone,
  "account.self": anyone,
  "account.password": anyone,
  "session.logout": anyone,
  "token.revoke": anyone,
  "account.list": adminOnly,
  "account.create": adminOnly,
  "account.disable": (actor, resource) =>
    actor.role !== "admin"
      ? deny(REASONS.adminOnly)
      : resource.type === "account" && resource.id === actor.id
        ? deny("Un administrateur ne peut pas désactiver son propre compte.")
        : ALLOW,
  "account.enable": adminOnly,
  "audit.read": adminOnly,
  // Admins see the directory (names, dates) without medical content; doctors see their care team only.
  "patient.list": onlyRoles("doctor", "admin"),
  "patient.create": onlyRoles("doctor"),
  "patient.read": patientRecord,
  // Researchers have a space of their own; its data (pseudonymised, consented) arrives with the consent portal.
  "research.view": onlyRoles("researcher"),
  "patient.erase": careTeamOrAdmin,
  "image.upload": careTeamDoctor,
  "image.list": patientRecord,
  "image.read": imageViewer,
  "image.erase": careTeamOrAdmin,
  "consent.read": patientRecord,
  "consent.update": patientSelf(REASONS.patientOnly),
  "accessLog.read": patientSelf(REASONS.ownLogOnly),
  "research.image": researchImage,
  "image.analyse": aiAnalysis,
  // Doctors: their care team's readings; researchers: consenting patients', pseudonymised (the query decides).
  "stats.view": onlyRoles("doctor", "researcher"),
  // DICOMweb and DIMSE (docs/decisions/2026-11-30-dicomweb.md): a study is read like its images.
  "dicom.store": (actor, resource) => (resource.type === "inbox" ? dicomQueue(actor, resource) : dicomStore(actor, resource)),
  "dicom.search": dicomSearch,
  "dicom.retrieve": imageViewer,
  // The reconciliation queue: doctors decide; attaching is then an upload to the chosen patient (image.upload).
  "inbox.list": onlyRoles("doctor"),
  "inbox.resolve": (actor, resource) => (resource.type === "patient" ? careTeamDoctor(actor, resource) : onlyRoles("doctor")(actor, resource)),
  "machine.list": adminOnly,
  "machine.create": adminOnly,
  "machine.token": adminOnly,
  "machine.revoke": adminOnly,
  "machine.disable": adminOnly,
  "machine.enable": adminOnly,
  // Exams: the patient sees her list (status, letter; never AI); the care team reads exams while care consent is
  // live; the exam AI needs the ai_analysis consent, like one image's.
  "exam.list": patientRecord,
  "exam.read": async (actor, resource) => (actor.role === "doctor" ? imageViewer(actor, resource) : deny(REASONS.role)),
  "exam.analyse": aiAnalysis,
  // Model scores and heatmaps are for the care team (care consent live); never for the patient (issue 12: the
  // portal shows her exam's status and, once final, her letter).
  "prediction.read": async (actor, resource) => (actor.role === "doctor" ? imageViewer(actor, resource) : deny(REASONS.noModelOutput)),
  // One's own second factor, sessions and tokens (the domain acts on the actor's own id only).
  "account.totp": anyone,
  "account.sessions": anyone,
  // An admin resets a password (temporary, forced change) or edits a name and role; never their own role.
  "account.reset": adminOnly,
  "account.update": (actor, resource) =>
    actor.role !== "admin"
      ? deny(REASONS.adminOnly)
      : resource.type === "account" && resource.id === actor.id
        ? deny("Un administrateur ne peut pas modifier son propre compte ici.")
        : ALLOW,
  // Screening readings (branch `reading`): worklists list the caller's care teams only (the query decides).
  "worklist.read": onlyRoles("doctor"),
  "reading.open": careReader,
  "reading.create": careReader,
  // The letter: the care team while care consent is live, or the woman herself (once final: the domain says 409).
  "letter.read": imageViewer,
  // The referring doctor's report carries the readers' detail and the AI model: care team doctors only.
  "letter.referrer": careReader,
  // Programme statistics: doctors (their care teams) and admins (the whole programme, no patient names).
  "programme.stats": onlyRoles("doctor", "admin"),
  // Results out (issue 17.4): the final result as FHIR and as the reading SR, for the care team's doctors while care
  // consent is live (the hospital's systems take it from them). The CAD SR is model output: `prediction.read`.
  "result.read": careReader,
  // The PACS push outbox: delivery state and identifiers, no medical content — operations, admins only.
  "outbox.list": adminOnly,
  "outbox.retry": adminOnly,
};

/**
 * What an action is done for, which gives its purpose of use (HL7 v3 ActReason) in the audit trail: `care` →
 * TREAT (a patient acting on her own record: PATRQT; an admin handling care data, e.g. an erasure: HOPERAT),
 * `research` → HRESCH, `operations` → HOPERAT. A researcher's actions are always HRESCH.
 */
export type ActionPurpose = "care" | "research" | "operations";

const PURPOSE_OF_ACTION: Record<Action, ActionPurpose> = {
  "app.home": "operations",
  "account.self": "operations",
  "account.password": "operations",
  "account.list": "operations",
  "account.create": "operations",
  "account.disable": "operations",
  "account.enable": "operations",
  "session.logout": "operations",
  "token.revoke": "operations",
  "audit.read": "operations",
  "patient.list": "care",
  "patient.create": "care",
  "patient.read": "care",
  "research.view": "research",
  "patient.erase": "care",
  "image.upload": "care",
  "image.list": "care",
  "image.read": "care",
  "image.erase": "care",
  "consent.read": "care",
  "consent.update": "care",
  "accessLog.read": "care",
  "research.image": "research",
  "image.analyse": "care",
  "stats.view": "care",
  "exam.list": "care",
  "exam.read": "care",
  "exam.analyse": "care",
  "prediction.read": "care",
  "dicom.store": "care",
  "dicom.search": "care",
  "dicom.retrieve": "care",
  "inbox.list": "care",
  "inbox.resolve": "care",
  "machine.list": "operations",
  "machine.create": "operations",
  "machine.token": "operations",
  "machine.revoke": "operations",
  "machine.disable": "operations",
  "machine.enable": "operations",
  "account.totp": "operations",
  "account.sessions": "operations",
  "account.reset": "operations",
  "account.update": "operations",
  "worklist.read": "care",
  "reading.open": "care",
  "reading.create": "care",
  "letter.read": "care",
  "letter.referrer": "care",
  "programme.stats": "operations",
  "result.read": "care",
  "outbox.list": "operations",
  "outbox.retry": "operations",
};

/** The purpose of use the audit trail records for `action` done by someone of `role`. */
export function purposeOfUse(action: Action, role: Role | null | undefined): PurposeOfUse {
  const purpose = PURPOSE_OF_ACTION[action];
  if (purpose === "research" || role === "researcher") return "HRESCH";
  if (role === "patient") return "PATRQT";
  if (purpose === "care") return role === "admin" ? "HOPERAT" : "TREAT";
  return "HOPERAT";
}

/**
 * Which rows a list action may return to the actor: the policy decides, the query obeys. `careTeam`: the doctor's
 * care team; `directory`: every patient, identity only (admins); `research`: consenting patients, pseudonymised;
 * `none`: nothing.
 */
export type ListScope =
  | { kind: "careTeam"; doctorId: string }
  | { kind: "directory" }
  | { kind: "research" }
  | { kind: "none" };

export function listScope(actor: Actor, action: "patient.list" | "stats.view" | "programme.stats"): ListScope {
  if (actor.role === "doctor") return { kind: "careTeam", doctorId: actor.id };
  if (action === "patient.list" && actor.role === "admin") return { kind: "directory" };
  // Programme statistics: admins see the whole programme as counts, never a patient name.
  if (action === "programme.stats" && actor.role === "admin") return { kind: "directory" };
  if (action === "stats.view" && actor.role === "researcher") return { kind: "research" };
  return { kind: "none" };
}

export async function authorize(actor: Actor | null, action: Action, resource: Resource): Promise<Decision> {
  if (!actor) return deny(REASONS.anonymous);
  const rule = RULES[action] as Rule | undefined;
  if (!rule) return deny(REASONS.role);
  return rule(actor, resource);
}
