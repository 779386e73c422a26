/**
 * Audit completeness: every route module is walked with at least one request that touches patient data or accounts,
 * and each such request must leave exactly one audit event carrying its X-Request-Id, with every field the trail
 * promises (actor id, role and name, action, resource, patient, outcome, purpose, request id, client address, user
 * agent, time). Requests that touch neither are listed with the reason and must leave none. A route module that is
 * in neither list fails the last test: a new route must be classified here before it ships.
 */
import { randomUUID } from "node:crypto";
import { readdirSync } from "node:fs";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { generate } from "otplib";
import { uploadExam } from "./helpers/exams";
import { createAccount, createPatient, uniqueEmail } from "./helpers/fixtures";
import { api, baseUrl, BrowserSession, DEMO_PASSWORD, tokenFor } from "./helpers/http";

interface Probe {
  status: number;
  requestId: string | null;
}

interface AuditedCase {
  route: string;
  name: string;
  call: () => Promise<Probe>;
  status: number;
  action: string;
  outcome?: "allowed" | "denied" | "error";
  /** The acting account (null: anonymous). */
  actor: () => string | null;
  /** The patient the event must name, when the request concerns one. */
  patient?: () => string;
  /**
   * Events this request writes: 1, except a browser form POST without JavaScript whose action answers with the page
   * (not a redirect): Remix then runs the page's loader in the same request, which records its own read after the
   * action's event — 2 events, the action's first. With JavaScript the two are separate requests (last describe).
   */
  events?: number;
}

interface ExemptRequest {
  route: string;
  name: string;
  call: () => Promise<Probe>;
  reason: string;
}

/** Whole route modules that touch neither patient data nor accounts. */
const EXEMPT_ROUTES: Record<string, string> = {
  healthz: "liveness probe: answers without reading anything",
  readyz: "readiness probe: pings the database and the object store, reads no row",
  langue: "sets the interface-language cookie and redirects: no data read or written",
  "api.v1.$": "unknown API path: a JSON 404 that names nothing",
  $: "unknown page URL: the 404 page, which names nothing",
};

const probe = (res: Response): Probe => ({ status: res.status, requestId: res.headers.get("X-Request-Id") });
const UA = "nexus-audit-completeness/1";

let admin: BrowserSession;
let adminToken = "";
let adminId = "";
let doctor: BrowserSession;
let doctorToken = "";
let doctorId = "";
let patient: BrowserSession;
let patientToken = "";
let patientUserId = "";
let researcher: BrowserSession;
let researcherToken = "";
let researcherId = "";
let patientId = "";
let erasablePatientId = "";
const images: Record<"view" | "erasePage" | "eraseApi", string> = { view: "", erasePage: "", eraseApi: "" };
let someEventId = 0;
let predictionId = "";
/** Double reading, on the demo patient (both demo doctors are in her care team). */
let demoPatientId = "";
let demoPatientUserId = "";
let demoPatientToken = "";
let doctor2Token = "";
let doctor2Id = "";
const exams: Record<"api" | "page" | "final", string> = { api: "", page: "", final: "" };
let examId = "";
/** An account with the second factor on (for the code page). */
const totpUser = { id: "", email: "", password: "correct-horse-battery" };
let firstSignInUserId = "";

async function png(): Promise<Buffer> {
  return sharp({ create: { width: 32, height: 24, channels: 3, background: { r: 90, g: 90, b: 90 } } }).png().toBuffer();
}

async function uploadApi(token: string, pid: string): Promise<Response> {
  const form = new FormData();
  form.append("laterality", "R");
  form.append("view", "MLO");
  form.append("file", new Blob([new Uint8Array(await png())], { type: "image/png" }), "cliche.png");
  return fetch(`${baseUrl()}/api/v1/patients/${pid}/images`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "User-Agent": UA },
    body: form,
  });
}

async function me(token: string): Promise<{ id: string; patientId?: string }> {
  return (await api("GET", "/api/v1/me", { token })).body;
}

/** An API call with this suite's user agent (and optional headers). */
async function call(method: string, path: string, token: string | null, json?: unknown, headers: Record<string, string> = {}) {
  const res = await api(method, path, { token, json, headers: { "User-Agent": UA, ...headers } });
  return { status: res.status, requestId: res.headers.get("X-Request-Id") };
}

async function page(session: BrowserSession, path: string): Promise<Probe> {
  return probe(await session.get(path, { "User-Agent": UA }));
}

async function form(session: BrowserSession, path: string, fields: Record<string, string>): Promise<Probe> {
  return probe(await session.post(path, fields, { csrf: await session.csrf(), headers: { "User-Agent": UA } }));
}

