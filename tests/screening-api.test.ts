/**
 * Issue 12, the exam model against the running server (shared/API.md "v1 additions"): patient identity (IPP, INS,
 * birth date, sex; 400/409), search, four-view DICOM exams filed by StudyInstanceUID with laterality and view from
 * their headers, the identity check (409 `identity_mismatch` naming the fields, nothing stored, audited as denied;
 * missing fields accepted with a notice), JPEG/PNG placement, FOR PROCESSING, the exam AI (one prediction per
 * view, breast = max of its views, exam = max of breasts), and that the patient never sees a model output.
 * DICOM files are written by the project's writer with real tags, and one by DCMTK (img2dcm + dcmodify).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomInt, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { screeningAttributes, writeDicom, type ScreeningViewOptions } from "../app/imaging/dicom-writer";
import { createAccount, createPatient, uniqueEmail } from "./helpers/fixtures";
import { api, baseUrl, BrowserSession, tokenFor } from "./helpers/http";
import { jpeg } from "./helpers/images";

const SLOW = 120_000;

/** A valid INS for a 13-digit body (key = 97 − body mod 97), each call a new one. */
function newIns(): string {
  const body = `2${String(randomInt(40, 99))}${String(randomInt(1, 12)).padStart(2, "0")}75${String(randomInt(0, 999_999)).padStart(6, "0")}`;
  return body + String(97n - (BigInt(body) % 97n)).padStart(2, "0");
}
const newIpp = () => `IPP-${randomUUID().slice(0, 8)}`;
const uid = () => `2.25.${BigInt(`0x${randomUUID().replace(/-/g, "")}`)}`;

/** A 12-bit synthetic mammogram view with real screening tags (patient, study, laterality, view). */
function view(o: Omit<ScreeningViewOptions, "studyInstanceUid"> & { studyInstanceUid: string }, size = 64): Buffer {
  const pixels = new Uint16Array(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) pixels[y * size + x] = (x * 64 + y * 16 + randomInt(64)) & 0xfff;
  return Buffer.from(
    writeDicom({ rows: size, columns: size, pixels, bitsStored: 12, sopInstanceUid: uid(), attributes: screeningAttributes(o) }),
  );
}

async function upload(token: string, patientId: string, bytes: Buffer, fields: Record<string, string> = {}, name = "vue.dcm") {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append("file", new Blob([new Uint8Array(bytes)]), name);
  const res = await fetch(`${baseUrl()}/api/v1/patients/${patientId}/images`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, requestId: res.headers.get("X-Request-Id") };
}

let doctor = "";
let doctorSession: BrowserSession;
let otherDoctor = "";
let admin = "";
let patient: { id: string; token: string; email: string; password: string };
const identity = { displayName: "Hélène Le Goff", ipp: newIpp(), ins: newIns(), birthDate: "1961-03-09", sex: "F" as const };
const who = { id: identity.ipp, name: "LE GOFF^HELENE", birthDate: "19610309", sex: "F" };

beforeAll(async () => {
  const doc = await createAccount("doctor");
  doctor = await tokenFor(doc.email, doc.password);
  doctorSession = await BrowserSession.login(doc.email, doc.password);
  const other = await createAccount("doctor");
  otherDoctor = await tokenFor(other.email, other.password);
  admin = await tokenFor("admin@demo.nexus");
  const email = uniqueEmail("screening");
  const created = await createPatient(doctor, { ...identity, email, consents: { care: true, ai_analysis: true } } as never);
  patient = { id: created.id, email, password: created.account!.password, token: await tokenFor(email, created.account!.password) };
}, SLOW);

