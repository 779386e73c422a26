/**
 * One audit event as a FHIR R4 AuditEvent, shaped after IHE Basic Audit Log Patterns (BALP): type `rest` with the
 * RESTful interaction as subtype (login and logout as DICOM user-authentication events), the user as the requesting
 * agent (with role and purpose of use), the client and the Nexus server as network agents, the patient as a Person
 * entity in the Patient role, the touched resource as a system object, and the X-Request-Id as the transaction
 * entity. Identifiers only: the event holds no medical content, and neither does its FHIR form.
 */
import type { AuditEventRow } from "./audit.server";
import { ACT_REASON_DISPLAY, ACT_REASON_SYSTEM, isPurposeOfUse, purposeOf } from "./purpose";

const DCM = "http://dicom.nema.org/resources/ontology/DCM";
const AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction";
const ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role";
const PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type";
const BALP_ENTITY_TYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";
/** Nexus's own identifiers (accounts, images, tokens…) are URNs: they are not FHIR resources. */
const NEXUS_ID = "urn:nexus:id";

type Interaction = "read" | "search-type" | "create" | "update" | "delete";
/** What an action does, from the last part of its name. */
const VERBS: Record<string, { action: "C" | "R" | "U" | "D" | "E"; interaction?: Interaction }> = {
  read: { action: "R", interaction: "read" },
  self: { action: "R", interaction: "read" },
  view: { action: "R", interaction: "read" },
  image: { action: "R", interaction: "read" },
  home: { action: "R", interaction: "read" },
  list: { action: "R", interaction: "search-type" },
  create: { action: "C", interaction: "create" },
  upload: { action: "C", interaction: "create" },
  update: { action: "U", interaction: "update" },
  password: { action: "U", interaction: "update" },
  enable: { action: "U", interaction: "update" },
  disable: { action: "U", interaction: "update" },
  erase: { action: "D", interaction: "delete" },
  revoke: { action: "D", interaction: "delete" },
  archive: { action: "D", interaction: "delete" },
};

/** R4 AuditEvent.outcome: 0 success, 4 minor failure (a refusal), 8 serious failure (an error). */
export const FHIR_OUTCOME = { allowed: "0", denied: "4", error: "8" } as const;

export interface FhirCoding {
  system: string;
  code: string;
  display?: string;
}

export interface FhirAuditEvent {
  resourceType: "AuditEvent";
  id: string;
  type: FhirCoding;
  subtype?: FhirCoding[];
  action: "C" | "R" | "U" | "D" | "E";
  recorded: string;
  outcome: "0" | "4" | "8";
  outcomeDesc?: string;
  purposeOfEvent: { coding: FhirCoding[] }[];
  agent: {
    type: { coding: FhirCoding[] };
    role?: { text: string }[];
    who: { identifier?: { system: string; value: string }; reference?: string; display?: string };
    name?: string;
    requestor: boolean;
    network?: { address: string; type: string };
    purposeOfUse?: { coding: FhirCoding[] }[];
  }[];
  source: { site?: string; observer: { display: string }; type: FhirCoding[] };
  entity?: {
    what: { reference?: string; identifier?: { system?: string; value: string } };
    type: FhirCoding;
    role?: FhirCoding;
    description?: string;
  }[];
}

function eventType(action: string): { type: FhirCoding; subtype?: FhirCoding[]; action: FhirAuditEvent["action"] } {
  if (action === "auth.login" || action === "session.logout") {
    return {
      type: { system: DCM, code: "110114", display: "User Authentication" },
      subtype: [action === "auth.login" ? { system: DCM, code: "110122", display: "Login" } : { system: DCM, code: "110123", display: "Logout" }],
      action: "E",
    };
  }
  const verb = VERBS[action.slice(action.lastIndexOf(".") + 1)] ?? { action: "E" as const };
  return {
    type: { system: AUDIT_EVENT_TYPE, code: "rest", display: "Restful Operation" },
    subtype: verb.interaction ? [{ system: RESTFUL_INTERACTION, code: verb.interaction, display: verb.interaction }] : undefined,
    action: verb.action,
  };
}

