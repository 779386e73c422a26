/**
 * The admin audit page without a browser (plain HTTP, as a browser without JavaScript): filters, keyset pages, the
 * detail of one event, the chain's state and its verification, CSV and FHIR NDJSON exports (page and API), form
 * errors, refusals — and that nothing shown or exported to admins carries a patient's name or medical content.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createPatient, uniqueEmail } from "./helpers/fixtures";
import { api, baseUrl, BrowserSession, tokenFor } from "./helpers/http";

const MARKER = "Zoé Marqueur-Unique";
let admin: BrowserSession;
let adminToken = "";
let doctorToken = "";
let doctorId = "";
let patientId = "";
let patientToken = "";
/** The ids of the doctor's consent reads of this patient, newest first. */
let reads: number[] = [];

const rowsOf = (html: string) => [...html.matchAll(/<tr data-event-id="(\d+)" data-outcome="(\w+)"/g)].map((m) => ({ id: Number(m[1]), outcome: m[2] }));
const nextLink = (html: string) => /<a[^>]*rel="next"[^>]*href="([^"]+)"|<a[^>]*href="([^"]+)"[^>]*rel="next"/.exec(html);
const decode = (s: string) => s.replace(/&amp;/g, "&");
const today = () => new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Paris" }).format(new Date());

beforeAll(async () => {
  admin = await BrowserSession.login("admin@demo.nexus");
  adminToken = await tokenFor("admin@demo.nexus");
  doctorToken = await tokenFor("doctor@demo.nexus");
  doctorId = (await api("GET", "/api/v1/me", { token: doctorToken })).body.id;
  const created = await createPatient(doctorToken, { displayName: MARKER, email: uniqueEmail("marker"), consents: { care: true } });
  patientId = created.id;
  patientToken = await tokenFor(created.account!.email, created.account!.password);
  for (let i = 0; i < 5; i++) await api("GET", `/api/v1/patients/${patientId}/consents`, { token: doctorToken });
  // A refusal and the patient's own actions (the patient's name must not show on the admin side).
  await api("GET", `/api/v1/patients/${patientId}/consents`, { token: await tokenFor("researcher@demo.nexus") });
  await api("GET", `/api/v1/patients/${patientId}/access-log`, { token: patientToken });
  await api("PUT", `/api/v1/patients/${patientId}/consents/research`, { token: patientToken, json: { granted: true } });
  const found = await api("GET", `/api/v1/audit?actor=${doctorId}&patient=${patientId}&action=consent.read&limit=50`, { token: adminToken });
  reads = found.body.events.map((e: { id: string }) => Number(e.id));
  expect(reads).toHaveLength(5);
});

describe("admin audit page", () => {
  it("is in the admin navigation and shows the chain's state, the filters and the newest events", async () => {
    const page = await admin.get("/admin/audit");
    expect(page.status).toBe(200);
    expect(page.html).toMatch(/<a[^>]*href="\/admin\/audit"[^>]*>Journal d&#x27;audit<\/a>|<a[^>]*href="\/admin\/audit"[^>]*>Journal d'audit<\/a>/);
    expect(page.html).toContain('data-testid="chain-status"');
    expect(page.html).toMatch(/data-testid="chain-tail">\d+ derniers événements correctement chaînés/);
    for (const label of ["Acteur (nom, adresse e-mail ou identifiant)", "Patient (nom ou identifiant)", "Action (libellé ou code)", "Résultat", "Du", "Au (inclus)"]) {
      expect(page.html).toContain(`>${label.replace(/'/g, "&#x27;")}</label>`);
    }
    expect(rowsOf(page.html).length).toBeGreaterThan(10);
    expect(page.html).toContain('<caption class="sr-only">Événements, du plus récent au plus ancien</caption>');
  });

  it("filters by actor (e-mail or id), patient, action and outcome", async () => {
    const byEmail = await admin.get(`/admin/audit?actor=doctor%40demo.nexus&patient=${patientId}&action=consent.read&outcome=allowed`);
    expect(byEmail.status).toBe(200);
    expect(rowsOf(byEmail.html).map((r) => r.id)).toEqual(reads);
    const byId = await admin.get(`/admin/audit?actor=${doctorId}&patient=${patientId}&action=consent.read`);
    expect(rowsOf(byId.html).map((r) => r.id)).toEqual(reads);
    const denied = await admin.get(`/admin/audit?patient=${patientId}&outcome=denied`);
    const deniedRows = rowsOf(denied.html);
    expect(deniedRows.length).toBeGreaterThanOrEqual(1);
    expect(deniedRows.every((r) => r.outcome === "denied")).toBe(true);
    // The form keeps what was typed.
    expect(byEmail.html).toContain('value="doctor@demo.nexus"');
  });

  it("filters by a date range in Paris days", async () => {
    const day = today();
    const inRange = await admin.get(`/admin/audit?actor=${doctorId}&patient=${patientId}&action=consent.read&from=${day}&to=${day}`);
    expect(rowsOf(inRange.html).map((r) => r.id)).toEqual(reads);
    const later = await admin.get(`/admin/audit?patient=${patientId}&from=2999-01-01`);
    expect(later.status).toBe(200);
    expect(rowsOf(later.html)).toHaveLength(0);
    expect(later.html).toContain("Aucun événement ne correspond à ces filtres.");
  });

  it("pages by cursor: disjoint pages, older and older, a way back to the newest", async () => {
    const first = await admin.get(`/admin/audit?actor=${doctorId}&patient=${patientId}&action=consent.read&limit=2`);
    expect(rowsOf(first.html).map((r) => r.id)).toEqual(reads.slice(0, 2));
    const link = nextLink(first.html)!;
    const href = decode(link[1] ?? link[2]!);
    expect(href).toMatch(/cursor=\d+/);
    const second = await admin.get(href);
    expect(rowsOf(second.html).map((r) => r.id)).toEqual(reads.slice(2, 4));
    expect(second.html).toContain("Retour aux plus récents");
    const third = await admin.get(decode(((l) => l[1] ?? l[2]!)(nextLink(second.html)!)));
    expect(rowsOf(third.html).map((r) => r.id)).toEqual(reads.slice(4));
    expect(nextLink(third.html)).toBeNull();
  });

  it("answers a bad filter with form errors (400), next to the fields", async () => {
    const bad = await admin.get("/admin/audit?actor=not-an-id&from=2026-02-31&outcome=maybe");
    expect(bad.status).toBe(400);
    expect(bad.html).toContain("Le formulaire contient des erreurs.");
    expect(bad.html).toMatch(/id="filtre-actor"[^>]*aria-invalid="true"/);
    expect(bad.html).toContain("Aucun compte ne correspond (nom, adresse e-mail ou identifiant).");
    expect(bad.html).toContain("Date inexistante.");
    expect(bad.html).toContain('id="filtre-outcome-error"');
    const unknown = await admin.get(`/admin/audit?actor=${uniqueEmail("nobody")}`);
    expect(unknown.status).toBe(400);
    expect(unknown.html).toContain("Aucun compte ne correspond (nom, adresse e-mail ou identifiant).");
    const reversed = await admin.get("/admin/audit?from=2026-11-23&to=2026-11-01");
    expect(reversed.status).toBe(400);
  });

  it("shows one event in detail: every field, its integrity, its FHIR form", async () => {
    const detail = await admin.get(`/admin/audit/${reads[0]}`);
    expect(detail.status).toBe(200);
    expect(detail.html).toContain(`Événement n° ${reads[0]}`);
    expect(detail.html).toContain("Empreinte conforme au contenu de l&#x27;événement.");
    expect(detail.html).toContain("Chaîné à l&#x27;événement précédent.");
    expect(detail.html).toContain(patientId);
    expect(detail.html).toContain("&quot;resourceType&quot;: &quot;AuditEvent&quot;");
    expect(detail.html).toContain(`Patient/${patientId}`);
    expect((await admin.get("/admin/audit/999999999999")).status).toBe(404);
    expect((await admin.get("/admin/audit/abc")).status).toBe(404);
  });

  it("verifies the whole chain on request (POST, then back to the page) and shows the result", async () => {
    const csrf = await admin.csrf("/admin/audit");
    const res = await admin.post("/admin/audit?index", { intent: "verify" }, { csrf });
    expect(res.status).toBe(303);
    expect(res.headers.get("Location")).toMatch(/^\/admin\/audit\?verification=1#chaine$/);
    const page = await admin.get("/admin/audit?verification=1");
    expect(page.html).toContain('data-ok="true"');
    expect(page.html).toMatch(/data-testid="chain-full">Chaîne intacte — \d+ événements vérifiés/);
    // A POST without its CSRF token is refused (and audited).
    expect((await admin.post("/admin/audit?index", { intent: "verify" }, { csrf: null })).status).toBe(403);
  });

  it("shows admins patients by name (as in their directory) but never medical content, nor a patient as a named actor", async () => {
    const pages = [
      await admin.get(`/admin/audit?patient=${patientId}`),
      await admin.get(`/admin/audit?patient=${patientId}&limit=500`),
      ...(await Promise.all(reads.slice(0, 1).map((id) => admin.get(`/admin/audit/${id}`)))),
    ];
    const own = await api("GET", `/api/v1/audit?patient=${patientId}&action=accessLog.read`, { token: adminToken });
    pages.push(await admin.get(`/admin/audit/${own.body.events[0].id}`));
    for (const p of pages) {
      expect(p.status).toBe(200);
      // The patient's name is shown where the trail names the patient (admins read the patient directory too);
      // no image, no AI reading (the page's intro names them, the data never does).
      expect(p.html).not.toMatch(/<img|\/fichier|probabilit/i);
    }
    expect(pages.at(-1)!.html).toContain("Patient (nom masqué)");
    const csv = await admin.get(`/admin/audit/export?format=csv&patient=${patientId}`);
    const ndjson = await admin.get(`/admin/audit/export?format=ndjson&patient=${patientId}`);
    expect(csv.html).not.toContain(MARKER);
    expect(ndjson.html).not.toContain(MARKER);
    expect(JSON.stringify(own.body)).not.toContain(MARKER);
  });

  it("is refused to other roles", async () => {
    const doctor = await BrowserSession.login("doctor@demo.nexus");
    expect((await doctor.get("/admin/audit")).status).toBe(403);
    expect((await doctor.get(`/admin/audit/${reads[0]}`)).status).toBe(403);
    expect((await doctor.get("/admin/audit/export?format=csv")).status).toBe(403);
    const api403 = await api("GET", "/api/v1/audit/export?format=csv", { token: doctorToken });
    expect(api403.status).toBe(403);
    expect(api403.body.error.code).toBe("forbidden");
  });
});

/** The FHIR R4 AuditEvent elements that are required, and the IHE BALP pieces this export promises. */
function checkAuditEvent(e: any, patient: string) {
  expect(e.resourceType).toBe("AuditEvent");
  expect(e.type).toMatchObject({ system: expect.any(String), code: expect.any(String) });
  expect(Number.isNaN(Date.parse(e.recorded))).toBe(false);
  expect(e.agent.length).toBeGreaterThan(0);
  for (const a of e.agent) {
    expect(a.who).toBeTruthy();
    expect(typeof a.requestor).toBe("boolean");
  }
  expect(e.source.observer.display).toBeTruthy();
  expect(["0", "4", "8", "12"]).toContain(e.outcome);
  expect(e.entity.find((x: any) => x.role?.code === "1" && x.type?.code === "1").what.reference).toBe(`Patient/${patient}`);
  expect(e.purposeOfEvent[0].coding[0]).toMatchObject({ system: "http://terminology.hl7.org/CodeSystem/v3-ActReason", code: expect.stringMatching(/^(TREAT|HRESCH|PATRQT|HOPERAT)$/) });
  const requestor = e.agent.find((a: any) => a.requestor && a.type.coding[0].code === "IRCP");
  if (requestor) expect(requestor.purposeOfUse[0].coding[0].code).toBe(e.purposeOfEvent[0].coding[0].code);
}

describe("audit exports", () => {
  it("CSV of the filtered set, from the page: every column, one line per event, a download", async () => {
    const res = await admin.get(`/admin/audit/export?format=csv&actor=${doctorId}&patient=${patientId}&action=consent.read&lang=en`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("Content-Disposition")).toMatch(/^attachment; filename="audit-.*\.csv"$/);
    const lines = res.html.replace(/^\uFEFF/, "").trimEnd().split("\r\n");
    expect(lines[0]).toBe("id,at,actor_id,actor_role,actor_name,action,resource_type,resource_id,patient_id,outcome,reason,purpose,request_id,ip,user_agent,prev_hash,hash");
    expect(lines.slice(1).map((l) => Number(l.split(",")[0]))).toEqual(reads);
    for (const line of lines.slice(1)) {
      const f = line.split(",");
      expect(f[2]).toBe(doctorId);
      expect(f[5]).toBe("consent.read");
      expect(f[8]).toBe(patientId);
      expect(f[11]).toBe("TREAT");
      expect(f[16]).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it("FHIR AuditEvent NDJSON, from the page and the API, without the export's own event", async () => {
    const all = await api("GET", `/api/v1/audit?patient=${patientId}&limit=500`, { token: adminToken });
    const expected = all.body.events.map((e: { id: number }) => String(e.id));
    const page = await admin.get(`/admin/audit/export?format=ndjson&patient=${patientId}`);
    expect(page.status).toBe(200);
    expect(page.headers.get("Content-Type")).toBe("application/fhir+ndjson");
    const events = page.html.trimEnd().split("\n").map((l) => JSON.parse(l));
    // The list call above and this export each add an audit.read about this patient after the snapshot: the export
    // holds what existed when it started — everything the list saw plus the list call's own event.
    expect(events.map((e) => e.id).slice(1)).toEqual(expected);
    for (const e of events) checkAuditEvent(e, patientId);
    const outcomes = new Set(events.map((e) => e.outcome));
    expect(outcomes.has("0") && outcomes.has("4")).toBe(true);

    const viaApi = await fetch(`${baseUrl()}/api/v1/audit/export?format=ndjson&patient=${patientId}&outcome=denied`, {
      headers: { Authorization: `Bearer ${adminToken}` },
    });
    expect(viaApi.status).toBe(200);
    const denied = (await viaApi.text()).trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(denied.length).toBeGreaterThanOrEqual(1);
    for (const e of denied) {
      checkAuditEvent(e, patientId);
      expect(e.outcome).toBe("4");
      expect(e.outcomeDesc).toBeTruthy();
    }
  });

  it("API export: CSV by default filters, 400 JSON for a bad format or filter", async () => {
    const csv = await fetch(`${baseUrl()}/api/v1/audit/export?format=csv&requestId=none`, { headers: { Authorization: `Bearer ${adminToken}` } });
    expect(csv.status).toBe(200);
    expect((await csv.text()).replace(/^\uFEFF/, "").trimEnd().split("\r\n")).toHaveLength(1);
    const badFormat = await api("GET", "/api/v1/audit/export?format=xml", { token: adminToken });
    expect(badFormat.status).toBe(400);
    expect(badFormat.body.error).toMatchObject({ code: "invalid" });
    expect(badFormat.body.error.message).toMatch(/format/);
    const badFilter = await api("GET", "/api/v1/audit/export?format=csv&from=yesterday", { token: adminToken });
    expect(badFilter.status).toBe(400);
    expect(badFilter.body.error.message).toMatch(/^from: date ISO 8601 attendue/);
  });
});