describe("patients with an identity", () => {
  it("stores IPP, INS, birth date and sex, and shows them to the care team and the patient", async () => {
    for (const token of [doctor, patient.token]) {
      const res = await api("GET", `/api/v1/patients/${patient.id}`, { token });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ id: patient.id, displayName: identity.displayName, ipp: identity.ipp, ins: identity.ins, birthDate: "1961-03-09", sex: "F", createdAt: expect.any(String) });
    }
    expect((await api("GET", `/api/v1/patients/${patient.id}`, { token: otherDoctor })).status).toBe(403);
  });

  it("answers 400 for a wrong INS key or an impossible date, 409 for an IPP or INS already used", async () => {
    const ins = newIns();
    const badKey = ins.slice(0, 13) + String((Number(ins.slice(13)) % 97) + 1).padStart(2, "0");
    const bad = await api("POST", "/api/v1/patients", { token: doctor, json: { displayName: "Clé Fausse", ins: badKey } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/clé de contrôle/);
    const date = await api("POST", "/api/v1/patients", { token: doctor, json: { displayName: "Date Fausse", birthDate: "1961-02-30" } });
    expect(date.status).toBe(400);
    expect((await api("POST", "/api/v1/patients", { token: doctor, json: { displayName: "Sexe Faux", sex: "X" } })).status).toBe(400);

    const ipp = await api("POST", "/api/v1/patients", { token: doctor, json: { displayName: "Même IPP", ipp: identity.ipp } });
    expect(ipp.status).toBe(409);
    expect(ipp.body.error.code).toBe("ipp_taken");
    // The same INS typed with spaces is the same INS.
    const spaced = identity.ins.replace(/^(.)(..)(..)(..)(...)(...)(..)$/, "$1 $2 $3 $4 $5 $6 $7");
    const insTaken = await api("POST", "/api/v1/patients", { token: doctor, json: { displayName: "Même INS", ins: spaced } });
    expect(insTaken.status).toBe(409);
    expect(insTaken.body.error.code).toBe("ins_taken");
  });

  it("finds a patient by name (any case, no accents), IPP, INS or birth date, within the care team only", async () => {
    const ids = async (q: string, token = doctor) => {
      const res = await api("GET", `/api/v1/patients?q=${encodeURIComponent(q)}`, { token });
      expect(res.status).toBe(200);
      return res.body.patients.map((p: { id: string }) => p.id);
    };
    expect(await ids("helene le goff")).toEqual([patient.id]);
    expect(await ids("LE GOFF")).toContain(patient.id);
    expect(await ids(identity.ipp.toLowerCase())).toEqual([patient.id]);
    expect(await ids(identity.ins)).toEqual([patient.id]);
    expect(await ids("09/03/1961")).toContain(patient.id);
    expect(await ids("1961-03-09")).toContain(patient.id);
    expect(await ids("Personne Inconnue")).toEqual([]);
    expect(await ids(identity.ipp, otherDoctor)).toEqual([]);
    // Admins search the directory (identity only).
    expect(await ids(identity.ipp, admin)).toEqual([patient.id]);
    expect((await api("GET", `/api/v1/patients?q=x`, { token: patient.token })).status).toBe(403);
  });
});

describe("views of one study arriving at once", () => {
  it("file into one exam: the exam is found or created in the image row's own statement", { timeout: SLOW }, async () => {
    const ipp = newIpp();
    const created = await createPatient(doctor, { displayName: "Anne Concurrente", ipp, birthDate: "1958-05-17", sex: "F", consents: { care: true } } as never);
    const header = { id: ipp, name: "CONCURRENTE^ANNE", birthDate: "19580517", sex: "F" };
    const study = uid();
    const views = (["R", "L"] as const).flatMap((laterality) => ["CC", "MLO"].map((v) => ({ laterality, v })));
    // Two rounds of the four views at once: the first creates the exam in a race, the second finds it in one.
    const examIds = new Set<string>();
    for (const round of [1, 2]) {
      const results = await Promise.all(
        views.map(({ laterality, v }) => upload(doctor, created.id, view({ patient: header, studyInstanceUid: study, studyDate: "20261201", laterality, view: v }))),
      );
      for (const res of results) expect(res.status, `round ${round}: ${JSON.stringify(res.body)}`).toBe(201);
      for (const res of results) examIds.add(res.body.examId);
      expect(examIds.size, `round ${round}`).toBe(1);
    }
    const exams = await api("GET", `/api/v1/patients/${created.id}/exams`, { token: doctor });
    expect(exams.status).toBe(200);
    expect(exams.body.exams).toHaveLength(1);
    expect(exams.body.exams[0]).toMatchObject({ id: [...examIds][0], date: "2026-12-01" });
  });
});

