/**
 * Results out, end to end (issue 17.4): a Nexus of its own with PACS_PUSH pointing at a real Orthanc. An exam becomes
 * final while the PACS is still down: the first attempts are refused, audited with their outcome, and retried with
 * back-off; once Orthanc is up, it holds the reading SR and the CAD SR, and every attempt is in the audit trail. A
 * restart in between keeps the queue (it is a table).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { newStudyUid } from "./helpers/exams";
import { api } from "./helpers/http";
import { finalExam, token, uploadFourViews, waitFor, type OutboxEntry as Entry } from "./helpers/push";
import { startOwnServer, type OwnServer } from "./helpers/own-server";
import { startServer, type RunningServer } from "./helpers/server";
import { DICOMWEB_PLUGIN, missing, ORTHANC, startOrthanc, type Orthanc } from "./helpers/peers";

const ORTHANC_HTTP = 27310;
const ORTHANC_DICOM = 27311;

const absent = missing(ORTHANC, DICOMWEB_PLUGIN);
let server: OwnServer | null = null;
let second: RunningServer | null = null;
let orthanc: Orthanc | null = null;

afterAll(async () => {
  await orthanc?.stop();
  await second?.stop();
  await server?.stop();
});

const env = {
  PACS_PUSH: `ORTHANC@127.0.0.1:${ORTHANC_DICOM}`,
  DICOM_AE_TITLE: "NEXUS_TEST",
  PACS_PUSH_BACKOFF_MS: "1500",
  PACS_PUSH_POLL_MS: "200",
  PACS_PUSH_ATTEMPTS: "12",
};

describe("pushing final results to the PACS", () => {
  let base = "";
  let doctor = "";
  let doctor2 = "";
  let admin = "";
  let examId = "";
  const study = newStudyUid();

  beforeAll(async () => {
    if (absent) return;
    server = await startOwnServer(env);
    base = server.url;
    doctor = await token(base, "doctor@demo.nexus");
    doctor2 = await token(base, "doctor2@demo.nexus");
    admin = await token(base, "admin@demo.nexus");
  }, 120_000);

  const outbox = async () => (await api<{ entries: Entry[] }>("GET", "/api/v1/outbox", { base, token: admin })).body.entries.filter((e) => e.examId === examId);

  it("a refused first attempt is retried with back-off; Orthanc then holds both SRs; every attempt is audited", { timeout: 240_000 }, async (ctx) => {
    if (absent) {
      console.log(`skipped: ${absent} (Orthanc) is not installed`);
      return ctx.skip();
    }
    expect(server!.output()).toContain(`Results pushed to the PACS (C-STORE): ORTHANC@127.0.0.1:${ORTHANC_DICOM} (calling NEXUS_TEST)`);
    const patient = await token(base, "patient@demo.nexus");
    const patientId = (await api("GET", "/api/v1/me", { base, token: patient })).body.patientId as string;
    examId = await uploadFourViews(base, doctor, patientId, study);
    expect((await api("POST", `/api/v1/exams/${examId}/ai`, { base, token: doctor })).status).toBe(201);
    const reading = { breasts: { R: { acr: 1, density: "B" }, L: { acr: 1, density: "B" } } };
    expect((await api("POST", `/api/v1/exams/${examId}/readings`, { base, token: doctor, json: reading })).status).toBe(201);
    // Not final yet: nothing queued.
    expect(await outbox()).toEqual([]);
    expect((await api("POST", `/api/v1/exams/${examId}/readings`, { base, token: doctor2, json: reading })).body.examStatus).toBe("final_normal");

    // The PACS is down: the first attempts are refused and recorded, the rows stay pending.
    const refused = await waitFor("a refused attempt of each report", async () => {
      const rows = await outbox();
      return rows.length === 2 && rows.every((r) => r.attempts >= 1 && r.lastError) ? rows : null;
    });
    expect(refused.map((r) => r.kind).sort()).toEqual(["cad_sr", "reading_sr"]);
    expect(refused.every((r) => r.status === "pending" && /network|refused|ECONNREFUSED/i.test(r.lastError!))).toBe(true);

    // A restart keeps the queue (it is a table): this process stops, another starts on the same database.
    const first = server!;
    await new Promise((r) => {
      first.child.once("exit", r);
      first.child.kill("SIGTERM");
    });
    const again: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      NEXUS_DEMO: "1",
      NEXUS_ACCESS_LOG: "0",
      DATA_DIR: first.dataDir,
      NEXUS_MASTER_KEYS: inject("masterKeys"),
      NODE_ENV: "production",
      ...env,
    };
    if (first.adminUrl && first.databaseName) {
      const url = new URL(first.adminUrl);
      url.pathname = `/${first.databaseName}`;
      again.DATABASE_URL = url.toString();
    } else delete again.DATABASE_URL;
    second = await startServer(again);
    base = second.url;
    expect((await outbox()).map((r) => r.status)).toEqual(["pending", "pending"]);

    // The PACS comes up: the next attempt of each report goes through.
    orthanc = await startOrthanc({ httpPort: ORTHANC_HTTP, dicomPort: ORTHANC_DICOM });
    const sent = await waitFor("both reports sent", async () => {
      const rows = await outbox();
      return rows.length === 2 && rows.every((r) => r.status === "sent") ? rows : null;
    });
    const found = await orthanc.rest("POST", "/tools/find", { Level: "Instance", Query: { StudyInstanceUID: study, Modality: "SR" }, Expand: true });
    const held = (found.body as { MainDicomTags: { SOPInstanceUID: string } }[]).map((i) => i.MainDicomTags.SOPInstanceUID).sort();
    expect(held).toEqual(sent.map((r) => r.sopInstanceUid).sort());
    const classes = await Promise.all(
      (found.body as { ID: string }[]).map(async (i) => (await orthanc!.rest("GET", `/instances/${i.ID}/metadata/SopClassUid`)).body),
    );
    expect(classes.sort()).toEqual(["1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.50"]);
    // A report that went through is not sent again on request.
    const resend = await api("POST", `/api/v1/outbox/${sent[0]!.id}/retry`, { base, token: admin });
    expect(resend.status).toBe(409);
    expect(resend.body.error).toMatchObject({ code: "wrong_state", message: expect.stringMatching(/abandonné/) });

    // Every attempt is one audit event with its outcome: refusals (error), then one success per report.
    const trail = await api("GET", `/api/v1/audit?action=result.push&limit=200`, { base, token: admin });
    const events = (trail.body.events as { resourceId: string; outcome: string; reason: string; purpose: string }[]).filter((e) => e.resourceId === examId);
    for (const row of sent) {
      const mine = events.filter((e) => e.reason.startsWith(`${row.kind} `));
      expect(mine, JSON.stringify(events)).toHaveLength(row.attempts);
      expect(row.attempts).toBeGreaterThanOrEqual(2);
      expect(mine.filter((e) => e.outcome === "allowed")).toHaveLength(1);
      expect(mine.filter((e) => e.outcome === "error")).toHaveLength(row.attempts - 1);
      expect(mine.some((e) => e.reason.includes("tentative 1/12") && /nouvel essai dans/.test(e.reason))).toBe(true);
      expect(mine.every((e) => e.purpose === "TREAT")).toBe(true);
    }
  });
});

describe("giving up", () => {
  let own: OwnServer | null = null;
  afterAll(async () => {
    await own?.stop();
  });

  it("after PACS_PUSH_ATTEMPTS refused attempts the report is `failed`, each attempt audited; no CAD SR without AI", { timeout: 180_000 }, async () => {
    // Nothing listens on this port of the test's range: every association is refused.
    own = await startOwnServer({ PACS_PUSH: "DEAD@127.0.0.1:27320", PACS_PUSH_ATTEMPTS: "2", PACS_PUSH_BACKOFF_MS: "100", PACS_PUSH_POLL_MS: "100" });
    const at = own.url;
    const [doctorA, adminA, patientA] = await Promise.all(["doctor@demo.nexus", "admin@demo.nexus", "patient@demo.nexus"].map((e) => token(at, e)));
    const { examId: exam } = await finalExam(at, doctorA!, patientA!);
    const failed = await waitFor("the report to fail", async () => {
      const res = await api<{ entries: Entry[] }>("GET", "/api/v1/outbox?status=failed", { base: at, token: adminA });
      return res.body.entries.find((e) => e.examId === exam);
    });
    expect(failed).toMatchObject({ kind: "reading_sr", status: "failed", attempts: 2 });
    const all = (await api<{ entries: Entry[] }>("GET", "/api/v1/outbox", { base: at, token: adminA })).body.entries.filter((e) => e.examId === exam);
    expect(all.map((e) => e.kind)).toEqual(["reading_sr"]);
    const trail = await api("GET", `/api/v1/audit?action=result.push&limit=50`, { base: at, token: adminA });
    const events = (trail.body.events as { resourceId: string; outcome: string; reason: string }[]).filter((e) => e.resourceId === exam);
    expect(events.map((e) => e.outcome)).toEqual(["error", "error"]);
    // Newest first: the second attempt gave up, the first announced the next one.
    expect(events[0]!.reason).toMatch(/tentative 2\/2 : network: .*, abandon$/);
    expect(events[1]!.reason).toMatch(/tentative 1\/2 : .*nouvel essai dans 0 s$/);

    // An admin sends it again once the PACS is fixed (here it is not: it fails again after two fresh attempts).
    const entryId = failed.id;
    expect((await api("POST", `/api/v1/outbox/${entryId}/retry`, { base: at, token: doctorA })).status).toBe(403);
    expect((await api("POST", `/api/v1/outbox/00000000-0000-4000-8000-000000000000/retry`, { base: at, token: adminA })).status).toBe(404);
    const retried = await api("POST", `/api/v1/outbox/${entryId}/retry`, { base: at, token: adminA });
    expect(retried.status).toBe(200);
    expect(retried.body).toEqual({ id: entryId, status: "pending" });
    await waitFor("the retried report to fail again", async () => {
      const rows = (await api<{ entries: Entry[] }>("GET", "/api/v1/outbox", { base: at, token: adminA })).body.entries;
      const row = rows.find((e) => e.id === entryId);
      return row?.status === "failed" && row.attempts === 2 ? row : null;
    });
    const after = await api("GET", `/api/v1/audit?action=result.push&limit=50`, { base: at, token: adminA });
    expect((after.body.events as { resourceId: string }[]).filter((e) => e.resourceId === exam).length).toBeGreaterThanOrEqual(4);
  });
});
