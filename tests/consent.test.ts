/**
 * Consent and zero-trust access (issue 4): consent endpoints, the access matrix of consent-dependent routes for each
 * consent state (granted, revoked, never given), the revocation race, the patient's access log and the
 * pseudonymised researcher view.
 */
import { randomUUID } from "node:crypto";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { createAccount, createPatient } from "./helpers/fixtures";
import { api, baseUrl, BrowserSession, tokenFor } from "./helpers/http";

type ConsentSetup = "granted" | "revoked" | "never";

const jpeg = (shade: number) =>
  sharp({ create: { width: 64, height: 48, channels: 3, background: { r: shade, g: shade, b: shade } } }).jpeg().toBuffer();

async function upload(token: string, patientId: string, bytes: Buffer): Promise<string> {
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(bytes)], { type: "image/jpeg" }), "examen.jpg");
  const res = await fetch(`${baseUrl()}/api/v1/patients/${patientId}/images`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
    body: form,
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

interface World {
  doctorToken: string;
  otherDoctorToken: string;
  adminToken: string;
  researcherToken: string;
  researcher: BrowserSession;
  /** One patient per consent state of both `care` and `research`, each with an account and one image. */
  patients: Record<ConsentSetup, { id: string; token: string; imageId: string; name: string }>;
  doctor: BrowserSession;
}
const w = {} as World;

beforeAll(async () => {
  const doctor = await createAccount("doctor");
  w.doctorToken = await tokenFor(doctor.email, doctor.password);
  w.doctor = await BrowserSession.login(doctor.email, doctor.password);
  const other = await createAccount("doctor");
  w.otherDoctorToken = await tokenFor(other.email, other.password);
  w.adminToken = await tokenFor("admin@demo.nexus");
  w.researcherToken = await tokenFor("researcher@demo.nexus");
  w.researcher = await BrowserSession.login("researcher@demo.nexus");
  w.patients = {} as World["patients"];
  for (const state of ["granted", "revoked", "never"] as const) {
    const name = `Consentement ${state} ${randomUUID().slice(0, 6)}`;
    const consents = state === "never" ? undefined : { care: true, research: true };
    const created = await createPatient(w.doctorToken, { displayName: name, email: `${state}-${randomUUID().slice(0, 6)}@test.nexus`, consents });
    const token = await tokenFor(created.account!.email, created.account!.password);
    const imageId = await upload(w.doctorToken, created.id, await jpeg(100));
    if (state === "revoked") {
      for (const purpose of ["care", "research"]) {
        const res = await api("PUT", `/api/v1/patients/${created.id}/consents/${purpose}`, { token, json: { granted: false } });
        expect(res.status).toBe(200);
      }
    }
    w.patients[state] = { id: created.id, token, imageId, name };
  }
});

describe("consent endpoints", () => {
  it("gives the live state to the patient and the care team only", async () => {
    const p = w.patients.granted;
    const mine = await api("GET", `/api/v1/patients/${p.id}/consents`, { token: p.token });
    expect(mine.status).toBe(200);
    expect(mine.body.care).toMatchObject({ granted: true });
    expect(mine.body.ai_analysis).toEqual({ granted: false, updatedAt: null });
    expect((await api("GET", `/api/v1/patients/${p.id}/consents`, { token: w.doctorToken })).status).toBe(200);
    for (const token of [w.otherDoctorToken, w.adminToken, w.researcherToken, w.patients.never.token]) {
      expect((await api("GET", `/api/v1/patients/${p.id}/consents`, { token })).status).toBe(403);
    }
    expect((await api("GET", `/api/v1/patients/${p.id}/consents`)).status).toBe(401);
  });

  it("lets only the patient change a purpose, and validates purpose and body", async () => {
    const p = w.patients.never;
    const put = (token: string | null, purpose: string, json: unknown) =>
      api("PUT", `/api/v1/patients/${p.id}/consents/${purpose}`, { token, json });
    const granted = await put(p.token, "ai_analysis", { granted: true });
    expect(granted.status).toBe(200);
    expect(granted.body).toMatchObject({ purpose: "ai_analysis", granted: true });
    expect((await put(p.token, "ai_analysis", { granted: false })).body.granted).toBe(false);
    expect((await put(p.token, "marketing", { granted: true })).status).toBe(400);
    expect((await put(p.token, "care", { granted: "yes" })).status).toBe(400);
    expect((await put(p.token, "care", {})).status).toBe(400);
    for (const token of [w.doctorToken, w.adminToken, w.researcherToken, w.patients.granted.token]) {
      expect((await put(token, "care", { granted: true })).status).toBe(403);
    }
    expect((await put(null, "care", { granted: true })).status).toBe(401);
  });
});

describe("the doctor's patient list", () => {
  it("shows each patient's live consent state, purpose by purpose", async () => {
    const page = await w.doctor.get("/patients");
    expect(page.status).toBe(200);
    const stateOf = (name: string, purpose: string) => {
      const row = page.html.slice(page.html.indexOf(name));
      // React separates the label's two text nodes with an empty comment.
      const item = new RegExp(`data-purpose="${purpose}"[^>]*>[^<]*<span class="sr-only"> : (?:<!-- -->)?([^<]+)</span>`).exec(row);
      return item?.[1];
    };
    expect(stateOf(w.patients.granted.name, "care")).toBe("accordé");
    expect(stateOf(w.patients.granted.name, "research")).toBe("accordé");
    expect(stateOf(w.patients.granted.name, "ai_analysis")).toBe("jamais donné");
    expect(stateOf(w.patients.revoked.name, "care")).toBe("retiré");
    expect(stateOf(w.patients.never.name, "care")).toBe("jamais donné");
  });
});

describe("access matrix × consent state", () => {
  const cases: { name: string; expected: Record<ConsentSetup, number>; call: (p: World["patients"][ConsentSetup]) => Promise<number> }[] = [
    {
      name: "doctor of the care team reads the image bytes (needs care)",
      expected: { granted: 200, revoked: 403, never: 403 },
      call: async (p) => (await api("GET", `/api/v1/images/${p.imageId}`, { token: w.doctorToken })).status,
    },
    {
      name: "doctor of the care team lists the images (no consent needed: metadata only)",
      expected: { granted: 200, revoked: 200, never: 200 },
      call: async (p) => (await api("GET", `/api/v1/patients/${p.id}/images`, { token: w.doctorToken })).status,
    },
    {
      name: "doctor of the care team uploads (care of the patient)",
      expected: { granted: 201, revoked: 201, never: 201 },
      call: async (p) => {
        const form = new FormData();
        form.append("file", new Blob([new Uint8Array(await jpeg(30))], { type: "image/jpeg" }), "x.jpg");
        return (await fetch(`${baseUrl()}/api/v1/patients/${p.id}/images`, { method: "POST", headers: { Authorization: `Bearer ${w.doctorToken}` }, body: form })).status;
      },
    },
    {
      name: "doctor outside the care team reads the image",
      expected: { granted: 403, revoked: 403, never: 403 },
      call: async (p) => (await api("GET", `/api/v1/images/${p.imageId}`, { token: w.otherDoctorToken })).status,
    },
    {
      name: "the patient reads their own image (consent governs others, not the patient)",
      expected: { granted: 200, revoked: 200, never: 200 },
      call: async (p) => (await api("GET", `/api/v1/images/${p.imageId}`, { token: p.token })).status,
    },
    {
      name: "another patient reads the image",
      expected: { granted: 403, revoked: 403, never: 403 },
      call: async (p) => (await api("GET", `/api/v1/images/${p.imageId}`, { token: p === w.patients.granted ? w.patients.never.token : w.patients.granted.token })).status,
    },
    {
      name: "admin reads the image bytes (never medical content)",
      expected: { granted: 403, revoked: 403, never: 403 },
      call: async (p) => (await api("GET", `/api/v1/images/${p.imageId}`, { token: w.adminToken })).status,
    },
    {
      name: "researcher reads the original bytes through the API",
      expected: { granted: 403, revoked: 403, never: 403 },
      call: async (p) => (await api("GET", `/api/v1/images/${p.imageId}`, { token: w.researcherToken })).status,
    },
    {
      name: "researcher sees the pseudonymised rendering (needs research)",
      expected: { granted: 200, revoked: 403, never: 403 },
      call: async (p) => (await w.researcher.get(`/recherche/images/${p.imageId}`)).status,
    },
    {
      name: "the patient reads their access log; the doctor may not",
      expected: { granted: 200, revoked: 200, never: 200 },
      call: async (p) => {
        expect((await api("GET", `/api/v1/patients/${p.id}/access-log`, { token: w.doctorToken })).status).toBe(403);
        return (await api("GET", `/api/v1/patients/${p.id}/access-log`, { token: p.token })).status;
      },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const got = {} as Record<ConsentSetup, number>;
      for (const state of ["granted", "revoked", "never"] as const) got[state] = await c.call(w.patients[state]);
      expect(got).toEqual(c.expected);
    });
  }

  it("says why: revoked and never-given consent are refused with different reasons", async () => {
    const revoked = await api("GET", `/api/v1/images/${w.patients.revoked.imageId}`, { token: w.doctorToken });
    expect(revoked.body.error.message).toMatch(/retiré/);
    const never = await api("GET", `/api/v1/images/${w.patients.never.imageId}`, { token: w.doctorToken });
    expect(never.body.error.message).toMatch(/pas donné/);
  });
});