describe("four-view DICOM exams", () => {
  const study = uid();
  let examId = "";
  const imageIds: Record<string, string> = {};

  it("files each view into the exam of its StudyInstanceUID with laterality and view from the header", { timeout: SLOW }, async () => {
    const views: [ "R" | "L", string, Partial<ScreeningViewOptions>][] = [
      ["R", "CC", {}],
      ["L", "CC", { seriesLaterality: true }],
      ["R", "MLO", { viewAsCode: true }],
      ["L", "MLO", { viewAsCode: true, seriesLaterality: true }],
    ];
    for (const [laterality, v, extra] of views) {
      const res = await upload(doctor, patient.id, view({ patient: who, studyInstanceUid: study, studyDate: "20261130", accessionNumber: "ACC-42", laterality, view: v, ...extra }));
      expect(res.status, `${laterality}-${v}: ${JSON.stringify(res.body)}`).toBe(201);
      expect(res.body).toMatchObject({ laterality, view: v, examId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
      expect(res.body.identityNotice).toBeUndefined();
      examId ||= res.body.examId;
      expect(res.body.examId).toBe(examId);
      imageIds[`${laterality}-${v}`] = res.body.id;
    }
    const exam = await api("GET", `/api/v1/exams/${examId}`, { token: doctor });
    expect(exam.status).toBe(200);
    expect(exam.body).toMatchObject({ id: examId, patientId: patient.id, date: "2026-11-30", accessionNumber: "ACC-42", status: "awaiting_first_reading", complete: true, missing: [] });
    expect(exam.body.views.map((x: { laterality: string; view: string }) => `${x.laterality}-${x.view}`).sort()).toEqual(["L-CC", "L-MLO", "R-CC", "R-MLO"]);
    expect(exam.body.ai).toBeUndefined();
  });

  it("flags a duplicate view and keeps FOR PROCESSING images, which the exam AI skips with the reason", { timeout: SLOW }, async () => {
    const dup = await upload(doctor, patient.id, view({ patient: who, studyInstanceUid: study, laterality: "R", view: "CC" }));
    expect(dup.status).toBe(201);
    const raw = await upload(doctor, patient.id, view({ patient: who, studyInstanceUid: study, laterality: "L", view: "MLO", presentationIntent: "FOR PROCESSING" }));
    expect(raw.status).toBe(201);
    const exam = await api("GET", `/api/v1/exams/${examId}`, { token: doctor });
    expect(exam.body.views.find((x: { imageId: string }) => x.imageId === dup.body.id)).toMatchObject({ duplicate: true });
    expect(exam.body.views.find((x: { imageId: string }) => x.imageId === raw.body.id)).toMatchObject({ presentationIntent: "FOR PROCESSING", duplicate: true });
    imageIds.duplicate = dup.body.id;
    imageIds.raw = raw.body.id;
  });

  it("reads every view in one action: one prediction per view, breast = max of its views, exam = max of breasts", { timeout: SLOW }, async () => {
    const res = await api("POST", `/api/v1/exams/${examId}/ai`, { token: doctor });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const ai = res.body;
    expect(ai.views).toHaveLength(4);
    expect(new Set(ai.views.map((v: { predictionId: string }) => v.predictionId)).size).toBe(4);
    for (const v of ai.views) expect(imageIds[`${v.laterality}-${v.view}`]).toBe(v.imageId);
    const side = (l: string) => Math.max(...ai.views.filter((v: { laterality: string }) => v.laterality === l).map((v: { probability: number }) => v.probability));
    expect(ai.breasts.R.probability).toBe(side("R"));
    expect(ai.breasts.L.probability).toBe(side("L"));
    expect(ai.exam.probability).toBe(Math.max(ai.breasts.R.probability, ai.breasts.L.probability));
    expect(ai.model).toMatchObject({ name: "densenet121-demo", clinical: false, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const skipped = Object.fromEntries(ai.skipped.map((s: { imageId: string; reason: string }) => [s.imageId, s.reason]));
    expect(skipped).toEqual({ [imageIds.duplicate!]: "duplicate", [imageIds.raw!]: "for_processing" });
    // Each view's reading is traceable like a single image's, with its heatmap.
    const one = await api("GET", `/api/v1/images/${ai.views[0].imageId}/predictions`, { token: doctor });
    expect(one.body.predictions[0]).toMatchObject({ id: ai.views[0].predictionId, model: { sha256: ai.model.sha256 } });
    const heat = await fetch(`${baseUrl()}/api/v1/predictions/${ai.views[0].predictionId}/heatmap`, { headers: { Authorization: `Bearer ${doctor}` } });
    expect(heat.headers.get("Content-Type")).toBe("image/png");
    // AI_DISPLAY=after_reading (the default): the exam shows the AI to a reader once she has recorded her reading.
    const before = await api("GET", `/api/v1/exams/${examId}`, { token: doctor });
    expect(before.body).not.toHaveProperty("ai");
    expect(before.body.aiHidden).toBe("after_reading");
    const reading = await api("POST", `/api/v1/exams/${examId}/readings`, { token: doctor, json: { breasts: { R: { acr: 1, density: "B" }, L: { acr: 1, density: "B" } } } });
    expect(reading.status).toBe(201);
    // The exam shows the latest result.
    const exam = await api("GET", `/api/v1/exams/${examId}`, { token: doctor });
    expect(exam.body.ai.exam.probability).toBe(ai.exam.probability);
  });

  it("never shows the patient a model score or heatmap: API answers, readings, heatmaps, portal", { timeout: SLOW }, async () => {
    const exams = await api("GET", `/api/v1/patients/${patient.id}/exams`, { token: patient.token });
    expect(exams.status).toBe(200);
    expect(exams.body.exams.find((e: { id: string }) => e.id === examId)).toEqual({ id: examId, date: "2026-11-30", status: "awaiting_second_reading", views: expect.any(Array) });
    const images = await api("GET", `/api/v1/patients/${patient.id}/images`, { token: patient.token });
    expect(images.status).toBe(200);
    for (const body of [exams.body, images.body]) expect(JSON.stringify(body)).not.toMatch(/probabilit|prediction|heatmap|"ai"|score|label/i);
    expect((await api("GET", `/api/v1/exams/${examId}`, { token: patient.token })).status).toBe(403);
    expect((await api("GET", `/api/v1/images/${imageIds["R-CC"]}/predictions`, { token: patient.token })).status).toBe(403);
    const exam = (await api("GET", `/api/v1/exams/${examId}`, { token: doctor })).body;
    const heat = await api("GET", `/api/v1/predictions/${exam.ai.views[0].predictionId}/heatmap`, { token: patient.token });
    expect(heat.status).toBe(403);
    // The portal and her image page: no score, no heatmap, no model name.
    const session = await BrowserSession.login(patient.email, patient.password);
    for (const pagePath of ["/mon-dossier", `/images/${imageIds["R-CC"]}`]) {
      const html = (await session.get(pagePath)).html;
      expect(html, pagePath).toContain(identity.ipp);
      expect(html, pagePath).not.toMatch(/densenet|\/carte|heatmap|Positive|Negative|%<\/|probabilit/i);
    }
    // The care team's view of the same image does show the reading (the check above is not vacuous).
    const doctorHtml = (await doctorSession.get(`/images/${imageIds["R-CC"]}`)).html;
    expect(doctorHtml).toMatch(/densenet/i);
  });

  it("shows the exam page to the doctor in hanging order with the scores, and refuses another doctor", { timeout: SLOW }, async () => {
    const res = await doctorSession.get(`/examens/${examId}`);
    expect(res.status).toBe(200);
    const html = res.html;
    expect(html).toContain(identity.ipp);
    const order = ["R-CC", "L-CC", "R-MLO", "L-MLO"].map((v) => html.indexOf(`data-view="${v}"`));
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(html.match(/data-testid="view-heatmap"/g)).toHaveLength(4);
    expect(html).toContain('data-testid="exam-score"');
    expect(html).toContain("Complet (4 incidences)");
    const doc = await createAccount("doctor");
    const other = await BrowserSession.login(doc.email, doc.password);
    expect((await other.get(`/examens/${examId}`)).status).toBe(403);
  });
});

describe("the identity check on arriving DICOM", () => {
  it("refuses another woman's DICOM with 409 identity_mismatch naming the fields, stores nothing, audits a denial", { timeout: SLOW }, async () => {
    const before = (await api("GET", `/api/v1/patients/${patient.id}/images`, { token: doctor })).body.images.length;
    const beforeExams = (await api("GET", `/api/v1/patients/${patient.id}/exams`, { token: doctor })).body.exams.length;
    const other = view({ patient: { id: "IPP-AUTRE", name: "MARTIN^JEANNE", birthDate: "19700101", sex: "F" }, studyInstanceUid: uid(), laterality: "R", view: "CC" });
    const res = await upload(doctor, patient.id, other);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("identity_mismatch");
    expect(res.body.error.message).toMatch(/identifiant patient \(PatientID\), nom \(PatientName\), date de naissance \(PatientBirthDate\)/);
    expect(res.body.error.message).not.toMatch(/PatientSex/);
    expect((await api("GET", `/api/v1/patients/${patient.id}/images`, { token: doctor })).body.images.length).toBe(before);
    expect((await api("GET", `/api/v1/patients/${patient.id}/exams`, { token: doctor })).body.exams.length).toBe(beforeExams);
    const events = (await api("GET", `/api/v1/audit?requestId=${res.requestId}`, { token: admin })).body.events;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ action: "image.upload", outcome: "denied", purpose: "TREAT" });
    expect(events[0].reason).toMatch(/409/);
  });

  it("accepts a header without identity fields, with a notice on the image", { timeout: SLOW }, async () => {
    const res = await upload(doctor, patient.id, view({ studyInstanceUid: uid(), laterality: "L", view: "CC" }));
    expect(res.status).toBe(201);
    expect(res.body.identityNotice).toBe("missing:PatientID,PatientName,PatientBirthDate,PatientSex");
  });

  it("lets a doctor file a mismatch from the form with a typed reason, audited; without one it is refused", { timeout: SLOW }, async () => {
    const session = await BrowserSession.login("doctor@demo.nexus");
    const me = await tokenFor("doctor@demo.nexus");
    const demo = (await api("GET", "/api/v1/patients?q=NEX-000001", { token: me })).body.patients[0];
    expect(demo).toMatchObject({ ipp: "NEX-000001", birthDate: "1968-05-14", sex: "F" });
    const file = view({ patient: { id: "NEX-000001", name: "DUPONT^CAMILE", birthDate: "19680514", sex: "F" }, studyInstanceUid: uid(), laterality: "R", view: "MLO" });
    const send = async (fields: Record<string, string>) => {
      const body = new FormData();
      body.append("csrf", await session.csrf());
      for (const [k, v] of Object.entries(fields)) body.append(k, v);
      body.append("file", new Blob([new Uint8Array(file)]), "faute-de-frappe.dcm");
      const res = await fetch(`${baseUrl()}/patients/${demo.id}/televersement`, { method: "POST", headers: { Cookie: session.cookieHeader() }, body, redirect: "manual" });
      return { status: res.status, location: res.headers.get("Location") ?? "", requestId: res.headers.get("X-Request-Id") };
    };
    const refused = await send({});
    expect(refused.status).toBe(303);
    expect(refused.location).toMatch(/refus=identity_mismatch/);
    expect(decodeURIComponent(refused.location)).toMatch(/champs=PatientName/);
    const page = (await session.get(refused.location)).html;
    expect(page).toMatch(/Identité discordante[^<]*<!-- -->[^<]*nom \(PatientName\)|Identité discordante.*nom \(PatientName\)/s);

    const filed = await send({ identityOverride: "Faute de frappe au secrétariat, vérifiée avec la patiente" });
    expect(filed.status).toBe(303);
    expect(filed.location).toMatch(/envoyes=1/);
    const events = (await api("GET", `/api/v1/audit?requestId=${filed.requestId}`, { token: admin })).body.events;
    expect(events[0]).toMatchObject({ action: "image.upload", outcome: "allowed" });
    expect(events[0].reason).toMatch(/identity override \(PatientName\): Faute de frappe/);
  });
});

describe("the image page's intents", () => {
  it("answers 400 to an unknown intent and erases nothing (only intent=erase erases)", { timeout: SLOW }, async () => {
    const session = await BrowserSession.login("doctor@demo.nexus");
    const me = await tokenFor("doctor@demo.nexus");
    const demo = (await api("GET", "/api/v1/patients?q=NEX-000001", { token: me })).body.patients[0];
    const up = await upload(me, demo.id, await jpeg(32, 32), { laterality: "R", view: "CC" }, "intent.jpg");
    expect(up.status).toBe(201);
    for (const intent of ["bogus", ""]) {
      const res = await session.post(`/images/${up.body.id}`, { intent }, { csrf: await session.csrf() });
      expect(res.status, intent).toBe(400);
    }
    const still = await fetch(`${baseUrl()}/api/v1/images/${up.body.id}`, { headers: { Authorization: `Bearer ${me}` } });
    expect(still.status).toBe(200);
    const erased = await session.post(`/images/${up.body.id}`, { intent: "erase" }, { csrf: await session.csrf() });
    expect(erased.status).toBe(303);
  });
});

describe("JPEG and PNG uploads", () => {
  it("go into the chosen exam, or today's, with the laterality and view given; bad values are a 400", { timeout: SLOW }, async () => {
    const p = await createPatient(doctor, { displayName: "Patiente JPEG", consents: { care: true } });
    const first = await upload(doctor, p.id, await jpeg(64, 48), { laterality: "R", view: "CC" }, "rcc.jpg");
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ laterality: "R", view: "CC" });
    const second = await upload(doctor, p.id, await jpeg(64, 48), { laterality: "L", view: "CC" }, "lcc.jpg");
    expect(second.body.examId).toBe(first.body.examId);
    const chosen = await upload(doctor, p.id, await jpeg(64, 48), { laterality: "l", view: "mlo", examId: first.body.examId }, "lmlo.jpg");
    expect(chosen.body).toMatchObject({ examId: first.body.examId, laterality: "L", view: "MLO" });
    const exam = await api("GET", `/api/v1/exams/${first.body.examId}`, { token: doctor });
    expect(exam.body).toMatchObject({ complete: false, missing: [{ laterality: "R", view: "MLO" }] });
    expect(exam.body.date).toBe(new Date().toISOString().slice(0, 10));

    const bad = await upload(doctor, p.id, await jpeg(64, 48), { laterality: "X", view: "CC" }, "x.jpg");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/Latéralité invalide/);
    const badView = await upload(doctor, p.id, await jpeg(64, 48), { laterality: "R", view: "AP" }, "x.jpg");
    expect(badView.status).toBe(400);
    // Another patient's exam cannot be named.
    const foreign = await upload(doctor, patient.id, await jpeg(64, 48), { laterality: "R", view: "CC", examId: first.body.examId }, "x.jpg");
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe("exam_not_found");
  });

  it("refuses the exam AI without ai_analysis consent (403) and when no view is readable (422)", { timeout: SLOW }, async () => {
    const noAi = await createPatient(doctor, { displayName: "Sans IA", consents: { care: true } });
    const up = await upload(doctor, noAi.id, await jpeg(64, 48), { laterality: "R", view: "CC" }, "a.jpg");
    expect((await api("POST", `/api/v1/exams/${up.body.examId}/ai`, { token: doctor })).status).toBe(403);
    const withAi = await createPatient(doctor, { displayName: "Vue Inconnue", consents: { care: true, ai_analysis: true } });
    const unplaced = await upload(doctor, withAi.id, await jpeg(64, 48), {}, "sans-vue.jpg");
    expect(unplaced.status).toBe(201);
    const res = await api("POST", `/api/v1/exams/${unplaced.body.examId}/ai`, { token: doctor });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("no_readable_view");
  });
});

