/**
 * Purpose of use of an audited action, as HL7 v3 ActReason codes (the vocabulary of FHIR AuditEvent.purposeOfEvent
 * and IHE BALP agent.purposeOfUse). The policy owns the purpose of each of its actions (`purposeOfUse()` in
 * app/policy/policy.server.ts, passed by `perform()`); {@link purposeOf} is the fallback `record()` uses for events
 * recorded outside `perform()` (logins, CSRF refusals) and the FHIR export for rows written before. No server-only
 * imports: the admin page shows the labels.
 */
import type { Role } from "../vocabulary";

export const PURPOSES_OF_USE = ["TREAT", "HRESCH", "PATRQT", "HOPERAT"] as const;
export type PurposeOfUse = (typeof PURPOSES_OF_USE)[number];

export const ACT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/** English displays of the v3-ActReason codes (FHIR exports carry them). */
export const ACT_REASON_DISPLAY: Record<PurposeOfUse, string> = {
  TREAT: "treatment",
  HRESCH: "healthcare research",
  PATRQT: "patient requested",
  HOPERAT: "healthcare operations",
};

/** Domains whose actions touch a patient's care data (patients, images, consents, AI readings, access log). */
const CARE_DOMAINS = new Set([
  "patient",
  "image",
  "consent",
  "prediction",
  "inference",
  "accessLog",
  "dicom",
  "inbox",
  "exam",
  "worklist",
  "reading",
  "result",
  "letter",
]);

/**
 * research.* or a researcher → HRESCH; a patient acting on their own record → PATRQT; care data touched by a
 * doctor (or by an anonymous caller trying to) → TREAT; care data handled by an admin (erasure requests) and
 * everything else (accounts, sessions, tokens, the audit itself, key rotation) → HOPERAT.
 */
export function purposeOf(action: string, role: Role | string | null | undefined): PurposeOfUse {
  const domain = action.split(".", 1)[0] ?? "";
  if (domain === "research" || role === "researcher") return "HRESCH";
  if (role === "patient") return "PATRQT";
  if (CARE_DOMAINS.has(domain)) return role === "admin" ? "HOPERAT" : "TREAT";
  return "HOPERAT";
}

export function isPurposeOfUse(value: string | null | undefined): value is PurposeOfUse {
  return (PURPOSES_OF_USE as readonly string[]).includes(value ?? "");
}