describe("revocation race", () => {
  it("no read that starts after the revocation has committed succeeds", async () => {
    const created = await createPatient(w.doctorToken, { displayName: "Course Révocation", email: `race-${randomUUID().slice(0, 6)}@test.nexus`, consents: { care: true } });
    const patientToken = await tokenFor(created.account!.email, created.account!.password);
    const imageId = await upload(w.doctorToken, created.id, await jpeg(200));
    const reads: { start: number; status: number }[] = [];
    let committedAt = Infinity;
    let stop = false;
    const reader = async () => {
      while (!stop) {
        const start = performance.now();
        const res = await fetch(`${baseUrl()}/api/v1/images/${imageId}`, { headers: { Authorization: `Bearer ${w.doctorToken}` } });
        await res.arrayBuffer();
        reads.push({ start, status: res.status });
      }
    };
    const readers = Array.from({ length: 8 }, reader);
    await new Promise((r) => setTimeout(r, 400));
    const revoke = await api("PUT", `/api/v1/patients/${created.id}/consents/care`, { token: patientToken, json: { granted: false } });
    committedAt = performance.now(); // the answer came after the commit
    expect(revoke.status).toBe(200);
    await new Promise((r) => setTimeout(r, 600));
    stop = true;
    await Promise.all(readers);

    const before = reads.filter((r) => r.start < committedAt);
    const after = reads.filter((r) => r.start > committedAt);
    // The test only means something if reads ran on both sides of the commit.
    expect(before.filter((r) => r.status === 200).length).toBeGreaterThan(5);
    expect(after.length).toBeGreaterThan(5);
    expect(after.filter((r) => r.status === 200)).toEqual([]);
    expect(new Set(after.map((r) => r.status))).toEqual(new Set([403]));
  });
});

