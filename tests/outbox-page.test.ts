/**
 * The PACS push page for admins (/admin/envois), as a browser without JavaScript, on a Nexus of its own whose
 * PACS_PUSH names a port where nothing listens (every report fails after one attempt): the list with its filters,
 * identifiers only (no patient name, no AI score), 403 for every other role, a re-send through the form (CSRF,
 * audited, the report queued again). Then the cancelled path, with a real Orthanc: a patient erased before her
 * queued report is sent → the entry ends `cancelled` and the PACS receives nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, BrowserSession, DEMO_PASSWORD } from "./helpers/http";
import { startOwnServer, type OwnServer } from "./helpers/own-server";
import { DICOMWEB_PLUGIN, missing, ORTHANC, startOrthanc, type Orthanc } from "./helpers/peers";
import { finalExam, token, waitFor, type OutboxEntry } from "./helpers/push";

// This file's ports (27500–27549): nothing listens on DEAD_PORT; Orthanc takes the other two in the second part.
const DEAD_PORT = 27500;
const ORTHANC_HTTP = 27501;
const ORTHANC_DICOM = 27502;

interface AuditEvent {
  action: string;
  outcome: string;
  reason: string | null;
  resourceId: string | null;
}

const events = async (base: string, admin: string, action: string) =>
  (await api<{ events: AuditEvent[] }>("GET", `/api/v1/audit?action=${action}&limit=100`, { base, token: admin })).body.events;

describe("the outbox page (/admin/envois)", () => {
  let server: OwnServer | null = null;
  let base = "";
  let adminToken = "";
  let examId = "";
  let failed: OutboxEntry[] = [];
  let probability = 0;

  beforeAll(async () => {
    server = await startOwnServer({
      PACS_PUSH: `DEADPACS@127.0.0.1:${DEAD_PORT}`,
      DICOM_AE_TITLE: "NEXUS_OUTBOX",
      PACS_PUSH_ATTEMPTS: "1",
      PACS_PUSH_BACKOFF_MS: "100",
      PACS_PUSH_POLL_MS: "100",
    });
    base = server.url;
    const [doctor, patient] = await Promise.all([token(base, "doctor@demo.nexus"), token(base, "patient@demo.nexus")]);
    adminToken = await token(base, "admin@demo.nexus");
    const exam = await finalExam(base, doctor, patient, { ai: true });
    examId = exam.examId;
    probability = exam.ai!.exam.probability;
    failed = await waitFor("both reports to fail", async () => {
      const res = await api<{ entries: OutboxEntry[] }>("GET", "/api/v1/outbox?status=failed", { base, token: adminToken });
      const mine = res.body.entries.filter((e) => e.examId === examId);
      return mine.length === 2 ? mine : null;
    });
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("shows an admin the configured PACS and every entry: kind, exam id, destination, attempts, outcome; filters by status", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus", DEMO_PASSWORD, {}, base);
    const nav = await admin.get("/admin/machines");
    expect(nav.html).toContain('href="/admin/envois"');
    const page = await admin.get("/admin/envois");
    expect(page.status).toBe(200);
    expect(page.html).toContain("Envois des résultats au PACS");
    expect(page.html).toContain(`DEADPACS@127.0.0.1:${DEAD_PORT}`);
    expect(page.html).toContain("NEXUS_OUTBOX");
    expect(page.html).not.toContain('data-testid="pacs-push-unset"');
    for (const entry of failed) expect(page.html).toContain(`data-entry="${entry.id}"`);
    expect(page.html).toContain(examId);
    expect(page.html).toContain("SR de lecture");
    expect(page.html).toContain("CAD SR (IA)");
    expect(page.html).toContain("abandonné");
    // The last attempt's outcome (a refused association), and the re-send button of each failed entry.
    expect(page.html).toMatch(/network|ECONNREFUSED|refused/i);
    expect(page.html.match(/name="intent" value="retry"/g)).toHaveLength(2);

    const onlyFailed = await admin.get("/admin/envois?etat=failed");
    expect(onlyFailed.status).toBe(200);
    expect(onlyFailed.html).toContain(`data-entry="${failed[0]!.id}"`);
    expect(onlyFailed.html).toMatch(/aria-current="page"[^>]*>abandonné</);
    const onlySent = await admin.get("/admin/envois?etat=sent");
    expect(onlySent.status).toBe(200);
    expect(onlySent.html).not.toContain("data-entry=");
    expect(onlySent.html).toContain("Aucun envoi dans cet état.");
    const bogus = await admin.get("/admin/envois?etat=perdu");
    expect(bogus.status).toBe(400);
    expect(bogus.html).toContain("État inconnu");
    expect(bogus.html).not.toContain("data-entry=");

    // English.
    admin.cookies.set("nexus_lang", "en");
    const english = await admin.get("/admin/envois?etat=failed");
    expect(english.html).toContain("Results sent to the PACS");
    expect(english.html).toContain("Send again");
    expect(english.html).toContain("Reading SR");
  });

  it("shows identifiers only: no patient name, IPP, INS or AI score", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus", DEMO_PASSWORD, {}, base);
    for (const lang of ["fr", "en"]) {
      admin.cookies.set("nexus_lang", lang);
      const { html } = await admin.get("/admin/envois");
      expect(html).toContain(examId);
      for (const forbidden of [/dupont/i, /camille/i, /NEX-000001/, /268057505612395/, /probabilit/i, /score/i]) expect(html).not.toMatch(forbidden);
      // The exam AI's probability in any of its usual spellings (UIDs, addresses and timestamps set aside first).
      const text = html.replace(/\d{4}-\d{2}-\d{2}T[\d:.]+Z/g, " ").replace(/\d+(?:\.\d+){2,}/g, " ");
      const percent = Math.round(probability * 100);
      const spellings = [String(probability), probability.toFixed(3), `${percent} %`, `${percent}\u00a0%`, `${percent}\u202f%`];
      for (const s of spellings) expect(text, s).not.toContain(s);
    }
  });

  it("answers 403 to a doctor, a patient and a researcher (page and re-send)", async () => {
    for (const email of ["doctor@demo.nexus", "patient@demo.nexus", "researcher@demo.nexus"]) {
      const session = await BrowserSession.login(email, DEMO_PASSWORD, {}, base);
      const page = await session.get("/admin/envois");
      expect(page.status, email).toBe(403);
      expect(page.html).not.toContain(examId);
      const post = await session.post("/admin/envois", { intent: "retry", entryId: failed[0]!.id });
      expect(post.status, email).toBe(403);
    }
    const still = (await api<{ entries: OutboxEntry[] }>("GET", "/api/v1/outbox?status=failed", { base, token: adminToken })).body.entries;
    expect(still.map((e) => e.id)).toContain(failed[0]!.id);
    const denied = (await events(base, adminToken, "outbox.retry")).filter((e) => e.resourceId === failed[0]!.id && e.outcome === "denied");
    expect(denied.length).toBeGreaterThanOrEqual(3);
  });

  it("re-sends a failed entry through the form: CSRF required, audited, queued again and attempted again", { timeout: 60_000 }, async () => {
    const admin = await BrowserSession.login("admin@demo.nexus", DEMO_PASSWORD, {}, base);
    const entry = failed.find((e) => e.kind === "reading_sr")!;

    // Without the CSRF token: 403, audited as a denial, the entry untouched.
    const forged = await admin.post("/admin/envois", { intent: "retry", entryId: entry.id }, { csrf: null });
    expect(forged.status).toBe(403);
    const afterForged = (await api<{ entries: OutboxEntry[] }>("GET", "/api/v1/outbox?status=failed", { base, token: adminToken })).body.entries;
    expect(afterForged.find((e) => e.id === entry.id)).toMatchObject({ status: "failed", attempts: 1 });
    expect((await events(base, adminToken, "outbox.retry")).some((e) => e.outcome === "denied" && e.reason === "csrf")).toBe(true);
    // An unknown intent or entry id that is not one: 400, nothing done.
    expect((await admin.post("/admin/envois", { intent: "retry", entryId: "pas-un-id" })).status).toBe(400);

    const pushesBefore = (await events(base, adminToken, "result.push")).filter((e) => e.resourceId === examId && e.reason?.startsWith("reading_sr ")).length;
    const res = await admin.post("/admin/envois?etat=failed", { intent: "retry", entryId: entry.id });
    expect(res.status).toBe(200);
    expect(res.html).toContain("L&#x27;envoi est de nouveau en file");
    const retried = (await events(base, adminToken, "outbox.retry")).filter((e) => e.resourceId === entry.id && e.outcome === "allowed");
    expect(retried).toHaveLength(1);
    // The worker takes it again (a fresh count of attempts): one more audited attempt, which fails again here.
    await waitFor("another attempt of the re-sent report", async () => {
      const pushes = (await events(base, adminToken, "result.push")).filter((e) => e.resourceId === examId && e.reason?.startsWith("reading_sr "));
      return pushes.length > pushesBefore;
    });
    const again = await waitFor("the re-sent report to fail again", async () => {
      const rows = (await api<{ entries: OutboxEntry[] }>("GET", "/api/v1/outbox", { base, token: adminToken })).body.entries;
      const row = rows.find((e) => e.id === entry.id);
      return row?.status === "failed" ? row : null;
    });
    expect(again.attempts).toBe(1);
    // The other entry was not touched.
    const other = failed.find((e) => e.kind === "cad_sr")!;
    const rows = (await api<{ entries: OutboxEntry[] }>("GET", "/api/v1/outbox", { base, token: adminToken })).body.entries;
    expect(rows.find((e) => e.id === other.id)).toMatchObject({ status: "failed", attempts: 1 });

    // An entry that does not exist: 404, said on the page.
    const unknown = await admin.post("/admin/envois", { intent: "retry", entryId: "00000000-0000-4000-8000-000000000000" });
    expect(unknown.status).toBe(404);
    expect(unknown.html).toContain("Envoi introuvable.");
  });
});

describe("a patient erased before her queued report is sent", () => {
  const absent = missing(ORTHANC, DICOMWEB_PLUGIN);
  let server: OwnServer | null = null;
  let orthanc: Orthanc | null = null;

  afterAll(async () => {
    await orthanc?.stop();
    await server?.stop();
  });

  it("ends `cancelled` (audited), and the PACS receives nothing", { timeout: 180_000 }, async (ctx) => {
    if (absent) {
      console.log(`skipped: ${absent} (Orthanc) is not installed`);
      return ctx.skip();
    }
    // The PACS is down at first, and the next attempt comes seconds later: time to erase the patient.
    server = await startOwnServer({
      PACS_PUSH: `ORTHANC@127.0.0.1:${ORTHANC_DICOM}`,
      DICOM_AE_TITLE: "NEXUS_OUTBOX",
      PACS_PUSH_ATTEMPTS: "5",
      PACS_PUSH_BACKOFF_MS: "5000",
      PACS_PUSH_POLL_MS: "200",
    });
    const base = server.url;
    const [doctor, patient, admin] = await Promise.all(["doctor@demo.nexus", "patient@demo.nexus", "admin@demo.nexus"].map((e) => token(base, e)));
    const { examId, patientId, study } = await finalExam(base, doctor!, patient!);
    const outbox = async () => (await api<{ entries: OutboxEntry[] }>("GET", "/api/v1/outbox", { base, token: admin })).body.entries.filter((e) => e.examId === examId);
    const queued = await waitFor("a refused first attempt", async () => {
      const rows = await outbox();
      return rows.length === 1 && rows[0]!.attempts >= 1 ? rows[0]! : null;
    });
    expect(queued).toMatchObject({ kind: "reading_sr", status: "pending" });

    // Erased (GDPR art. 17) while her report waits; then the PACS comes up.
    const erased = await api("DELETE", `/api/v1/patients/${patientId}`, { base, token: doctor });
    expect(erased.status).toBe(200);
    orthanc = await startOrthanc({ httpPort: ORTHANC_HTTP, dicomPort: ORTHANC_DICOM });

    const cancelled = await waitFor("the entry to be cancelled", async () => {
      const [row] = await outbox();
      return row?.status === "cancelled" ? row : null;
    }, 90_000);
    expect(cancelled.id).toBe(queued.id);
    expect(cancelled.attempts).toBe(queued.attempts);

    // Nothing reached the PACS: no instance of the study at all.
    const found = await orthanc.rest("POST", "/tools/find", { Level: "Instance", Query: { StudyInstanceUID: study } });
    expect(found.status).toBe(200);
    expect(found.body).toEqual([]);
    // The trail: refused attempts (error), then the cancellation (denied), never a success.
    const pushes = (await events(base, admin!, "result.push")).filter((e) => e.resourceId === examId);
    expect(pushes[0]).toMatchObject({ outcome: "denied", reason: expect.stringMatching(/envoi annulé/) });
    expect(pushes.slice(1).every((e) => e.outcome === "error")).toBe(true);
    expect(pushes.some((e) => e.outcome === "allowed")).toBe(false);

    // The page lists it as cancelled, with why.
    const session = await BrowserSession.login("admin@demo.nexus", DEMO_PASSWORD, {}, base);
    const page = await session.get("/admin/envois?etat=cancelled");
    expect(page.status).toBe(200);
    expect(page.html).toContain(`data-entry="${queued.id}"`);
    expect(page.html).toContain("plus rien à envoyer");
    expect(page.html).not.toContain('name="intent" value="retry"');
  });
});
