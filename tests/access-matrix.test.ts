/**
 * The access matrix: every route and API endpoint × every role (and anonymous) → the expected status. Each refusal
 * must have left a `denied` audit event carrying the response's request id. The last test fails if a route file
 * under app/routes is missing from the matrix.
 */
import { randomUUID } from "node:crypto";
import { readdirSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { createAccount, createPatient } from "./helpers/fixtures";
import { api, baseUrl, BrowserSession, tokenFor } from "./helpers/http";
import { uploadExam } from "./helpers/exams";
import { jpeg } from "./helpers/images";

const ACTORS = ["anonymous", "admin", "doctor", "otherDoctor", "patient", "otherPatient", "researcher"] as const;
type ActorName = (typeof ACTORS)[number];
type Expect = Record<ActorName, number>;

interface Actor {
  browser: BrowserSession;
  /** A token for calls that do not revoke it. */
  token: string | null;
  email: string | null;
  password: string | null;
}

const actors = {} as Record<ActorName, Actor>;
let demoPatientId = "";
let otherPatientId = "";
let adminToken = "";
let demoImageId = "";
let demoPredictionId = "";
let demoExamId = "";
let someEventId = "";
let smallJpeg: Buffer;
/** Demo patient's exams: awaiting L1 (API reading, then the reading page), and one final (letters). */
let apiExamId = "";
let formExamId = "";
let finalExamId = "";

beforeAll(async () => {
  const otherDoctor = await createAccount("doctor");
  const otherDoctorToken = await tokenFor(otherDoctor.email, otherDoctor.password);
  const other = await createPatient(otherDoctorToken, {
    displayName: "Autre Patiente",
    email: `other-${randomUUID().slice(0, 6)}@test.nexus`,
    consents: { care: true },
  });
  otherPatientId = other.id;
  const logins: Record<Exclude<ActorName, "anonymous">, { email: string; password?: string }> = {
    admin: { email: "admin@demo.nexus" },
    doctor: { email: "doctor@demo.nexus" },
    otherDoctor,
    patient: { email: "patient@demo.nexus" },
    otherPatient: { email: other.account!.email, password: other.account!.password },
    researcher: { email: "researcher@demo.nexus" },
  };
  actors.anonymous = { browser: new BrowserSession(), token: null, email: null, password: null };
  for (const [name, login] of Object.entries(logins)) {
    actors[name as ActorName] = {
      browser: await BrowserSession.login(login.email, login.password),
      token: await tokenFor(login.email, login.password),
      email: login.email,
      password: login.password ?? null,
    };
  }
  adminToken = actors.admin.token!;
  demoPatientId = (await api("GET", "/api/v1/me", { token: actors.patient.token })).body.patientId;
  smallJpeg = await jpeg(16, 16);
  demoImageId = await demoImage();
  // The demo patient granted `ai_analysis`: one reading for the prediction routes.
  const reading = await api("POST", `/api/v1/images/${demoImageId}/predictions`, { token: actors.doctor.token });
  if (reading.status !== 201) throw new Error(`demo prediction failed: ${reading.status} ${JSON.stringify(reading.body)}`);
  demoPredictionId = reading.body.id;
  [apiExamId, formExamId, finalExamId] = [
    await uploadExam(actors.doctor.token!, demoPatientId),
    await uploadExam(actors.doctor.token!, demoPatientId),
    await uploadExam(actors.doctor.token!, demoPatientId),
  ];
  const normal = { breasts: { R: { acr: 1, density: "B" }, L: { acr: 1, density: "B" } } };
  // The exam AI reads the final exam's views (its CAD SR is then downloadable).
  const ai = await api("POST", `/api/v1/exams/${finalExamId}/ai`, { token: actors.doctor.token });
  if (ai.status !== 201) throw new Error(`matrix exam AI failed: ${ai.status} ${JSON.stringify(ai.body)}`);
  const doctor2 = await tokenFor("doctor2@demo.nexus");
  for (const token of [actors.doctor.token, doctor2]) {
    const r = await api("POST", `/api/v1/exams/${finalExamId}/readings`, { token, json: normal });
    if (r.status !== 201) throw new Error(`matrix reading failed: ${r.status} ${JSON.stringify(r.body)}`);
  }
  someEventId = String((await api("GET", "/api/v1/audit?limit=1", { token: adminToken })).body.events[0].id);
});

/** Uploads a small JPEG to a patient as `token`; the raw response. */
async function uploadJpeg(token: string | null, patientId: string): Promise<Response> {
  const form = new FormData();
  form.append("laterality", "L");
  form.append("view", "CC");
  form.append("file", new Blob([new Uint8Array(smallJpeg)], { type: "image/jpeg" }), "matrice.jpg");
  return fetch(`${baseUrl()}/api/v1/patients/${patientId}/images`, {
    method: "POST",
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    body: form,
  });
}

/** A fresh image of the demo patient (care consent granted), uploaded by the demo doctor. */
async function demoImage(patientId = demoPatientId): Promise<string> {
  const res = await uploadJpeg(actors.doctor.token, patientId);
  if (res.status !== 201) throw new Error(`demo image upload failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { id: string; examId: string };
  demoExamId ||= body.examId;
  return body.id;
}

/** Every actor the same status, except where `overrides` says otherwise. */
const all = (status: number, overrides: Partial<Expect> = {}): Expect =>
  ({ ...Object.fromEntries(ACTORS.map((a) => [a, status])), ...overrides }) as Expect;

interface Case {
  /** The route module (file name under app/routes, without extension) this case exercises. */
  route: string;
  name: string;
  expected: Expect;
  call: (actor: Actor) => Promise<{ status: number; requestId: string | null }>;
}

const page = (path: () => string) => async (a: Actor) => {
  const res = await a.browser.get(path());
  return { status: res.status, requestId: res.headers.get("X-Request-Id") };
};
const form = (path: string, fields: Record<string, string>) => async (a: Actor) => {
  const csrf = a.email ? await a.browser.csrf() : await a.browser.csrf("/connexion");
  const res = await a.browser.post(path, fields, { csrf });
  return { status: res.status, requestId: res.headers.get("X-Request-Id") };
};
const call = (method: string, path: () => string, json?: unknown, freshToken = false) => async (a: Actor) => {
  const token = freshToken && a.email ? await tokenFor(a.email, a.password ?? undefined) : a.token;
  const res = await api(method, path(), { token, json });
  return { status: res.status, requestId: res.headers.get("X-Request-Id") };
};

/** A browser multipart upload (CSRF field first, then one JPEG), as the patient page's form sends it. */
const browserUpload = (patientId: () => string) => async (a: Actor) => {
  const body = new FormData();
  body.append("csrf", a.email ? await a.browser.csrf() : await a.browser.csrf("/connexion"));
  body.append("laterality", "R");
  body.append("view", "CC");
  body.append("file", new Blob([new Uint8Array(smallJpeg)], { type: "image/jpeg" }), "formulaire.jpg");
  const res = await fetch(`${baseUrl()}/patients/${patientId()}/televersement`, {
    method: "POST",
    headers: { Cookie: a.browser.cookieHeader() },
    body,
    redirect: "manual",
  });
  await res.arrayBuffer();
  return { status: res.status, requestId: res.headers.get("X-Request-Id") };
};

const loggedIn302 = all(302);
const CASES: Case[] = [
  { route: "_index", name: "GET /", expected: loggedIn302, call: page(() => "/") },
  { route: "connexion", name: "GET /connexion", expected: all(302, { anonymous: 200 }), call: page(() => "/connexion") },
  { route: "connexion", name: "POST /connexion (empty)", expected: all(302, { anonymous: 400 }), call: form("/connexion", { email: "", password: "" }) },
  { route: "langue", name: "GET /langue", expected: all(302), call: page(() => "/langue?l=en&retour=/") },
  { route: "healthz", name: "GET /healthz", expected: all(200), call: page(() => "/healthz") },
  { route: "readyz", name: "GET /readyz", expected: all(200), call: page(() => "/readyz") },
  {
    route: "patients._index",
    name: "GET /patients",
    expected: all(403, { anonymous: 302, admin: 200, doctor: 200, otherDoctor: 200 }),
    call: page(() => "/patients"),
  },
  {
    route: "patients.nouveau",
    name: "GET /patients/nouveau",
    expected: all(403, { anonymous: 302, doctor: 200, otherDoctor: 200 }),
    call: page(() => "/patients/nouveau"),
  },
  {
    route: "patients.nouveau",
    name: "POST /patients/nouveau (invalid)",
    expected: all(403, { anonymous: 302, doctor: 400, otherDoctor: 400 }),
    call: form("/patients/nouveau", { displayName: "" }),
  },
  {
    route: "patients.$patientId",
    name: "GET /patients/:demoPatient",
    expected: all(403, { anonymous: 302, doctor: 200, patient: 200 }),
    call: page(() => `/patients/${demoPatientId}`),
  },
  {
    route: "patients.$patientId",
    name: "GET /patients/:otherPatient",
    expected: all(403, { anonymous: 302, otherDoctor: 200, otherPatient: 200 }),
    call: page(() => `/patients/${otherPatientId}`),
  },
  {
    route: "patients.$patientId",
    name: "GET /patients/:unknown (403, not 404: existence is not revealed)",
    expected: all(403, { anonymous: 302 }),
    call: page(() => `/patients/${randomUUID()}`),
  },
  {
    route: "mon-dossier",
    name: "GET /mon-dossier",
    expected: all(403, { anonymous: 302, patient: 200, otherPatient: 200 }),
    call: page(() => "/mon-dossier"),
  },
  {
    route: "admin.comptes",
    name: "GET /admin/comptes",
    expected: all(403, { anonymous: 302, admin: 200 }),
    call: page(() => "/admin/comptes"),
  },
  {
    route: "admin.comptes",
    name: "POST /admin/comptes create (invalid)",
    expected: all(403, { anonymous: 302, admin: 400 }),
    call: form("/admin/comptes", { intent: "create", name: "", email: "x", role: "doctor", password: "short" }),
  },
  {
    route: "admin.comptes",
    name: "POST /admin/comptes enable (unknown account)",
    expected: all(403, { anonymous: 302, admin: 404 }),
    call: form("/admin/comptes", { intent: "enable", userId: randomUUID() }),
  },
  {
    route: "recherche",
    name: "GET /recherche",
    expected: all(403, { anonymous: 302, researcher: 200 }),
    call: page(() => "/recherche"),
  },
  { route: "compte", name: "GET /compte", expected: all(200, { anonymous: 302 }), call: page(() => "/compte") },
  {
    route: "compte",
    name: "POST /compte (invalid)",
    expected: all(400, { anonymous: 302 }),
    call: form("/compte", { current: "", next: "" }),
  },
  // Logging out last would end the sessions the other cases use: it is exercised in tests/pages.test.ts, and here
  // with a fresh session per actor.
  {
    route: "deconnexion",
    name: "POST /deconnexion",
    expected: all(302),
    call: async (a) => {
      const fresh = a.email ? await BrowserSession.login(a.email, a.password ?? undefined) : new BrowserSession();
      const res = await fresh.post("/deconnexion", {}, { csrf: a.email ? await fresh.csrf() : await fresh.csrf("/connexion") });
      return { status: res.status, requestId: res.headers.get("X-Request-Id") };
    },
  },
  { route: "api.v1.tokens", name: "POST /api/v1/tokens (bad body)", expected: all(400), call: call("POST", () => "/api/v1/tokens", {}) },
  { route: "api.v1.me", name: "GET /api/v1/me", expected: all(200, { anonymous: 401 }), call: call("GET", () => "/api/v1/me") },
  {
    route: "api.v1.tokens.current",
    name: "DELETE /api/v1/tokens/current",
    expected: all(204, { anonymous: 401 }),
    call: call("DELETE", () => "/api/v1/tokens/current", undefined, true),
  },
  {
    route: "api.v1.patients",
    name: "GET /api/v1/patients",
    expected: all(403, { anonymous: 401, admin: 200, doctor: 200, otherDoctor: 200 }),
    call: call("GET", () => "/api/v1/patients"),
  },
  {
    route: "api.v1.patients",
    name: "POST /api/v1/patients (invalid)",
    expected: all(403, { anonymous: 401, doctor: 400, otherDoctor: 400 }),
    call: call("POST", () => "/api/v1/patients", { displayName: "" }),
  },
  {
    route: "api.v1.audit",
    name: "GET /api/v1/audit",
    expected: all(403, { anonymous: 401, admin: 200 }),
    call: call("GET", () => "/api/v1/audit?limit=1"),
  },
  {
    route: "api.v1.audit.verify",
    name: "GET /api/v1/audit/verify",
    expected: all(403, { anonymous: 401, admin: 200 }),
    call: call("GET", () => "/api/v1/audit/verify"),
  },
  {
    route: "api.v1.patients.$patientId.images",
    name: "GET /api/v1/patients/:demoPatient/images",
    expected: all(403, { anonymous: 401, doctor: 200, patient: 200 }),
    call: call("GET", () => `/api/v1/patients/${demoPatientId}/images`),
  },
  {
    route: "api.v1.patients.$patientId.images",
    name: "POST /api/v1/patients/:demoPatient/images (a JPEG)",
    expected: all(403, { anonymous: 401, doctor: 201 }),
    call: async (a) => {
      const res = await uploadJpeg(a.token, demoPatientId);
      await res.arrayBuffer();
      return { status: res.status, requestId: res.headers.get("X-Request-Id") };
    },
  },
  {
    route: "api.v1.images.$imageId",
    name: "GET /api/v1/images/:demoImage",
    expected: all(403, { anonymous: 401, doctor: 200, patient: 200 }),
    call: call("GET", () => `/api/v1/images/${demoImageId}`),
  },
  {
    route: "api.v1.images.$imageId",
    name: "GET /api/v1/images/:unknown (404 before the policy is asked; issue 11 item 8)",
    expected: all(404, { anonymous: 401 }),
    call: call("GET", () => `/api/v1/images/${randomUUID()}`),
  },
  // Erasures: each actor gets an image / a patient of its own, so every expectation is about a live resource.
  {
    route: "api.v1.images.$imageId",
    name: "DELETE /api/v1/images/:freshImage",
    expected: all(403, { anonymous: 401, admin: 204, doctor: 204 }),
    call: async (a) => {
      const id = await demoImage();
      return call("DELETE", () => `/api/v1/images/${id}`)(a);
    },
  },
  {
    route: "api.v1.patients.$patientId",
    name: "DELETE /api/v1/patients/:freshPatient",
    expected: all(403, { anonymous: 401, admin: 200, doctor: 200 }),
    call: async (a) => {
      const fresh = await createPatient(actors.doctor.token!, { displayName: "Patiente Jetable", consents: { care: true } });
      await demoImage(fresh.id);
      return call("DELETE", () => `/api/v1/patients/${fresh.id}`)(a);
    },
  },
  // Image pages (session cookie): the demo patient granted `care`, so their doctor and themself may view.
  {
    route: "images.$imageId",
    name: "GET /images/:demoImage",
    expected: all(403, { anonymous: 302, doctor: 200, patient: 200 }),
    call: page(() => `/images/${demoImageId}`),
  },
  {
    route: "images.$imageId",
    name: "POST /images/:freshImage (erase)",
    expected: all(403, { anonymous: 302, admin: 303, doctor: 303 }),
    call: async (a) => {
      const id = await demoImage();
      return form(`/images/${id}`, { intent: "erase", confirm: "1" })(a);
    },
  },
  {
    route: "$",
    name: "GET /nulle-part (no such page)",
    expected: all(404),
    call: page(() => "/nulle-part"),
  },
  {
    route: "images.$imageId.fichier",
    name: "GET /images/:demoImage/fichier",
    expected: all(403, { anonymous: 302, doctor: 200, patient: 200 }),
    call: page(() => `/images/${demoImageId}/fichier`),
  },
  {
    route: "patients.$patientId.televersement",
    name: "POST /patients/:demoPatient/televersement (browser multipart)",
    expected: all(403, { anonymous: 302, doctor: 303 }),
    call: browserUpload(() => demoPatientId),
  },
  {
    route: "recherche.images.$imageId",
    name: "GET /recherche/images/:demoImage (no research consent)",
    expected: all(403, { anonymous: 302 }),
    call: page(() => `/recherche/images/${demoImageId}`),
  },
  {
    route: "statistiques",
    name: "GET /statistiques",
    expected: all(403, { anonymous: 302, doctor: 200, otherDoctor: 200, researcher: 200 }),
    call: page(() => "/statistiques"),
  },
  // Consent API.
  {
    route: "api.v1.patients.$patientId.consents",
    name: "GET /api/v1/patients/:demoPatient/consents",
    expected: all(403, { anonymous: 401, doctor: 200, patient: 200 }),
    call: call("GET", () => `/api/v1/patients/${demoPatientId}/consents`),
  },
  {
    route: "api.v1.patients.$patientId.consents.$purpose",
    name: "PUT /api/v1/patients/:demoPatient/consents/research",
    expected: all(403, { anonymous: 401, patient: 200 }),
    call: call("PUT", () => `/api/v1/patients/${demoPatientId}/consents/research`, { granted: false }),
  },
  {
    route: "api.v1.patients.$patientId.access-log",
    name: "GET /api/v1/patients/:demoPatient/access-log",
    expected: all(403, { anonymous: 401, patient: 200 }),
    call: call("GET", () => `/api/v1/patients/${demoPatientId}/access-log`),
  },
  // AI readings (the demo patient granted `ai_analysis`).
  {
    route: "api.v1.images.$imageId.predictions",
    name: "POST /api/v1/images/:demoImage/predictions",
    expected: all(403, { anonymous: 401, doctor: 201 }),
    call: call("POST", () => `/api/v1/images/${demoImageId}/predictions`),
  },
  {
    route: "api.v1.images.$imageId.predictions",
    name: "GET /api/v1/images/:demoImage/predictions",
    // Model output is the care team's: the patient herself is refused (issue 12).
    expected: all(403, { anonymous: 401, doctor: 200 }),
    call: call("GET", () => `/api/v1/images/${demoImageId}/predictions`),
  },
  {
    route: "api.v1.predictions.$predictionId.heatmap",
    name: "GET /api/v1/predictions/:demoPrediction/heatmap",
    expected: all(403, { anonymous: 401, doctor: 200 }),
    call: call("GET", () => `/api/v1/predictions/${demoPredictionId}/heatmap`),
  },
  {
    route: "predictions.$predictionId.carte",
    name: "GET /predictions/:demoPrediction/carte",
    expected: all(403, { anonymous: 302, doctor: 200 }),
    call: page(() => `/predictions/${demoPredictionId}/carte`),
  },
  // Patients' identity and exams (issue 12).
  {
    route: "api.v1.patients.$patientId",
    name: "GET /api/v1/patients/:demoPatient",
    expected: all(403, { anonymous: 401, doctor: 200, patient: 200 }),
    call: call("GET", () => `/api/v1/patients/${demoPatientId}`),
  },
  {
    route: "api.v1.patients.$patientId.exams",
    name: "GET /api/v1/patients/:demoPatient/exams",
    expected: all(403, { anonymous: 401, doctor: 200, patient: 200 }),
    call: call("GET", () => `/api/v1/patients/${demoPatientId}/exams`),
  },
  {
    route: "api.v1.exams.$examId",
    name: "GET /api/v1/exams/:demoExam",
    expected: all(403, { anonymous: 401, doctor: 200 }),
    call: call("GET", () => `/api/v1/exams/${demoExamId}`),
  },
  {
    route: "api.v1.exams.$examId.ai",
    name: "POST /api/v1/exams/:demoExam/ai",
    expected: all(403, { anonymous: 401, doctor: 201 }),
    call: call("POST", () => `/api/v1/exams/${demoExamId}/ai`),
  },
  {
    route: "examens.$examId",
    name: "GET /examens/:demoExam",
    expected: all(403, { anonymous: 302, doctor: 200 }),
    call: page(() => `/examens/${demoExamId}`),
  },
  {
    route: "examens.$examId",
    name: "POST /examens/:demoExam (intent analyse)",
    expected: all(403, { anonymous: 302, doctor: 201 }),
    call: (a) => form(`/examens/${demoExamId}`, { intent: "analyse" })(a),
  },
  // The admin's audit pages and exports (identifiers and pseudonyms only, never medical content).
  {
    route: "admin.audit._index",
    name: "GET /admin/audit",
    expected: all(403, { anonymous: 302, admin: 200 }),
    call: page(() => "/admin/audit"),
  },
  {
    route: "admin.audit.$eventId",
    name: "GET /admin/audit/:event",
    expected: all(403, { anonymous: 302, admin: 200 }),
    call: page(() => `/admin/audit/${someEventId}`),
  },
  {
    route: "admin.audit.export",
    name: "GET /admin/audit/export?format=csv",
    expected: all(403, { anonymous: 302, admin: 200 }),
    call: page(() => "/admin/audit/export?format=csv&action=patient.create"),
  },
  {
    route: "api.v1.audit.export",
    name: "GET /api/v1/audit/export?format=ndjson",
    expected: all(403, { anonymous: 401, admin: 200 }),
    call: call("GET", () => "/api/v1/audit/export?format=ndjson&action=patient.create"),
  },
  // Identity (second factor, forced password change, OpenID Connect).
  { route: "connexion_.code", name: "GET /connexion/code (no sign-in pending)", expected: all(302), call: page(() => "/connexion/code") },
  { route: "connexion_.code", name: "POST /connexion/code (no sign-in pending)", expected: all(302), call: form("/connexion/code", { code: "123456" }) },
  {
    route: "compte_.nouveau-mot-de-passe",
    name: "GET /compte/nouveau-mot-de-passe (no temporary password in use)",
    expected: all(302),
    call: page(() => "/compte/nouveau-mot-de-passe"),
  },
  {
    route: "compte_.double-authentification",
    name: "GET /compte/double-authentification",
    expected: all(200, { anonymous: 302 }),
    call: page(() => "/compte/double-authentification"),
  },
  {
    route: "compte_.double-authentification",
    name: "POST /compte/double-authentification (invalid code)",
    expected: all(400, { anonymous: 302 }),
    call: form("/compte/double-authentification", { intent: "confirm", code: "abc" }),
  },
  {
    route: "api.v1.me.totp",
    name: "POST /api/v1/me/totp",
    expected: all(201, { anonymous: 401 }),
    call: call("POST", () => "/api/v1/me/totp"),
  },
  {
    route: "api.v1.me.totp.confirm",
    name: "POST /api/v1/me/totp/confirm (malformed code)",
    expected: all(400, { anonymous: 401 }),
    call: call("POST", () => "/api/v1/me/totp/confirm", { otp: "abc" }),
  },
  // Without a configured provider the button is absent and both answer with the login page (tests/oidc.test.ts has one).
  { route: "connexion_.oidc", name: "POST /connexion/oidc (no provider configured)", expected: all(302), call: form("/connexion/oidc", {}) },
  { route: "connexion_.oidc.retour", name: "GET /connexion/oidc/retour (no sign-in in progress)", expected: all(302), call: page(() => "/connexion/oidc/retour?code=x&state=y") },
  { route: "api.v1.$", name: "GET /api/v1/unknown", expected: all(404), call: call("GET", () => "/api/v1/unknown") },
  // DICOMweb and machine accounts (interoperability).
  {
    route: "dicomweb.$",
    name: "GET /dicomweb/studies (QIDO-RS: each caller sees only what they may read)",
    expected: all(200, { anonymous: 401, admin: 403, researcher: 403 }),
    call: call("GET", () => "/dicomweb/studies?PatientID=none"),
  },
  {
    route: "dicomweb.$",
    name: "GET /dicomweb/studies/:unknown (WADO-RS: 403, existence is not revealed)",
    expected: all(403, { anonymous: 401 }),
    call: call("GET", () => `/dicomweb/studies/2.25.${BigInt("0x" + randomUUID().replace(/-/g, ""))}`),
  },
  {
    route: "api.v1.machines",
    name: "GET /api/v1/machines",
    expected: all(403, { anonymous: 401, admin: 200 }),
    call: call("GET", () => "/api/v1/machines"),
  },
  {
    route: "api.v1.machines.$machineId.tokens",
    name: "POST /api/v1/machines/:unknown/tokens",
    expected: all(403, { anonymous: 401, admin: 404 }),
    call: call("POST", () => `/api/v1/machines/${randomUUID()}/tokens`),
  },
  {
    route: "admin.machines",
    name: "GET /admin/machines",
    expected: all(403, { anonymous: 302, admin: 200 }),
    call: page(() => "/admin/machines"),
  },
  {
    route: "admin.machines",
    name: "POST /admin/machines token for an unknown machine",
    expected: all(403, { anonymous: 302, admin: 404 }),
    call: form("/admin/machines", { intent: "token", machineId: randomUUID() }),
  },
  {
    route: "admin.envois",
    name: "GET /admin/envois",
    expected: all(403, { anonymous: 302, admin: 200 }),
    call: page(() => "/admin/envois"),
  },
  {
    route: "admin.envois",
    name: "POST /admin/envois retry of an unknown entry",
    expected: all(403, { anonymous: 302, admin: 404 }),
    call: form("/admin/envois", { intent: "retry", entryId: randomUUID() }),
  },
  {
    route: "dicom.a-rapprocher",
    name: "GET /dicom/a-rapprocher (reconciliation queue page)",
    expected: all(403, { anonymous: 302, doctor: 200, otherDoctor: 200 }),
    call: page(() => "/dicom/a-rapprocher"),
  },
  {
    route: "dicom.a-rapprocher",
    name: "POST /dicom/a-rapprocher reject of an unknown entry (confirmed)",
    expected: all(403, { anonymous: 302, doctor: 404, otherDoctor: 404 }),
    call: form("/dicom/a-rapprocher", { intent: "reject", entryId: randomUUID(), confirm: "1" }),
  },
  {
    route: "api.v1.dicom-inbox",
    name: "GET /api/v1/dicom-inbox (reconciliation queue)",
    expected: all(403, { anonymous: 401, doctor: 200, otherDoctor: 200 }),
    call: call("GET", () => "/api/v1/dicom-inbox"),
  },
  {
    route: "api.v1.dicom-inbox.$entryId",
    name: "POST /api/v1/dicom-inbox/:unknown (reject)",
    expected: all(403, { anonymous: 401, doctor: 404, otherDoctor: 404 }),
    call: call("POST", () => `/api/v1/dicom-inbox/${randomUUID()}`, { decision: "reject" }),
  },
  // Double reading (branch `reading`): worklists for doctors, readings by the care team, letters for the care team
  // and the woman herself once final, programme statistics for doctors and admins.
  {
    route: "api.v1.worklists.first-reading",
    name: "GET /api/v1/worklists/first-reading",
    expected: all(403, { anonymous: 401, doctor: 200, otherDoctor: 200 }),
    call: call("GET", () => "/api/v1/worklists/first-reading"),
  },
  {
    route: "api.v1.worklists.second-reading",
    name: "GET /api/v1/worklists/second-reading",
    expected: all(403, { anonymous: 401, doctor: 200, otherDoctor: 200 }),
    call: call("GET", () => "/api/v1/worklists/second-reading"),
  },
  {
    route: "api.v1.exams.$examId.readings",
    name: "POST /api/v1/exams/:demoExam/readings",
    expected: all(403, { anonymous: 401, doctor: 201 }),
    call: call("POST", () => `/api/v1/exams/${apiExamId}/readings`, { breasts: { R: { acr: 1, density: "A" }, L: { acr: 2, density: "A" } } }),
  },
  {
    route: "api.v1.exams.$examId.letter",
    name: "GET /api/v1/exams/:finalExam/letter",
    expected: all(403, { anonymous: 401, doctor: 200, patient: 200 }),
    call: call("GET", () => `/api/v1/exams/${finalExamId}/letter`),
  },
  {
    route: "api.v1.exams.$examId.letter",
    name: "GET /api/v1/exams/:finalExam/letter?for=referrer",
    expected: all(403, { anonymous: 401, doctor: 200 }),
    call: call("GET", () => `/api/v1/exams/${finalExamId}/letter?for=referrer`),
  },
  // Results out (issue 17.4): FHIR bundle and reading SR for the care team's doctors; the CAD SR is model output
  // (never the patient); the PACS push queue for admins.
  {
    route: "api.v1.exams.$examId.fhir",
    name: "GET /api/v1/exams/:finalExam/fhir",
    expected: all(403, { anonymous: 401, doctor: 200 }),
    call: call("GET", () => `/api/v1/exams/${finalExamId}/fhir`),
  },
  {
    route: "api.v1.exams.$examId.sr",
    name: "GET /api/v1/exams/:finalExam/sr",
    expected: all(403, { anonymous: 401, doctor: 200 }),
    call: call("GET", () => `/api/v1/exams/${finalExamId}/sr`),
  },
  {
    route: "api.v1.exams.$examId.ai.sr",
    name: "GET /api/v1/exams/:finalExam/ai/sr",
    expected: all(403, { anonymous: 401, doctor: 200 }),
    call: call("GET", () => `/api/v1/exams/${finalExamId}/ai/sr`),
  },
  {
    route: "api.v1.outbox",
    name: "GET /api/v1/outbox",
    expected: all(403, { anonymous: 401, admin: 200 }),
    call: call("GET", () => "/api/v1/outbox"),
  },
  {
    route: "api.v1.outbox.$entryId.retry",
    name: "POST /api/v1/outbox/:unknown/retry",
    expected: all(403, { anonymous: 401, admin: 404 }),
    call: call("POST", () => `/api/v1/outbox/${randomUUID()}/retry`),
  },
  {
    route: "lectures",
    name: "GET /lectures",
    expected: all(403, { anonymous: 302, doctor: 200, otherDoctor: 200 }),
    call: page(() => "/lectures"),
  },
  {
    route: "examens.$examId_.lecture",
    name: "GET /examens/:demoExam/lecture",
    expected: all(403, { anonymous: 302, doctor: 200 }),
    call: page(() => `/examens/${formExamId}/lecture`),
  },
  {
    route: "examens.$examId_.lecture",
    name: "POST /examens/:demoExam/lecture",
    expected: all(403, { anonymous: 302, doctor: 201 }),
    call: (a) => form(`/examens/${formExamId}/lecture`, { "R.acr": "1", "R.density": "B", "L.acr": "2", "L.density": "B" })(a),
  },
  {
    route: "examens.$examId_.courrier",
    name: "GET /examens/:finalExam/courrier",
    expected: all(403, { anonymous: 302, doctor: 200, patient: 200 }),
    call: page(() => `/examens/${finalExamId}/courrier`),
  },
  {
    route: "examens.$examId_.courrier",
    name: "GET /examens/:finalExam/courrier?pour=medecin",
    expected: all(403, { anonymous: 302, doctor: 200 }),
    call: page(() => `/examens/${finalExamId}/courrier?pour=medecin`),
  },
  {
    route: "statistiques_.programme",
    name: "GET /statistiques/programme",
    expected: all(403, { anonymous: 302, doctor: 200, otherDoctor: 200, admin: 200 }),
    call: page(() => "/statistiques/programme"),
  },
];

describe("access matrix", () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const got: Partial<Expect> = {};
      const refusals: { actor: ActorName; requestId: string | null }[] = [];
      for (const name of ACTORS) {
        const { status, requestId } = await c.call(actors[name]);
        got[name] = status;
        if (status === 403 || status === 401) refusals.push({ actor: name, requestId });
      }
      expect(got).toEqual(c.expected);
      // Every refusal was audited as a denial, with this very request's id.
      for (const r of refusals) {
        const found = await api("GET", `/api/v1/audit?requestId=${r.requestId}`, { token: adminToken });
        expect(found.body.events, `${c.name} as ${r.actor}`).toHaveLength(1);
        expect(found.body.events[0].outcome).toBe("denied");
      }
    });
  }

  it("covers every route module", () => {
    const routes = readdirSync("app/routes").map((f) => f.replace(/\.tsx?$/, ""));
    const covered = new Set(CASES.map((c) => c.route));
    expect(routes.filter((r) => !covered.has(r))).toEqual([]);
  });
});
