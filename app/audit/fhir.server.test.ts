/** FHIR AuditEvent mapping, purposes of use, CSV encoding and the fast canonical JSON: pure functions. */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { AuditEventRow } from "./audit.server";
import { canonicalJson, chainedJson, type ChainedFields } from "./chain.server";
import { csvField, csvLine, CSV_COLUMNS } from "./export.server";
import { toFhirAuditEvent } from "./fhir.server";
import { purposeOf } from "./purpose";

function row(overrides: Partial<AuditEventRow> = {}): AuditEventRow {
  return {
    id: 42,
    at: new Date("2026-11-23T10:00:00.123Z"),
    actorId: randomUUID(),
    actorRole: "doctor",
    actorName: "Dr Martin",
    action: "image.read",
    resourceType: "image",
    resourceId: randomUUID(),
    patientId: randomUUID(),
    outcome: "allowed",
    reason: null,
    purpose: "TREAT",
    requestId: randomUUID(),
    ip: "203.0.113.7",
    userAgent: "Mozilla/5.0",
    prevHash: "0".repeat(64),
    hash: "a".repeat(64),
    ...overrides,
  };
}

/** The required elements of R4 AuditEvent, and what IHE BALP adds for a patient-related event. */
function expectValidAuditEvent(e: ReturnType<typeof toFhirAuditEvent>) {
  expect(e.resourceType).toBe("AuditEvent");
  expect(e.type.system).toBeTruthy();
  expect(e.type.code).toBeTruthy();
  expect(Number.isNaN(Date.parse(e.recorded))).toBe(false);
  expect(e.agent.length).toBeGreaterThan(0);
  for (const agent of e.agent) {
    expect(typeof agent.requestor).toBe("boolean");
    expect(agent.who).toBeTruthy();
  }
  expect(e.source.observer.display).toBeTruthy();
  expect(["0", "4", "8", "12"]).toContain(e.outcome);
  expect(e.purposeOfEvent[0]!.coding[0]!.system).toBe("http://terminology.hl7.org/CodeSystem/v3-ActReason");
}

describe("FHIR AuditEvent (IHE BALP)", () => {
  it("a read: patient entity, user agent with purpose of use, client and server agents, request id", () => {
    const r = row();
    const e = toFhirAuditEvent(r, { site: "nexus.chu.example" });
    expectValidAuditEvent(e);
    expect(e).toMatchObject({
      id: "42",
      type: { code: "rest" },
      subtype: [{ code: "read" }],
      action: "R",
      recorded: "2026-11-23T10:00:00.123Z",
      outcome: "0",
      source: { site: "nexus.chu.example", type: [{ code: "4" }] },
    });
    const patient = e.entity!.find((x) => x.role?.code === "1")!;
    expect(patient).toMatchObject({ what: { reference: `Patient/${r.patientId}` }, type: { code: "1" } });
    expect(e.entity!.find((x) => x.type.code === "XrequestId")!.what.identifier!.value).toBe(r.requestId);
    expect(e.entity!.find((x) => x.type.code === "2")!.what.identifier).toEqual({ system: "urn:nexus:id:image", value: r.resourceId });
    const user = e.agent.find((a) => a.requestor)!;
    expect(user).toMatchObject({ type: { coding: [{ code: "IRCP" }] }, who: { identifier: { value: r.actorId } }, name: "Dr Martin" });
    expect(user.purposeOfUse![0]!.coding[0]!.code).toBe("TREAT");
    // A read flows from the server (source, 110153) to the client (destination, 110152).
    expect(e.agent.find((a) => a.network?.address === "203.0.113.7")!.type.coding[0]!.code).toBe("110152");
  });

  it("refusals and errors as failures, with the reason; anonymous callers as the requesting client", () => {
    const denied = toFhirAuditEvent(row({ outcome: "denied", reason: "Connexion requise.", actorId: null, actorRole: null, actorName: null }));
    expectValidAuditEvent(denied);
    expect(denied).toMatchObject({ outcome: "4", outcomeDesc: "Connexion requise." });
    expect(denied.agent.some((a) => a.type.coding[0]!.code === "IRCP")).toBe(false);
    expect(denied.agent.filter((a) => a.requestor)).toHaveLength(1);
    expect(toFhirAuditEvent(row({ outcome: "error" })).outcome).toBe("8");
  });

  it("creations, updates, erasures, logins", () => {
    expect(toFhirAuditEvent(row({ action: "patient.create" }))).toMatchObject({ action: "C", subtype: [{ code: "create" }] });
    expect(toFhirAuditEvent(row({ action: "consent.update" }))).toMatchObject({ action: "U", subtype: [{ code: "update" }] });
    expect(toFhirAuditEvent(row({ action: "image.erase" }))).toMatchObject({ action: "D", subtype: [{ code: "delete" }] });
    expect(toFhirAuditEvent(row({ action: "patient.list" }))).toMatchObject({ action: "R", subtype: [{ code: "search-type" }] });
    expect(toFhirAuditEvent(row({ action: "auth.login" }))).toMatchObject({ type: { code: "110114" }, subtype: [{ code: "110122" }] });
    const patientRow = row({ action: "patient.read", resourceType: "patient" });
    patientRow.resourceId = patientRow.patientId;
    // The patient is one entity, not two.
    expect(toFhirAuditEvent(patientRow).entity!.filter((x) => x.type.code !== "XrequestId")).toHaveLength(1);
  });

  it("never holds more than the row: no medical content can appear", () => {
    const e = JSON.stringify(toFhirAuditEvent(row()));
    expect(e).not.toMatch(/label|probabilit|diagnos|displayName/i);
  });
});