beforeAll(async () => {
  admin = await BrowserSession.login("admin@demo.nexus");
  adminToken = await tokenFor("admin@demo.nexus");
  adminId = (await me(adminToken)).id;
  doctor = await BrowserSession.login("doctor@demo.nexus");
  doctorToken = await tokenFor("doctor@demo.nexus");
  doctorId = (await me(doctorToken)).id;
  researcher = await BrowserSession.login("researcher@demo.nexus");
  researcherToken = await tokenFor("researcher@demo.nexus");
  researcherId = (await me(researcherToken)).id;
  const created = await createPatient(doctorToken, {
    displayName: "Patiente Complétude",
    email: uniqueEmail("completeness"),
    consents: { care: true, ai_analysis: true, research: true },
  });
  patientId = created.id;
  patient = await BrowserSession.login(created.account!.email, created.account!.password);
  patientToken = await tokenFor(created.account!.email, created.account!.password);
  patientUserId = (await me(patientToken)).id;
  erasablePatientId = (await createPatient(doctorToken, { displayName: "Patiente à effacer" })).id;
  for (const key of Object.keys(images) as (keyof typeof images)[]) {
    const res = await uploadApi(doctorToken, patientId);
    if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { id: string; examId: string };
    images[key] = body.id;
    examId ||= body.examId;
  }
  const reading = await api("POST", `/api/v1/images/${images.view}/predictions`, { token: doctorToken });
  if (reading.status !== 201) throw new Error(`prediction failed: ${reading.status} ${JSON.stringify(reading.body)}`);
  predictionId = reading.body.id;
  const totpAccount = await createAccount("doctor");
  totpUser.email = totpAccount.email;
  const totpToken = await tokenFor(totpAccount.email, totpAccount.password);
  totpUser.id = (await me(totpToken)).id;
  const enrol = await api("POST", "/api/v1/me/totp", { token: totpToken });
  await api("POST", "/api/v1/me/totp/confirm", { token: totpToken, json: { otp: await generate({ secret: enrol.body.secret }) } });
  demoPatientToken = await tokenFor("patient@demo.nexus");
  const demo = await me(demoPatientToken);
  demoPatientUserId = demo.id;
  demoPatientId = demo.patientId!;
  doctor2Token = await tokenFor("doctor2@demo.nexus");
  doctor2Id = (await me(doctor2Token)).id;
  for (const key of Object.keys(exams) as (keyof typeof exams)[]) exams[key] = await uploadExam(doctorToken, demoPatientId);
  for (const token of [doctorToken, doctor2Token]) {
    const r = await api("POST", `/api/v1/exams/${exams.final}/readings`, { token, json: NORMAL });
    if (r.status !== 201) throw new Error(`reading failed: ${r.status} ${JSON.stringify(r.body)}`);
  }
  const list = await api("GET", "/api/v1/audit?limit=1", { token: adminToken });
  someEventId = Number(list.body.events[0].id);
});

const NORMAL = { breasts: { R: { acr: 1, density: "B" }, L: { acr: 2, density: "B" } } };

