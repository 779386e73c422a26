/**
 * The double-reading workflow through the HTTP API (API.md "v1 additions"), on exams uploaded as DICOM through the
 * real upload path: every transition and refusal, blind second reading, readings shown only once final or to their
 * author, worklists, letters (read back with pdftotext), 403 for another care team and for withdrawn care consent,
 * and one audit event per call.
 */
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { createAccount } from "./helpers/fixtures";
import { uploadExam } from "./helpers/exams";
import { api, baseUrl, tokenFor } from "./helpers/http";

let doctor = "";
let doctor2 = "";
let outsider = "";
let patient = "";
let admin = "";
let patientId = "";
const hasPdftotext = !spawnSync("pdftotext", ["-v"]).error;

const normal = { breasts: { R: { acr: 1, density: "B" }, L: { acr: 2, density: "B" } } };
const acr4Right = {
  breasts: { R: { acr: 4, density: "B" }, L: { acr: 1, density: "B" } },
  findings: [{ laterality: "R", type: "mass", quadrant: "UOQ", clock: 10, sizeMm: 14 }],
  conclusion: "Masse suspecte QSE droit.",
};

const read = (token: string, examId: string, body: unknown) => api("POST", `/api/v1/exams/${examId}/readings`, { token, json: body });

async function pdfText(token: string, path: string): Promise<{ status: number; text: string; type: string | null }> {
  const res = await fetch(`${baseUrl()}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200 || !hasPdftotext) return { status: res.status, text: bytes.toString("utf8"), type: res.headers.get("Content-Type") };
  const out = spawnSync("pdftotext", ["-enc", "UTF-8", "-", "-"], { input: bytes });
  return { status: res.status, text: out.stdout.toString().replace(/\s+/g, " "), type: res.headers.get("Content-Type") };
}

async function lastEvent(requestId: string | null) {
  const res = await api("GET", `/api/v1/audit?requestId=${requestId}`, { token: admin });
  return res.body.events as { action: string; outcome: string; purpose?: string }[];
}

beforeAll(async () => {
  doctor = await tokenFor("doctor@demo.nexus");
  doctor2 = await tokenFor("doctor2@demo.nexus");
  patient = await tokenFor("patient@demo.nexus");
  admin = await tokenFor("admin@demo.nexus");
  const other = await createAccount("doctor");
  outsider = await tokenFor(other.email, other.password);
  patientId = (await api("GET", "/api/v1/me", { token: patient })).body.patientId;
});

describe("reading workflow over the API", () => {
  it("L1 normal → L2 by another doctor normal → final_normal; the first reader cannot second-read (409 same_reader)", async () => {
    const examId = await uploadExam(doctor, patientId);
    expect((await api("GET", "/api/v1/worklists/first-reading", { token: doctor2 })).body.exams.map((e: { id: string }) => e.id)).toContain(examId);

    const l1 = await read(doctor, examId, normal);
    expect(l1.status).toBe(201);
    expect(l1.body).toMatchObject({ kind: "first", examStatus: "awaiting_second_reading" });
    const events = await lastEvent(l1.headers.get("X-Request-Id"));
    expect(events).toEqual([expect.objectContaining({ action: "reading.create", outcome: "allowed", purpose: "TREAT" })]);

    // The first reader: not in her second-reading list, and refused.
    expect((await api("GET", "/api/v1/worklists/second-reading", { token: doctor })).body.exams.map((e: { id: string }) => e.id)).not.toContain(examId);
    const same = await read(doctor, examId, normal);
    expect(same.status).toBe(409);
    expect(same.body.error.code).toBe("same_reader");

    // The exam AI has read the views; under AI_DISPLAY=after_reading (the default) the first reader, who has read,
    // sees it.
    const ai = await api("POST", `/api/v1/exams/${examId}/ai`, { token: doctor });
    expect(ai.status).toBe(201);
    expect((await api("GET", `/api/v1/exams/${examId}`, { token: doctor })).body.ai).toBeDefined();
    // The second reader reads blind: the exam is in her list, and the exam shows her no reading and no AI.
    const list = (await api("GET", "/api/v1/worklists/second-reading", { token: doctor2 })).body.exams;
    const entry = list.find((e: { id: string }) => e.id === examId);
    expect(entry).toMatchObject({ id: examId, patientId, complete: true });
    expect(entry).not.toHaveProperty("readings");
    const blind = await api("GET", `/api/v1/exams/${examId}`, { token: doctor2 });
    expect(blind.status).toBe(200);
    expect(blind.body.readings).toEqual([]);
    expect(blind.body).not.toHaveProperty("ai");
    expect(blind.body.aiHidden).toBe("after_reading");
    // …while the first reader sees her own reading.
    expect((await api("GET", `/api/v1/exams/${examId}`, { token: doctor })).body.readings).toHaveLength(1);

    const l2 = await read(doctor2, examId, { breasts: { R: { acr: 1, density: "B" }, L: { acr: 1, density: "B" } } });
    expect(l2.body).toMatchObject({ kind: "second", examStatus: "final_normal" });
    const final = await api("GET", `/api/v1/exams/${examId}`, { token: doctor });
    expect(final.body.status).toBe("final_normal");
    expect(final.body.readings.map((r: { kind: string }) => r.kind)).toEqual(["first", "second"]);
    expect((await api("GET", `/api/v1/exams/${examId}`, { token: doctor2 })).body.ai).toBeDefined();

    const late = await read(doctor2, examId, normal);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("wrong_state");
  });

  it("L1 ACR 4 → immediate_workup, concluded by the same reader; L2 ACR 4 on the right → recall; the letters", async () => {
    const examId = await uploadExam(doctor, patientId);
    expect((await read(doctor, examId, acr4Right)).body).toMatchObject({ kind: "first", examStatus: "immediate_workup" });
    const notHers = await read(doctor2, examId, normal);
    expect(notHers.status).toBe(409);
    expect(notHers.body.error.code).toBe("not_first_reader");
    // Before the result is final, no letter for anyone.
    const early = await api("GET", `/api/v1/exams/${examId}/letter`, { token: patient });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe("not_final");

    expect((await read(doctor, examId, normal)).body).toMatchObject({ kind: "workup", examStatus: "awaiting_second_reading" });
    expect((await read(doctor2, examId, acr4Right)).body).toMatchObject({ kind: "second", examStatus: "recall" });

    const mine = await pdfText(patient, `/api/v1/exams/${examId}/letter`);
    expect(mine.status).toBe(200);
    expect(mine.type).toBe("application/pdf");
    if (hasPdftotext) {
      expect(mine.text).toContain("examens complémentaires sont nécessaires");
      expect(mine.text).toContain("Camille Dupont");
      expect(mine.text).not.toMatch(/ACR|score|%|Positive|IA\b/);
    }
    // The patient never gets the referrer's report (it names the AI model and the readers' detail).
    expect((await api("GET", `/api/v1/exams/${examId}/letter?for=referrer`, { token: patient })).status).toBe(403);
    const report = await pdfText(doctor, `/api/v1/exams/${examId}/letter?for=referrer`);
    expect(report.status).toBe(200);
    if (hasPdftotext) {
      expect(report.text).toContain("Sein droit : ACR 4, densité B");
      expect(report.text).toContain("Dr Claire Martin");
      expect(report.text).toContain("Dr Paul Bernard");
      expect(report.text).toContain("masse, sein droit, quadrant supéro-externe, 10 h, 14 mm");
    }
  });

  it("inadequate images → technical_recall; the letter asks for new images", async () => {
    const examId = await uploadExam(doctor, patientId);
    expect((await read(doctor, examId, { technicallyInadequate: true })).body).toMatchObject({ examStatus: "technical_recall" });
    const letter = await pdfText(patient, `/api/v1/exams/${examId}/letter`);
    expect(letter.status).toBe(200);
    if (hasPdftotext) expect(letter.text).toContain("De nouvelles images sont nécessaires");
  });

  it("bad input: 400 naming each field, nothing recorded", async () => {
    const examId = await uploadExam(doctor, patientId);
    const bad = await read(doctor, examId, { breasts: { R: { acr: 7, density: "E" }, L: { acr: 1, density: "B" } }, findings: [{ type: "mass" }] });
    expect(bad.status).toBe(400);
    expect(Object.keys(bad.body.error.fields).sort()).toEqual(["breasts.R.acr", "breasts.R.density", "findings.0.laterality"]);
    expect(bad.body.error.message).toMatch(/Côté du sein obligatoire/);
    const notJson = await fetch(`${baseUrl()}/api/v1/exams/${examId}/readings`, { method: "POST", headers: { Authorization: `Bearer ${doctor}`, "Content-Type": "text/plain" }, body: "ACR 1" });
    expect(notJson.status).toBe(415);
    expect((await api("GET", `/api/v1/exams/${examId}`, { token: doctor })).body).toMatchObject({ status: "awaiting_first_reading", readings: [] });
  });

  it("another care team, a patient, an admin: 403; an unknown exam: 403 too; a non-id: 404", async () => {
    const examId = await uploadExam(doctor, patientId);
    for (const token of [outsider, patient, admin]) expect((await read(token, examId, normal)).status).toBe(403);
    expect((await read(doctor, "00000000-0000-4000-8000-000000000000", normal)).status).toBe(403);
    expect((await read(doctor, "pas-un-id", normal)).status).toBe(404);
    expect((await api("GET", "/api/v1/worklists/first-reading", { token: outsider })).body.exams.map((e: { id: string }) => e.id)).not.toContain(examId);
    for (const token of [patient, admin]) expect((await api("GET", "/api/v1/worklists/second-reading", { token })).status).toBe(403);
    expect((await api("GET", "/api/v1/worklists/first-reading", {})).status).toBe(401);
  });

  it("care consent withdrawn mid-workflow: the reading is refused (403) and nothing is read", async () => {
    const examId = await uploadExam(doctor, patientId);
    await read(doctor, examId, normal);
    const withdraw = await api("PUT", `/api/v1/patients/${patientId}/consents/care`, { token: patient, json: { granted: false } });
    expect(withdraw.status).toBe(200);
    try {
      const refused = await read(doctor2, examId, normal);
      expect(refused.status).toBe(403);
      expect((await lastEvent(refused.headers.get("X-Request-Id")))[0]).toMatchObject({ action: "reading.create", outcome: "denied" });
      expect((await api("GET", "/api/v1/worklists/second-reading", { token: doctor2 })).body.exams.map((e: { id: string }) => e.id)).not.toContain(examId);
    } finally {
      await api("PUT", `/api/v1/patients/${patientId}/consents/care`, { token: patient, json: { granted: true } });
    }
    expect((await read(doctor2, examId, normal)).body).toMatchObject({ examStatus: "final_normal" });
  });
});