/** A resource as a reference: FHIR resources (the patient) by reference, Nexus objects by identifier. */
function resourceWhat(type: string, id: string | null): { reference?: string; identifier?: { system?: string; value: string } } {
  if (type === "patient" && id) return { reference: `Patient/${id}` };
  return { identifier: { system: `${NEXUS_ID}:${type}`, value: id ?? type } };
}

/** `site`: the public address of this Nexus (PUBLIC_URL's host), shown as the observer's site. */
export function toFhirAuditEvent(row: AuditEventRow, options: { site?: string } = {}): FhirAuditEvent {
  const kind = eventType(row.action);
  const purpose = isPurposeOfUse(row.purpose) ? row.purpose : purposeOf(row.action, row.actorRole);
  const purposeCoding = { coding: [{ system: ACT_REASON_SYSTEM, code: purpose, display: ACT_REASON_DISPLAY[purpose] }] };
  // A read sends data from the server to the client (DICOM: server = source, client = destination); anything else
  // sends it from the client to the server.
  const isRead = kind.action === "R";
  const agents: FhirAuditEvent["agent"] = [];
  if (row.actorId) {
    agents.push({
      type: { coding: [{ system: PARTICIPATION_TYPE, code: "IRCP", display: "information recipient" }] },
      ...(row.actorRole ? { role: [{ text: row.actorRole }] } : {}),
      who: { identifier: { system: `${NEXUS_ID}:account`, value: row.actorId }, ...(row.actorName ? { display: row.actorName } : {}) },
      ...(row.actorName ? { name: row.actorName } : {}),
      requestor: true,
      purposeOfUse: [purposeCoding],
    });
  }
  agents.push({
    type: { coding: [isRead ? { system: DCM, code: "110152", display: "Destination Role ID" } : { system: DCM, code: "110153", display: "Source Role ID" }] },
    who: { display: row.userAgent ?? "client" },
    requestor: !row.actorId,
    ...(row.ip ? { network: { address: row.ip, type: "2" } } : {}),
  });
  agents.push({
    type: { coding: [isRead ? { system: DCM, code: "110153", display: "Source Role ID" } : { system: DCM, code: "110152", display: "Destination Role ID" }] },
    who: { display: "Nexus" },
    requestor: false,
    ...(options.site ? { network: { address: options.site, type: "1" } } : {}),
  });

  const entities: NonNullable<FhirAuditEvent["entity"]> = [];
  if (row.patientId) {
    entities.push({
      what: { reference: `Patient/${row.patientId}` },
      type: { system: ENTITY_TYPE, code: "1", display: "Person" },
      role: { system: OBJECT_ROLE, code: "1", display: "Patient" },
    });
  }
  if (row.resourceType && !(row.resourceType === "patient" && row.resourceId === row.patientId)) {
    entities.push({
      what: resourceWhat(row.resourceType, row.resourceId),
      type: { system: ENTITY_TYPE, code: "2", display: "System Object" },
      role:
        row.resourceType === "account"
          ? { system: OBJECT_ROLE, code: "6", display: "User" }
          : { system: OBJECT_ROLE, code: "4", display: "Domain Resource" },
      description: row.resourceType,
    });
  }
  if (row.requestId) {
    entities.push({
      what: { identifier: { value: row.requestId } },
      type: { system: BALP_ENTITY_TYPE, code: "XrequestId", display: "transport specific unique identifier where http X-Request-Id is used" },
    });
  }

  return {
    resourceType: "AuditEvent",
    id: String(row.id),
    type: kind.type,
    ...(kind.subtype ? { subtype: kind.subtype } : {}),
    action: kind.action,
    recorded: row.at.toISOString(),
    outcome: FHIR_OUTCOME[row.outcome],
    ...(row.reason ? { outcomeDesc: row.reason } : {}),
    purposeOfEvent: [purposeCoding],
    agent: agents,
    source: {
      ...(options.site ? { site: options.site } : {}),
      observer: { display: "Nexus" },
      type: [{ system: SOURCE_TYPE, code: "4", display: "Application Server" }],
    },
    ...(entities.length ? { entity: entities } : {}),
  };
}