const CASES: AuditedCase[] = [
  // Patients' identity and exams (issue 12).
  {
    route: "api.v1.patients.$patientId",
    name: "GET /api/v1/patients/:id",
    call: () => call("GET", `/api/v1/patients/${patientId}`, doctorToken),
    status: 200,
    action: "patient.read",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "api.v1.patients.$patientId.exams",
    name: "GET /api/v1/patients/:id/exams (the patient)",
    call: () => call("GET", `/api/v1/patients/${patientId}/exams`, patientToken),
    status: 200,
    action: "exam.list",
    actor: () => patientUserId,
    patient: () => patientId,
  },
  {
    route: "api.v1.exams.$examId",
    name: "GET /api/v1/exams/:id",
    call: () => call("GET", `/api/v1/exams/${examId}`, doctorToken),
    status: 200,
    action: "exam.read",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "api.v1.exams.$examId",
    name: "GET /api/v1/exams/:id (the patient: denied)",
    call: () => call("GET", `/api/v1/exams/${examId}`, patientToken),
    status: 403,
    action: "exam.read",
    outcome: "denied",
    actor: () => patientUserId,
    patient: () => patientId,
  },
  {
    route: "api.v1.exams.$examId.ai",
    name: "POST /api/v1/exams/:id/ai",
    call: () => call("POST", `/api/v1/exams/${examId}/ai`, doctorToken),
    status: 201,
    action: "exam.analyse",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "examens.$examId",
    name: "GET /examens/:id",
    call: () => page(doctor, `/examens/${examId}`),
    status: 200,
    action: "exam.read",
    actor: () => doctorId,
    patient: () => patientId,
  },
  { route: "_index", name: "GET / (doctor)", call: () => page(doctor, "/"), status: 302, action: "app.home", actor: () => doctorId },
  {
    route: "_index",
    name: "GET / (anonymous: no event, sent to the login page)",
    call: () => page(new BrowserSession(), "/"),
    status: 302,
    action: "",
    actor: () => null,
    events: 0,
  },
  {
    route: "connexion",
    name: "POST /connexion (login)",
    call: async () => {
      const s = new BrowserSession();
      return probe(await s.post("/connexion", { email: "doctor@demo.nexus", password: DEMO_PASSWORD }, { headers: { "User-Agent": UA } }));
    },
    status: 302,
    action: "auth.login",
    actor: () => doctorId,
  },
  {
    route: "connexion",
    name: "POST /connexion (wrong password: denied)",
    call: async () => probe(await new BrowserSession().post("/connexion", { email: uniqueEmail("nobody"), password: "wrong-password" }, { headers: { "User-Agent": UA } })),
    status: 401,
    action: "auth.login",
    outcome: "denied",
    actor: () => null,
  },
  {
    route: "connexion",
    name: "POST /connexion (no CSRF token: denied before the password is read)",
    call: async () => probe(await new BrowserSession().post("/connexion", { email: "doctor@demo.nexus", password: DEMO_PASSWORD }, { csrf: null, headers: { "User-Agent": UA } })),
    status: 403,
    action: "auth.login",
    outcome: "denied",
    actor: () => null,
  },
  {
    route: "deconnexion",
    name: "POST /deconnexion",
    call: async () => {
      const s = await BrowserSession.login("researcher@demo.nexus");
      return form(s, "/deconnexion", {});
    },
    status: 302,
    action: "session.logout",
    actor: () => researcherId,
  },
  { route: "compte", name: "GET /compte", call: () => page(doctor, "/compte"), status: 200, action: "account.self", actor: () => doctorId },
  {
    route: "compte",
    name: "POST /compte (wrong current password)",
    call: () => form(doctor, "/compte", { current: "not-my-password", next: "a-new-password-2026" }),
    status: 400,
    action: "account.password",
    outcome: "error",
    actor: () => doctorId,
    events: 2,
  },
  { route: "admin.comptes", name: "GET /admin/comptes", call: () => page(admin, "/admin/comptes"), status: 200, action: "account.list", actor: () => adminId },
  {
    route: "admin.comptes",
    name: "POST /admin/comptes (create)",
    call: () => form(admin, "/admin/comptes", { intent: "create", name: "Dr Nouveau", email: uniqueEmail("doctor"), role: "doctor", password: "correct-horse-battery" }),
    status: 201,
    action: "account.create",
    actor: () => adminId,
    events: 2,
  },
  { route: "patients._index", name: "GET /patients", call: () => page(doctor, "/patients"), status: 200, action: "patient.list", actor: () => doctorId },
  { route: "patients.nouveau", name: "GET /patients/nouveau", call: () => page(doctor, "/patients/nouveau"), status: 200, action: "patient.create", actor: () => doctorId },
  {
    route: "patients.nouveau",
    name: "POST /patients/nouveau",
    call: () => form(doctor, "/patients/nouveau", { displayName: "Patiente Formulaire" }),
    status: 201,
    action: "patient.create",
    actor: () => doctorId,
    events: 2,
  },
  {
    route: "patients.$patientId",
    name: "GET /patients/:id",
    call: () => page(doctor, `/patients/${patientId}`),
    status: 200,
    action: "patient.read",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "patients.$patientId",
    name: "GET /patients/:id (researcher: denied)",
    call: () => page(researcher, `/patients/${patientId}`),
    status: 403,
    action: "patient.read",
    outcome: "denied",
    actor: () => researcherId,
    patient: () => patientId,
  },
  {
    route: "patients.$patientId.televersement",
    name: "POST /patients/:id/televersement (multipart, no JavaScript)",
    call: async () => {
      const body = new FormData();
      body.append("csrf", await doctor.csrf());
      body.append("file", new Blob([new Uint8Array(await png())], { type: "image/png" }), "cliche.png");
      const res = await fetch(`${baseUrl()}/patients/${patientId}/televersement`, {
        method: "POST",
        headers: { Cookie: doctor.cookieHeader(), "User-Agent": UA },
        body,
        redirect: "manual",
      });
      return probe(res);
    },
    status: 303,
    action: "image.upload",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "images.$imageId",
    name: "GET /images/:id",
    call: () => page(doctor, `/images/${images.view}`),
    status: 200,
    action: "image.read",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "images.$imageId",
    name: "POST /images/:id (erase)",
    call: () => form(doctor, `/images/${images.erasePage}`, { intent: "erase", confirm: "1" }),
    status: 303,
    action: "image.erase",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "images.$imageId.fichier",
    name: "GET /images/:id/fichier",
    call: () => page(doctor, `/images/${images.view}/fichier`),
    status: 200,
    action: "image.read",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "mon-dossier",
    name: "GET /mon-dossier",
    call: () => page(patient, "/mon-dossier"),
    status: 200,
    action: "patient.read",
    actor: () => patientUserId,
    patient: () => patientId,
  },
  {
    route: "mon-dossier",
    name: "POST /mon-dossier (grant research again)",
    call: () => form(patient, "/mon-dossier", { purpose: "research", granted: "true" }),
    status: 200,
    action: "consent.update",
    actor: () => patientUserId,
    patient: () => patientId,
    events: 2,
  },
  { route: "recherche", name: "GET /recherche", call: () => page(researcher, "/recherche"), status: 200, action: "research.view", actor: () => researcherId },
  {
    route: "recherche.images.$imageId",
    name: "GET /recherche/images/:id",
    call: () => page(researcher, `/recherche/images/${images.view}`),
    status: 200,
    action: "research.image",
    actor: () => researcherId,
    patient: () => patientId,
  },
  {
    route: "api.v1.images.$imageId.predictions",
    name: "POST /api/v1/images/:id/predictions (AI reading)",
    call: () => call("POST", `/api/v1/images/${images.view}/predictions`, doctorToken),
    status: 201,
    action: "image.analyse",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "api.v1.images.$imageId.predictions",
    name: "GET /api/v1/images/:id/predictions",
    call: () => call("GET", `/api/v1/images/${images.view}/predictions`, doctorToken),
    status: 200,
    action: "prediction.read",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "api.v1.predictions.$predictionId.heatmap",
    name: "GET /api/v1/predictions/:id/heatmap",
    call: () => call("GET", `/api/v1/predictions/${predictionId}/heatmap`, doctorToken),
    status: 200,
    action: "prediction.read",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "predictions.$predictionId.carte",
    name: "GET /predictions/:id/carte",
    call: () => page(doctor, `/predictions/${predictionId}/carte`),
    status: 200,
    action: "prediction.read",
    actor: () => doctorId,
    patient: () => patientId,
  },
  { route: "statistiques", name: "GET /statistiques", call: () => page(doctor, "/statistiques"), status: 200, action: "stats.view", actor: () => doctorId },
  {
    route: "statistiques",
    name: "GET /statistiques (researcher)",
    call: () => page(researcher, "/statistiques"),
    status: 200,
    action: "stats.view",
    actor: () => researcherId,
  },
  { route: "admin.audit._index", name: "GET /admin/audit", call: () => page(admin, "/admin/audit"), status: 200, action: "audit.read", actor: () => adminId },
  {
    route: "admin.audit._index",
    name: "GET /admin/audit (doctor: denied)",
    call: () => page(doctor, "/admin/audit"),
    status: 403,
    action: "audit.read",
    outcome: "denied",
    actor: () => doctorId,
  },
  {
    route: "admin.audit._index",
    name: "GET /admin/audit (anonymous: denied, sent to the login page)",
    call: () => page(new BrowserSession(), "/admin/audit"),
    status: 302,
    action: "audit.read",
    outcome: "denied",
    actor: () => null,
  },
  {
    route: "admin.audit._index",
    name: "GET /admin/audit?patient=… (the patient is named)",
    call: () => page(admin, `/admin/audit?patient=${patientId}`),
    status: 200,
    action: "audit.read",
    actor: () => adminId,
    patient: () => patientId,
  },
  {
    route: "admin.audit._index",
    name: "POST /admin/audit (verify the chain, then back to the page)",
    call: () => form(admin, "/admin/audit?index", { intent: "verify" }),
    status: 303,
    action: "audit.read",
    actor: () => adminId,
  },
  {
    route: "admin.audit.$eventId",
    name: "GET /admin/audit/:id",
    call: () => page(admin, `/admin/audit/${someEventId}`),
    status: 200,
    action: "audit.read",
    actor: () => adminId,
  },
  {
    route: "admin.audit.export",
    name: "GET /admin/audit/export",
    call: () => page(admin, `/admin/audit/export?format=csv&actor=${doctorId}`),
    status: 200,
    action: "audit.read",
    actor: () => adminId,
  },
  {
    route: "api.v1.tokens",
    name: "POST /api/v1/tokens",
    call: () => call("POST", "/api/v1/tokens", null, { email: "doctor@demo.nexus", password: DEMO_PASSWORD }),
    status: 201,
    action: "token.create",
    actor: () => doctorId,
  },
  {
    route: "api.v1.tokens",
    name: "POST /api/v1/tokens (body not JSON: denied)",
    call: async () =>
      probe(await fetch(`${baseUrl()}/api/v1/tokens`, { method: "POST", headers: { "Content-Type": "text/plain", "User-Agent": UA }, body: "doctor@demo.nexus" })),
    status: 415,
    action: "token.create",
    outcome: "denied",
    actor: () => null,
  },
  {
    route: "api.v1.tokens.current",
    name: "DELETE /api/v1/tokens/current",
    call: async () => call("DELETE", "/api/v1/tokens/current", await tokenFor("doctor@demo.nexus")),
    status: 204,
    action: "token.revoke",
    actor: () => doctorId,
  },
  { route: "api.v1.me", name: "GET /api/v1/me", call: () => call("GET", "/api/v1/me", doctorToken), status: 200, action: "account.self", actor: () => doctorId },
  {
    route: "api.v1.me",
    name: "GET /api/v1/me (no token: denied)",
    call: () => call("GET", "/api/v1/me", null),
    status: 401,
    action: "account.self",
    outcome: "denied",
    actor: () => null,
  },
  { route: "api.v1.patients", name: "GET /api/v1/patients", call: () => call("GET", "/api/v1/patients", doctorToken), status: 200, action: "patient.list", actor: () => doctorId },
  {
    route: "api.v1.patients",
    name: "POST /api/v1/patients",
    call: () => call("POST", "/api/v1/patients", doctorToken, { displayName: "Patiente API" }),
    status: 201,
    action: "patient.create",
    actor: () => doctorId,
  },
  {
    route: "api.v1.patients.$patientId",
    name: "DELETE /api/v1/patients/:id (erasure)",
    call: () => call("DELETE", `/api/v1/patients/${erasablePatientId}`, doctorToken),
    status: 200,
    action: "patient.erase",
    actor: () => doctorId,
    patient: () => erasablePatientId,
  },
  {
    route: "api.v1.patients.$patientId.images",
    name: "GET /api/v1/patients/:id/images",
    call: () => call("GET", `/api/v1/patients/${patientId}/images`, doctorToken),
    status: 200,
    action: "image.list",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "api.v1.patients.$patientId.images",
    name: "POST /api/v1/patients/:id/images",
    call: async () => probe(await uploadApi(doctorToken, patientId)),
    status: 201,
    action: "image.upload",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "api.v1.patients.$patientId.consents",
    name: "GET /api/v1/patients/:id/consents",
    call: () => call("GET", `/api/v1/patients/${patientId}/consents`, doctorToken),
    status: 200,
    action: "consent.read",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "api.v1.patients.$patientId.consents",
    name: "GET /api/v1/patients/:id/consents (researcher: denied)",
    call: () => call("GET", `/api/v1/patients/${patientId}/consents`, researcherToken),
    status: 403,
    action: "consent.read",
    outcome: "denied",
    actor: () => researcherId,
    patient: () => patientId,
  },
  {
    route: "api.v1.patients.$patientId.consents.$purpose",
    name: "PUT /api/v1/patients/:id/consents/research",
    call: () => call("PUT", `/api/v1/patients/${patientId}/consents/research`, patientToken, { granted: true }),
    status: 200,
    action: "consent.update",
    actor: () => patientUserId,
    patient: () => patientId,
  },
  {
    route: "api.v1.patients.$patientId.access-log",
    name: "GET /api/v1/patients/:id/access-log",
    call: () => call("GET", `/api/v1/patients/${patientId}/access-log`, patientToken),
    status: 200,
    action: "accessLog.read",
    actor: () => patientUserId,
    patient: () => patientId,
  },
  {
    route: "api.v1.images.$imageId",
    name: "GET /api/v1/images/:id",
    call: () => call("GET", `/api/v1/images/${images.view}`, doctorToken),
    status: 200,
    action: "image.read",
    actor: () => doctorId,
    patient: () => patientId,
  },
  {
    route: "api.v1.images.$imageId",
    name: "DELETE /api/v1/images/:id",
    call: () => call("DELETE", `/api/v1/images/${images.eraseApi}`, doctorToken),
    status: 204,
    action: "image.erase",
    actor: () => doctorId,
    patient: () => patientId,
  },
  { route: "api.v1.audit", name: "GET /api/v1/audit", call: () => call("GET", "/api/v1/audit?limit=5", adminToken), status: 200, action: "audit.read", actor: () => adminId },
  {
    route: "dicomweb.$",
    name: "GET /dicomweb/studies (QIDO-RS)",
    call: () => call("GET", "/dicomweb/studies?PatientID=nobody", doctorToken),
    status: 200,
    action: "dicom.search",
    actor: () => doctorId,
  },
  {
    route: "api.v1.machines",
    name: "GET /api/v1/machines",
    call: () => call("GET", "/api/v1/machines", adminToken),
    status: 200,
    action: "machine.list",
    actor: () => adminId,
  },
  {
    route: "api.v1.machines.$machineId.tokens",
    name: "POST /api/v1/machines/:unknown/tokens (404, an error event)",
    call: () => call("POST", `/api/v1/machines/${randomUUID()}/tokens`, adminToken),
    status: 404,
    action: "machine.token",
    outcome: "error",
    actor: () => adminId,
  },
  { route: "admin.machines", name: "GET /admin/machines", call: () => page(admin, "/admin/machines"), status: 200, action: "machine.list", actor: () => adminId },
  {
    route: "admin.machines",
    name: "POST /admin/machines token for an unknown machine (404, an error event)",
    call: () => form(admin, "/admin/machines", { intent: "token", machineId: randomUUID() }),
    status: 404,
    action: "machine.token",
    outcome: "error",
    actor: () => adminId,
    events: 2,
  },
  { route: "admin.envois", name: "GET /admin/envois", call: () => page(admin, "/admin/envois"), status: 200, action: "outbox.list", actor: () => adminId },
  {
    route: "admin.envois",
    name: "POST /admin/envois retry of an unknown entry (404, an error event)",
    call: () => form(admin, "/admin/envois", { intent: "retry", entryId: randomUUID() }),
    status: 404,
    action: "outbox.retry",
    outcome: "error",
    actor: () => adminId,
    events: 2,
  },
  { route: "dicom.a-rapprocher", name: "GET /dicom/a-rapprocher", call: () => page(doctor, "/dicom/a-rapprocher"), status: 200, action: "inbox.list", actor: () => doctorId },
  {
    route: "dicom.a-rapprocher",
    name: "POST /dicom/a-rapprocher reject of an unknown entry (404, an error event)",
    call: () => form(doctor, "/dicom/a-rapprocher", { intent: "reject", entryId: randomUUID(), confirm: "1" }),
    status: 404,
    action: "inbox.resolve",
    outcome: "error",
    actor: () => doctorId,
    events: 2,
  },
  {
    route: "api.v1.dicom-inbox",
    name: "GET /api/v1/dicom-inbox",
    call: () => call("GET", "/api/v1/dicom-inbox", doctorToken),
    status: 200,
    action: "inbox.list",
    actor: () => doctorId,
  },
  {
    route: "api.v1.dicom-inbox.$entryId",
    name: "POST /api/v1/dicom-inbox/:unknown (404, an error event)",
    call: () => call("POST", `/api/v1/dicom-inbox/${randomUUID()}`, doctorToken, { decision: "reject" }),
    status: 404,
    action: "inbox.resolve",
    outcome: "error",
    actor: () => doctorId,
  },
  {
    route: "api.v1.audit",
    name: "GET /api/v1/audit?actor=bad (400, an error event)",
    call: () => call("GET", "/api/v1/audit?actor=bad", adminToken),
    status: 400,
    action: "audit.read",
    outcome: "error",
    actor: () => adminId,
  },
  { route: "api.v1.audit.verify", name: "GET /api/v1/audit/verify", call: () => call("GET", "/api/v1/audit/verify", adminToken), status: 200, action: "audit.read", actor: () => adminId },
  {
    route: "api.v1.audit.export",
    name: "GET /api/v1/audit/export",
    call: () => call("GET", `/api/v1/audit/export?format=ndjson&patient=${patientId}`, adminToken),
    status: 200,
    action: "audit.read",
    actor: () => adminId,
    patient: () => patientId,
  },
  // Double reading (branch `reading`).
  ...(["first-reading", "second-reading"] as const).map((list) => ({
    route: `api.v1.worklists.${list}`,
    name: `GET /api/v1/worklists/${list}`,
    call: () => call("GET", `/api/v1/worklists/${list}`, doctorToken),
    status: 200,
    action: "worklist.read",
    actor: () => doctorId,
  })),
  {
    route: "api.v1.exams.$examId.readings",
    name: "POST /api/v1/exams/:id/readings",
    call: () => call("POST", `/api/v1/exams/${exams.api}/readings`, doctorToken, NORMAL),
    status: 201,
    action: "reading.create",
    actor: () => doctorId,
    patient: () => demoPatientId,
  },
  {
    route: "api.v1.exams.$examId.readings",
    name: "POST /api/v1/exams/:id/readings (ACR 7: 400)",
    call: () => call("POST", `/api/v1/exams/${exams.api}/readings`, doctor2Token, { breasts: { R: { acr: 7, density: "B" }, L: { acr: 1, density: "B" } } }),
    status: 400,
    action: "reading.create",
    outcome: "error",
    actor: () => doctor2Id,
    patient: () => demoPatientId,
  },
  {
    route: "api.v1.exams.$examId.readings",
    name: "POST /api/v1/exams/:id/readings (final exam: 409 wrong_state)",
    call: () => call("POST", `/api/v1/exams/${exams.final}/readings`, doctorToken, NORMAL),
    status: 409,
    action: "reading.create",
    outcome: "error",
    actor: () => doctorId,
    patient: () => demoPatientId,
  },
  {
    route: "api.v1.exams.$examId.letter",
    name: "GET /api/v1/exams/:id/letter (the woman)",
    call: () => call("GET", `/api/v1/exams/${exams.final}/letter`, demoPatientToken),
    status: 200,
    action: "letter.read",
    actor: () => demoPatientUserId,
    patient: () => demoPatientId,
  },
  {
    route: "api.v1.exams.$examId.letter",
    name: "GET /api/v1/exams/:id/letter?for=referrer",
    call: () => call("GET", `/api/v1/exams/${exams.final}/letter?for=referrer`, doctorToken),
    status: 200,
    action: "letter.referrer",
    actor: () => doctorId,
    patient: () => demoPatientId,
  },
  {
    route: "api.v1.exams.$examId.fhir",
    name: "GET /api/v1/exams/:id/fhir",
    call: () => call("GET", `/api/v1/exams/${exams.final}/fhir`, doctorToken),
    status: 200,
    action: "result.read",
    actor: () => doctorId,
    patient: () => demoPatientId,
  },
  {
    route: "api.v1.exams.$examId.sr",
    name: "GET /api/v1/exams/:id/sr",
    call: () => call("GET", `/api/v1/exams/${exams.final}/sr`, doctorToken),
    status: 200,
    action: "result.read",
    actor: () => doctorId,
    patient: () => demoPatientId,
  },
  {
    route: "api.v1.exams.$examId.ai.sr",
    name: "GET /api/v1/exams/:id/ai/sr (no AI on this exam: 404)",
    call: () => call("GET", `/api/v1/exams/${exams.final}/ai/sr`, doctorToken),
    status: 404,
    action: "prediction.read",
    outcome: "error",
    actor: () => doctorId,
    patient: () => demoPatientId,
  },
  {
    route: "api.v1.exams.$examId.ai.sr",
    name: "GET /api/v1/exams/:id/ai/sr (the patient: denied)",
    call: () => call("GET", `/api/v1/exams/${exams.final}/ai/sr`, demoPatientToken),
    status: 403,
    action: "prediction.read",
    outcome: "denied",
    actor: () => demoPatientUserId,
    patient: () => demoPatientId,
  },
  {
    route: "api.v1.outbox",
    name: "GET /api/v1/outbox",
    call: () => call("GET", "/api/v1/outbox", adminToken),
    status: 200,
    action: "outbox.list",
    actor: () => adminId,
  },
  {
    route: "api.v1.outbox.$entryId.retry",
    name: "POST /api/v1/outbox/:unknown/retry (404)",
    call: () => call("POST", `/api/v1/outbox/00000000-0000-4000-8000-000000000000/retry`, adminToken),
    status: 404,
    action: "outbox.retry",
    outcome: "error",
    actor: () => adminId,
  },
  { route: "lectures", name: "GET /lectures", call: () => page(doctor, "/lectures"), status: 200, action: "worklist.read", actor: () => doctorId },
  {
    route: "examens.$examId_.lecture",
    name: "GET /examens/:id/lecture",
    call: () => page(doctor, `/examens/${exams.page}/lecture`),
    status: 200,
    action: "reading.open",
    actor: () => doctorId,
    patient: () => demoPatientId,
  },
  {
    route: "examens.$examId_.lecture",
    name: "POST /examens/:id/lecture (no JavaScript: the action, then the page's read)",
    call: () => form(doctor, `/examens/${exams.page}/lecture`, { "R.acr": "1", "R.density": "B", "L.acr": "1", "L.density": "B" }),
    status: 201,
    action: "reading.create",
    actor: () => doctorId,
    patient: () => demoPatientId,
    events: 2,
  },
  {
    route: "examens.$examId_.courrier",
    name: "GET /examens/:id/courrier",
    call: () => page(doctor, `/examens/${exams.final}/courrier`),
    status: 200,
    action: "letter.read",
    actor: () => doctorId,
    patient: () => demoPatientId,
  },
  {
    route: "statistiques_.programme",
    name: "GET /statistiques/programme (admin)",
    call: () => page(admin, "/statistiques/programme"),
    status: 200,
    action: "programme.stats",
    actor: () => adminId,
  },
];