describe("the patient's access log", () => {
  it("shows who accessed the data, with role, name, action and outcome, denials included", async () => {
    const p = w.patients.revoked;
    await api("GET", `/api/v1/images/${p.imageId}`, { token: w.doctorToken }); // denied: consent revoked
    const log = await api("GET", `/api/v1/patients/${p.id}/access-log`, { token: p.token });
    expect(log.status).toBe(200);
    const denied = log.body.events.find((e: { action: string; outcome: string }) => e.action === "image.read" && e.outcome === "denied");
    expect(denied).toMatchObject({ actorRole: "doctor", actorName: "Test doctor" });
    expect(log.body.events.some((e: { action: string; outcome: string }) => e.action === "image.upload" && e.outcome === "allowed")).toBe(true);
    for (const e of log.body.events) expect(Object.keys(e).sort()).toEqual(["action", "actorName", "actorRole", "at", "outcome"]);
  });

  it("shows the log and the grant/revoke buttons in the portal, and a revocation there takes effect at once", async () => {
    const created = await createPatient(w.doctorToken, { displayName: "Portail Patiente", email: `portal-${randomUUID().slice(0, 6)}@test.nexus`, consents: { care: true } });
    const imageId = await upload(w.doctorToken, created.id, await jpeg(80));
    const session = await BrowserSession.login(created.account!.email, created.account!.password);
    const page = await session.get("/mon-dossier");
    expect(page.html).toContain("Qui a accédé à mes données");
    expect(page.html).toContain("Ajout d&#x27;une mammographie");
    expect((await api("GET", `/api/v1/images/${imageId}`, { token: w.doctorToken })).status).toBe(200);
    const revoke = await session.post("/mon-dossier", { purpose: "care", granted: "false", confirm: "1" });
    expect(revoke.status).toBe(200);
    expect(revoke.html).toContain("Votre choix est enregistré");
    expect((await api("GET", `/api/v1/images/${imageId}`, { token: w.doctorToken })).status).toBe(403);
    const history = (await session.get("/mon-dossier")).html.replaceAll("<!-- -->", "");
    expect(history).toContain("soins : accordé → retiré (Patient, par le patient)");
  });
});

describe("researcher view", () => {
  it("lists only consented patients, by pseudonym, without names, and renders images without metadata", async () => {
    const page = await w.researcher.get("/recherche");
    expect(page.status).toBe(200);
    for (const state of ["granted", "revoked", "never"] as const) {
      const shown = page.html.includes(w.patients[state].imageId);
      expect(shown, state).toBe(state === "granted");
      expect(page.html).not.toContain(w.patients[state].name);
    }
    expect(page.html).toMatch(/data-pseudonym="P-[0-9A-F]{10}"/);
    const png = await w.researcher.get(`/recherche/images/${w.patients.granted.imageId}`);
    expect(png.headers.get("Content-Type")).toBe("image/png");
  });
});