describe("a DICOM written by another tool (DCMTK img2dcm + dcmodify)", () => {
  const hasDcmtk = spawnSync("img2dcm", ["--version"]).status === 0 && spawnSync("dcmodify", ["--version"]).status === 0;
  if (!hasDcmtk) console.log("skipped: DCMTK (img2dcm, dcmodify) not installed — apt-get install dcmtk");

  it.skipIf(!hasDcmtk)("is filed by its header (ImageLaterality, ViewPosition, StudyInstanceUID) and checked for identity", { timeout: SLOW }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "nexus-dcmtk-"));
    try {
      const source = path.join(dir, "source.jpg");
      writeFileSync(source, await jpeg(96, 128));
      const study = uid();
      const make = (name: string, tags: string[]) => {
        const out = path.join(dir, name);
        execFileSync("img2dcm", ["-q", "--new-sc", source, out]);
        execFileSync("dcmodify", ["-q", "-nb", ...tags.flatMap((t) => ["-i", t]), out]);
        return readFileSync(out);
      };
      const base = ["(0008,0005)=ISO_IR 192", `(0020,000d)=${study}`, "(0008,0060)=MG", "(0020,0062)=L", "(0018,5101)=MLO", "(0010,0040)=F"];
      const ours = make("ours.dcm", [...base, `(0010,0020)=${identity.ipp}`, "(0010,0010)=Le Goff^Hélène", "(0010,0030)=19610309"]);
      const res = await upload(doctor, patient.id, ours, {}, "dcmtk.dcm");
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({ contentType: "application/dicom", laterality: "L", view: "MLO" });
      const exam = await api("GET", `/api/v1/exams/${res.body.examId}`, { token: doctor });
      expect(exam.body.studyInstanceUid).toBe(study);

      const theirs = make("theirs.dcm", [...base, `(0010,0020)=${identity.ipp}`, "(0010,0010)=LE GOFF^MARIE", "(0010,0030)=19610309"]);
      const refused = await upload(doctor, patient.id, theirs, {}, "dcmtk-autre.dcm");
      expect(refused.status).toBe(409);
      expect(refused.body.error.message).toMatch(/nom \(PatientName\)/);
      expect(refused.body.error.message).not.toMatch(/PatientID|PatientBirthDate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