// Identity: second factor, forced password change, OpenID Connect.
CASES.push(
  {
    route: "compte_.double-authentification",
    name: "GET /compte/double-authentification",
    call: () => page(doctor, "/compte/double-authentification"),
    status: 200,
    action: "account.totp",
    actor: () => doctorId,
  },
  {
    route: "compte_.double-authentification",
    name: "POST /compte/double-authentification (malformed code)",
    call: () => form(doctor, "/compte/double-authentification", { intent: "confirm", code: "abc" }),
    status: 400,
    action: "account.totp",
    outcome: "error",
    actor: () => doctorId,
    events: 2,
  },
  {
    route: "api.v1.me.totp",
    name: "POST /api/v1/me/totp",
    call: () => call("POST", "/api/v1/me/totp", researcherToken),
    status: 201,
    action: "account.totp",
    actor: () => researcherId,
  },
  {
    route: "api.v1.me.totp.confirm",
    name: "POST /api/v1/me/totp/confirm (wrong code)",
    call: () => call("POST", "/api/v1/me/totp/confirm", researcherToken, { otp: "000000" }),
    status: 401,
    action: "account.totp",
    outcome: "denied",
    actor: () => researcherId,
  },
  {
    route: "connexion_.code",
    name: "POST /connexion/code (wrong code)",
    call: async () => {
      const s = new BrowserSession();
      await s.post("/connexion", { email: totpUser.email, password: totpUser.password });
      return probe(await s.post("/connexion/code", { code: "12345678901" }, { csrf: await s.csrf("/connexion/code"), headers: { "User-Agent": UA } }));
    },
    status: 401,
    action: "auth.otp",
    outcome: "denied",
    actor: () => totpUser.id,
  },
  {
    route: "compte_.nouveau-mot-de-passe",
    name: "POST /compte/nouveau-mot-de-passe (first sign-in with a temporary password)",
    call: async () => {
      const email = uniqueEmail("first");
      const created = await api("POST", "/api/v1/patients", { token: doctorToken, json: { displayName: "Première Connexion", email } });
      const s = await BrowserSession.login(email, created.body.account.temporaryPassword);
      const res = await s.post("/compte/nouveau-mot-de-passe", { next: "my-very-own-password", confirm: "my-very-own-password" }, { csrf: await s.csrf("/compte/nouveau-mot-de-passe"), headers: { "User-Agent": UA } });
      firstSignInUserId = (await me(await tokenFor(email, "my-very-own-password"))).id;
      return probe(res);
    },
    status: 302,
    action: "account.password",
    actor: () => firstSignInUserId,
  },
  {
    route: "connexion_.oidc",
    name: "POST /connexion/oidc (no CSRF token: denied)",
    call: async () => probe(await new BrowserSession().post("/connexion/oidc", {}, { csrf: null, headers: { "User-Agent": UA } })),
    status: 403,
    action: "auth.login",
    outcome: "denied",
    actor: () => null,
  },
  {
    route: "connexion_.oidc.retour",
    name: "GET /connexion/oidc/retour (no sign-in in progress: denied)",
    call: () => page(new BrowserSession(), "/connexion/oidc/retour?code=x&state=y"),
    status: 302,
    action: "auth.login",
    outcome: "denied",
    actor: () => null,
  },
);

