/**
 * Erase by default (issue 11, item 8): an unknown image is a 404 before the policy can record "allowed"; the image
 * page's intents are a discriminated union, so a bare CSRF-only POST erases nothing and an erase needs
 * `intent=erase` and its confirmation.
 */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { api, baseUrl, BrowserSession, tokenFor } from "../helpers/http";
import { createPatient } from "../helpers/fixtures";
import { jpeg, uploadImage } from "../helpers/images";

let adminToken: string;
let doctorToken: string;
let patientId: string;

/** The audit events of one request (by its X-Request-Id). */
async function eventsOf(requestId: string | null) {
  const res = await api("GET", `/api/v1/audit?requestId=${requestId}`, { token: adminToken });
  expect(res.status).toBe(200);
  return res.body.events as { outcome: string; action: string }[];
}

beforeAll(async () => {
  adminToken = await tokenFor("admin@demo.nexus");
  doctorToken = await tokenFor("doctor@demo.nexus");
  patientId = (await createPatient(doctorToken, { displayName: "Patiente Effacement", consents: { care: true } })).id;
});

describe("unknown images are a 404, never an allowed erase", () => {
  it("POST /images/<unknown> as admin (page) → 404, nothing audited as allowed", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus");
    const res = await admin.post(`/images/${randomUUID()}`, { intent: "erase", confirm: "1" });
    expect(res.status).toBe(404);
    const events = await eventsOf(res.headers.get("X-Request-Id"));
    expect(events.map((e) => `${e.action}:${e.outcome}`)).toEqual(["image.erase:denied"]);
  });

  it("a bare CSRF-only POST /images/<unknown> → 400, nothing audited as allowed", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus");
    const res = await admin.post(`/images/${randomUUID()}`, {});
    expect(res.status).toBe(400);
    expect((await eventsOf(res.headers.get("X-Request-Id"))).filter((e) => e.outcome === "allowed")).toEqual([]);
  });

  it("DELETE /api/v1/images/<unknown> as admin → 404, nothing audited as allowed", async () => {
    const res = await api("DELETE", `/api/v1/images/${randomUUID()}`, { token: adminToken });
    expect(res.status).toBe(404);
    const events = await eventsOf(res.headers.get("X-Request-Id"));
    expect(events.map((e) => e.outcome)).toEqual(["denied"]);
  });
});

describe("the image page's intents", () => {
  it("a bare CSRF-only POST, or an erase without confirmation, erases nothing", async () => {
    const imageId = await uploadImage(baseUrl(), doctorToken, patientId, await jpeg());
    const doctor = await BrowserSession.login("doctor@demo.nexus");
    const cases: Record<string, string>[] = [{}, { intent: "effacer", confirm: "1" }, { intent: "erase", confirm: "non" }];
    for (const fields of cases) {
      const res = await doctor.post(`/images/${imageId}`, fields);
      expect(res.status, JSON.stringify(fields)).toBe(400);
    }
    // The intent alone only opens the confirmation step.
    const step = await doctor.post(`/images/${imageId}`, { intent: "erase" });
    expect(step.status).toBe(303);
    expect((await fetch(`${baseUrl()}/api/v1/images/${imageId}`, { headers: { Authorization: `Bearer ${doctorToken}` } })).status).toBe(200);
    // With the explicit intent and its confirmation, the erase happens.
    const erased = await doctor.post(`/images/${imageId}`, { intent: "erase", confirm: "1" });
    expect(erased.status).toBe(303);
    expect((await fetch(`${baseUrl()}/api/v1/images/${imageId}`, { headers: { Authorization: `Bearer ${doctorToken}` } })).status).toBe(410);
  });
});