describe("purpose of use", () => {
  it("maps actions and roles to v3-ActReason codes", () => {
    expect(purposeOf("patient.read", "doctor")).toBe("TREAT");
    expect(purposeOf("image.upload", null)).toBe("TREAT");
    expect(purposeOf("patient.read", "patient")).toBe("PATRQT");
    expect(purposeOf("accessLog.read", "patient")).toBe("PATRQT");
    expect(purposeOf("research.view", "researcher")).toBe("HRESCH");
    expect(purposeOf("account.self", "researcher")).toBe("HRESCH");
    expect(purposeOf("patient.erase", "admin")).toBe("HOPERAT");
    expect(purposeOf("account.disable", "admin")).toBe("HOPERAT");
    expect(purposeOf("audit.read", "admin")).toBe("HOPERAT");
  });
});

describe("CSV", () => {
  it("quotes what needs quoting and defuses formulas", () => {
    expect(csvField(null)).toBe("");
    expect(csvField("plain")).toBe("plain");
    expect(csvField('a "quoted", text')).toBe('"a ""quoted"", text"');
    expect(csvField("line\nbreak")).toBe('"line\nbreak"');
    expect(csvField("=HYPERLINK(\"x\")")).toBe('"\'=HYPERLINK(""x"")"');
    expect(csvField("+33 6")).toBe("'+33 6");
    expect(csvField(12)).toBe("12");
  });

  it("writes every column in the header's order", () => {
    const r = row({ reason: "x,y" });
    const fields = csvLine(r).trimEnd().split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/);
    expect(fields).toHaveLength(CSV_COLUMNS.length);
    expect(fields[0]).toBe("42");
    expect(fields[CSV_COLUMNS.indexOf("reason")]).toBe('"x,y"');
    expect(fields[CSV_COLUMNS.indexOf("hash")]).toBe(r.hash);
  });
});

describe("canonical JSON of a chained row", () => {
  it("is byte for byte the generic canonical JSON (the hash does not change)", () => {
    const samples: ChainedFields[] = [row(), row({ actorId: null, actorName: "Zoé « Ünïcode » \"quoted\"\n", reason: "\u2028" }), row({ ip: null, userAgent: null, purpose: null })];
    for (const r of samples) {
      const fields = Object.fromEntries(
        ["id", "at", "actorId", "actorRole", "actorName", "action", "resourceType", "resourceId", "patientId", "outcome", "reason", "purpose", "requestId", "ip", "userAgent"].map((k) => [k, (r as unknown as Record<string, unknown>)[k]]),
      );
      expect(chainedJson(r)).toBe(canonicalJson(fields));
    }
    const base = row();
    const { reason: _r, prevHash: _p, hash: _h, ...rest } = base;
    const partial: Partial<ChainedFields> = { ...base };
    delete partial.reason;
    expect(chainedJson(partial as ChainedFields)).toBe(canonicalJson(rest));
  });
});