/** Requests of audited routes that touch neither patient data nor accounts. */
const EXEMPT_REQUESTS: ExemptRequest[] = [
  { route: "connexion", name: "GET /connexion", call: () => page(new BrowserSession(), "/connexion"), reason: "the login form: nothing read but the visitor's own cookies" },
  { route: "deconnexion", name: "GET /deconnexion", call: () => page(doctor, "/deconnexion"), reason: "a redirect to the home page; logging out is a POST" },
  { route: "connexion_.code", name: "GET /connexion/code", call: () => page(new BrowserSession(), "/connexion/code"), reason: "no sign-in pending: a redirect to the login page" },
  {
    route: "compte_.nouveau-mot-de-passe",
    name: "GET /compte/nouveau-mot-de-passe (full session)",
    call: () => page(doctor, "/compte/nouveau-mot-de-passe"),
    reason: "only a session restricted to choosing a new password uses it: others are sent to /compte",
  },
  {
    route: "connexion_.oidc",
    name: "POST /connexion/oidc (no provider configured)",
    call: () => form(new BrowserSession(), "/connexion/oidc", {}),
    reason: "no identity provider configured: a redirect to the login page (tests/oidc.test.ts audits the real flow)",
  },
  {
    route: "patients.$patientId.televersement",
    name: "GET /patients/:id/televersement",
    call: () => page(doctor, `/patients/${patientId}/televersement`),
    reason: "a redirect to the home page; uploading is a POST",
  },
  {
    route: "patients.$patientId",
    name: "GET /patients/not-an-id",
    call: () => page(doctor, "/patients/not-an-id"),
    reason: "a value that cannot be an id names nothing: 404 before any lookup (app/http/params.server.ts)",
  },
  { route: "healthz", name: "GET /healthz", call: () => page(new BrowserSession(), "/healthz"), reason: EXEMPT_ROUTES.healthz! },
  { route: "readyz", name: "GET /readyz", call: () => page(new BrowserSession(), "/readyz"), reason: EXEMPT_ROUTES.readyz! },
  { route: "langue", name: "GET /langue", call: () => page(new BrowserSession(), "/langue?l=en&retour=/"), reason: EXEMPT_ROUTES.langue! },
  { route: "api.v1.$", name: "GET /api/v1/unknown", call: () => call("GET", "/api/v1/unknown", adminToken), reason: EXEMPT_ROUTES["api.v1.$"]! },
  { route: "$", name: "GET /nulle-part", call: () => page(doctor, "/nulle-part"), reason: EXEMPT_ROUTES.$! },
];

async function eventsOf(requestId: string) {
  const res = await api("GET", `/api/v1/audit?requestId=${encodeURIComponent(requestId)}&limit=10`, { token: adminToken });
  expect(res.status).toBe(200);
  return res.body.events as Record<string, any>[];
}

describe("audit completeness", () => {
  for (const c of CASES) {
    it(`${c.name} → ${c.events ?? 1} event(s)`, async () => {
      const { status, requestId } = await c.call();
      expect(status, c.name).toBe(c.status);
      expect(requestId, "every response carries X-Request-Id").toMatch(/^[0-9a-f-]{36}$/);
      const events = await eventsOf(requestId!);
      expect(events, `${c.name}: events with this request id`).toHaveLength(c.events ?? 1);
      if ((c.events ?? 1) === 0) return;
      // The first event is the request's own decision (a document POST adds the page's read after it).
      const e = events.at(-1)!;
      expect(e).toMatchObject({ action: c.action, outcome: c.outcome ?? "allowed", requestId });
      const actorId = c.actor();
      expect(e.actorId).toBe(actorId);
      if (actorId) {
        expect(e.actorRole).toMatch(/^(admin|doctor|patient|researcher)$/);
        // Recorded for every actor; shown to admins for staff only (a patient is not named).
        if (e.actorRole === "patient") expect(e.actorName).toBeNull();
        else expect(e.actorName).toBeTruthy();
      }
      if (c.patient) expect(e.patientId).toBe(c.patient());
      expect(e.purpose).toMatch(/^(TREAT|HRESCH|PATRQT|HOPERAT)$/);
      expect(e.ip).toMatch(/127\.0\.0\.1|::1/);
      expect(e.userAgent).toBe(UA);
      expect(Date.now() - Date.parse(e.at)).toBeLessThan(120_000);
      expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
      if ((c.outcome ?? "allowed") !== "allowed") expect(e.reason).toBeTruthy();
    });
  }

  for (const x of EXEMPT_REQUESTS) {
    it(`${x.name} → no event (${x.reason})`, async () => {
      const { requestId } = await x.call();
      expect(await eventsOf(requestId!)).toHaveLength(0);
    });
  }

  it("records the client address forwarded by the trusted proxy", async () => {
    const { requestId } = await call("GET", "/api/v1/me", doctorToken, undefined, { "X-Forwarded-For": "203.0.113.9" });
    const [e] = await eventsOf(requestId!);
    expect(e!.ip).toBe("203.0.113.9");
  });

  it("classifies every route module (a new route must be listed here)", () => {
    const routes = readdirSync("app/routes").map((f) => f.replace(/\.tsx?$/, ""));
    const classified = new Set([...CASES.map((c) => c.route), ...Object.keys(EXEMPT_ROUTES)]);
    expect(routes.filter((r) => !classified.has(r)), "route modules with no audited request and no exemption").toEqual([]);
  });
});

describe("one event per request from a browser with JavaScript", () => {
  // With JavaScript, Remix submits a form as a data request and reloads the page's data with separate requests:
  // the submission leaves exactly one event.
  it("POST /mon-dossier?_data=… → 1 event", async () => {
    const csrf = await patient.csrf();
    const res = await fetch(`${baseUrl()}/mon-dossier?_data=${encodeURIComponent("routes/mon-dossier")}`, {
      method: "POST",
      headers: { Cookie: patient.cookieHeader(), "Content-Type": "application/x-www-form-urlencoded", "User-Agent": UA },
      body: new URLSearchParams({ csrf, purpose: "research", granted: "true" }),
    });
    expect(res.status).toBe(200);
    const events = await eventsOf(res.headers.get("X-Request-Id")!);
    expect(events.map((e) => e.action)).toEqual(["consent.update"]);
  });

  it("POST /admin/comptes?_data=… → 1 event", async () => {
    const csrf = await admin.csrf();
    const res = await fetch(`${baseUrl()}/admin/comptes?_data=${encodeURIComponent("routes/admin.comptes")}`, {
      method: "POST",
      headers: { Cookie: admin.cookieHeader(), "Content-Type": "application/x-www-form-urlencoded", "User-Agent": UA },
      body: new URLSearchParams({ csrf, intent: "create", name: "Dr JS", email: uniqueEmail("doctor"), role: "doctor", password: "correct-horse-battery" }),
    });
    expect([200, 201]).toContain(res.status);
    const events = await eventsOf(res.headers.get("X-Request-Id")!);
    expect(events.map((e) => e.action)).toEqual(["account.create"]);
  });
});
