/**
 * What people saw (hardening issue, items 12–15), against the running server like a browser without JavaScript:
 * languages and raw values, errors that say what happened, destructive actions that confirm, and the admin's
 * "who accessed patient X" search with its CSV export.
 */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { api, baseUrl, BrowserSession, tokenFor } from "./helpers/http";
import { createPatient, uniqueEmail } from "./helpers/fixtures";
import { dicom, jpeg } from "./helpers/images";

async function upload(token: string, patientId: string, bytes: Buffer, name: string, type: string): Promise<string> {
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(bytes)], { type }), name);
  const res = await fetch(`${baseUrl()}/api/v1/patients/${patientId}/images`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** The visible text of a page (tags and React's comment markers removed). */
const textOf = (html: string) => html.replace(/<!-- -->/g, "").replace(/<script[\s\S]*?<\/script>/g, "").replace(/<[^>]+>/g, " ").replace(/&#x27;/g, "'").replace(/\s+/g, " ");

let doctorToken: string;
let doctor: BrowserSession;
let patient: { id: string; email: string; password: string; name: string };
let dicomId: string;

beforeAll(async () => {
  doctorToken = await tokenFor("doctor@demo.nexus");
  doctor = await BrowserSession.login("doctor@demo.nexus");
  const name = `Quiroga ${randomUUID().slice(0, 6)}`;
  const created = await createPatient(doctorToken, {
    displayName: name,
    email: uniqueEmail("saw"),
    consents: { care: true, ai_analysis: true, research: false },
  });
  patient = { id: created.id, email: created.account!.email, password: created.account!.password, name };
  // The header names her (the identity check compares it with the record).
  dicomId = await upload(doctorToken, created.id, dicom({ rows: 64, columns: 48, studyDate: "20260310", patientName: name }), "cc.dcm", "application/dicom");
  expect((await api("POST", `/api/v1/images/${dicomId}/predictions`, { token: doctorToken })).status).toBe(201);
  expect((await doctor.get(`/patients/${created.id}`)).status).toBe(200);
}, 60_000);

describe("11. the patient's access log", () => {
  it("is paged by keyset links that work without JavaScript, in a named, focusable scroll region", async () => {
    for (let i = 0; i < 25; i++) await api("GET", `/api/v1/patients/${patient.id}/consents`, { token: doctorToken });
    const session = await BrowserSession.login(patient.email, patient.password);
    const first = await session.get("/mon-dossier");
    const rowsOf = (html: string) => /<table[^>]*data-testid="access-log"[\s\S]*?<\/table>/.exec(html)![0].match(/<tr>/g)!.length - 1;
    expect(rowsOf(first.html)).toBe(20);
    expect(first.html).toMatch(/role="region" aria-label="Qui a accédé à mes données" tabindex="0"/);
    const next = /href="(\/mon-dossier\?journal=(\d+)#journal)"/.exec(first.html);
    expect(next).not.toBeNull();
    const second = await session.get(next![1]!.replace(/#.*/, ""));
    expect(second.status).toBe(200);
    expect(rowsOf(second.html)).toBeGreaterThan(0);
    expect(second.html).toContain('href="/mon-dossier#journal"');
    // Older pages hold older events only: keyset paging never repeats a row.
    const cursor = Number(next![2]);
    const events = await api("GET", `/api/v1/audit?patient=${patient.id}&limit=500`, { token: await tokenFor("admin@demo.nexus") });
    const ids = events.body.events.map((e: { id: number }) => e.id);
    expect(ids.filter((id: number) => id < cursor).length).toBeGreaterThanOrEqual(rowsOf(second.html));
  });
});

describe("12. languages and raw values", () => {
  it("shows French field messages for a French form, never zod's English", async () => {
    const res = await doctor.post("/patients/nouveau", {});
    expect(res.status).toBe(400);
    const text = textOf(res.html);
    expect(text).not.toMatch(/Invalid input|expected string|received undefined/);
    expect(text).toContain("Ce champ est obligatoire.");
  });

  it("shows the same form's messages in English on an English page", async () => {
    const res = await doctor.post("/patients/nouveau", { displayName: "x" }, { headers: { Cookie: `${doctor.cookieHeader()}; nexus_lang=en` } });
    expect(res.status).toBe(400);
    expect(textOf(res.html)).toContain("The name must be at least 2 characters long.");
  });

  it("shows no MIME type, raw DICOM date, transfer-syntax UID or dot decimal in French", async () => {
    const page = await doctor.get(`/images/${dicomId}`);
    expect(page.status).toBe(200);
    const text = textOf(page.html);
    expect(text).not.toContain("application/dicom");
    expect(text).not.toContain("20260310");
    expect(text).not.toMatch(/1\.2\.840\.10008/);
    expect(text).toContain("10 mars 2026");
    expect(text).toContain("Explicite petit-boutiste");
    expect(text).toMatch(/\d,\d Ko/);
    expect(text).toMatch(/\d+,\d\s%/);
    expect(text).not.toMatch(/\d+\.\d\s?%/);
  });

  it("shows an English page wholly in English: units, the demo-model warning, the title", async () => {
    const page = await doctor.get(`/images/${dicomId}`, { Cookie: `${doctor.cookieHeader()}; nexus_lang=en` });
    const text = textOf(page.html);
    expect(page.html).toContain("<title>Mammogram — Nexus</title>");
    expect(text).toMatch(/\d\.\d kB/);
    expect(text).not.toMatch(/ Ko\b| Mo\b/);
    expect(text).toContain("demonstration model — not clinically validated");
    expect(text).not.toContain("modèle de démonstration");
    expect(text).toContain("10 March 2026");
  });

  it("says a login failure in English on an English page", async () => {
    const visitor = new BrowserSession();
    visitor.cookies.set("nexus_lang", "en");
    const res = await visitor.post("/connexion", { email: uniqueEmail("nobody"), password: "not the password" }, { csrf: await visitor.csrf("/connexion") });
    expect(res.status).toBe(401);
    expect(textOf(res.html)).toContain("Wrong e-mail address or password.");
    expect(res.html).toContain("<title>Log in — Nexus</title>");
  });

  it("stores the refusal's code in the audit trail and shows it translated", async () => {
    const other = await createPatient(doctorToken, { displayName: "Code Motif", consents: {} });
    const res = await api("GET", `/api/v1/patients/${other.id}/consents`, { token: await tokenFor("researcher@demo.nexus") });
    expect(res.status).toBe(403);
    // The API still says why in French…
    expect(res.body.error.message).toBe("Votre rôle ne permet pas cette action.");
    const admin = await tokenFor("admin@demo.nexus");
    const events = await api("GET", `/api/v1/audit?requestId=${res.headers.get("X-Request-Id")}`, { token: admin });
    // …and the trail holds the code, translated where it is read.
    expect(events.body.events[0].reason).toBe("policy.role");
    const session = await BrowserSession.login("admin@demo.nexus");
    const fr = textOf((await session.get(`/admin/audit/${events.body.events[0].id}`)).html);
    expect(fr).toContain("Votre rôle ne permet pas cette action.");
    const en = textOf((await session.get(`/admin/audit/${events.body.events[0].id}`, { Cookie: `${session.cookieHeader()}; nexus_lang=en` })).html);
    expect(en).toContain("Your role does not allow this action.");
  });
});

describe("13. errors that say what happened", () => {
  it("answers file, heatmap and export links with an error page, never raw JSON", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus");
    const cases: [BrowserSession, string, number, string][] = [
      [doctor, `/images/${randomUUID()}/fichier`, 404, "Page introuvable"],
      [doctor, `/predictions/${randomUUID()}/carte`, 403, "Accès refusé"],
      [admin, `/images/${dicomId}/fichier`, 403, "Accès refusé"],
      [admin, "/admin/audit/export?format=xml", 400, "Demande invalide"],
      [doctor, "/admin/audit/export?format=csv", 403, "Action réservée aux administrateurs."],
    ];
    for (const [session, path, status, words] of cases) {
      const res = await session.get(path);
      expect(res.status, path).toBe(status);
      expect(res.headers.get("Content-Type"), path).toMatch(/^text\/html/);
      expect(res.html, path).not.toContain("Unexpected Server Error");
      expect(textOf(res.html), path).toContain(words);
    }
    const en = await doctor.get(`/images/${randomUUID()}/fichier`, { Cookie: `${doctor.cookieHeader()}; nexus_lang=en` });
    expect(textOf(en.html)).toContain("Page not found");
  });

  it("says 'log in to continue' on a first visit to a deep link, and 'expired' only for a dead session", async () => {
    const visitor = new BrowserSession();
    const first = await visitor.get(`/patients/${patient.id}`);
    expect(first.status).toBe(302);
    const login = await visitor.get(first.headers.get("Location")!);
    expect(textOf(login.html)).toContain("Connectez-vous pour continuer");
    expect(textOf(login.html)).not.toContain("expiré");

    const stale = new BrowserSession();
    stale.cookies.set("nexus_session", "an-ended-session");
    const again = await stale.get(`/patients/${patient.id}`);
    expect(again.headers.get("Location")).toContain("expiree=1");
    expect(textOf((await stale.get(again.headers.get("Location")!)).html)).toContain("Votre session a expiré");
  });

  it("answers an unknown image with a 404 page that says so, in the reader's language", async () => {
    const res = await doctor.get(`/images/${randomUUID()}`);
    expect(res.status).toBe(404);
    const text = textOf(res.html);
    expect(text).toContain("Page introuvable");
    expect(text).not.toContain("Votre rôle ne permet pas cette action.");
    const unknownUrl = await doctor.get("/nulle-part", { Cookie: `${doctor.cookieHeader()}; nexus_lang=en` });
    expect(unknownUrl.status).toBe(404);
    expect(textOf(unknownUrl.html)).toContain("This address matches no page or resource");
    expect(unknownUrl.html).toContain("<title>Page not found — Nexus</title>");
    expect(unknownUrl.html.match(/<title>/g)).toHaveLength(1);
  });
});

describe("14. destructive actions confirm, without JavaScript", () => {
  it("withdraws a consent only after the confirmation step, which explains what it changes", async () => {
    const session = await BrowserSession.login(patient.email, patient.password);
    const unconfirmed = await session.post("/mon-dossier", { purpose: "ai_analysis", granted: "false" });
    expect(unconfirmed.status).toBe(303);
    expect(unconfirmed.headers.get("Location")).toContain("retirer=ai_analysis");
    const still = await api("GET", `/api/v1/patients/${patient.id}/consents`, { token: await tokenFor(patient.email, patient.password) });
    expect(still.body.ai_analysis.granted).toBe(true);
    const step = textOf((await session.get("/mon-dossier?retirer=ai_analysis")).html);
    expect(step).toContain("Aucune nouvelle analyse IA de vos images ne sera faite.");
    expect(step).toContain("Confirmer le retrait");
    const done = await session.post("/mon-dossier", { purpose: "ai_analysis", granted: "false", confirm: "1" });
    expect(done.status).toBe(200);
    expect(textOf(done.html)).toContain("Votre choix est enregistré");
  });

  it("erases an image only after the confirmation step", async () => {
    const imageId = await upload(doctorToken, patient.id, await jpeg(40, 30), "a.jpg", "image/jpeg");
    const unconfirmed = await doctor.post(`/images/${imageId}`, { intent: "erase" });
    expect(unconfirmed.status).toBe(303);
    expect(unconfirmed.headers.get("Location")).toContain("effacer=1");
    expect((await api("GET", `/api/v1/images/${imageId}`, { token: doctorToken })).status).toBe(200);
    const step = textOf((await doctor.get(`/images/${imageId}?effacer=1`)).html);
    expect(step).toContain("Cette action est irréversible.");
    const done = await doctor.post(`/images/${imageId}`, { intent: "erase", confirm: "1" });
    expect(done.status).toBe(303);
    expect((await api("GET", `/api/v1/images/${imageId}`, { token: doctorToken })).status).not.toBe(200);
  });

  it("disables an account only after the confirmation step, which names it", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus");
    const email = uniqueEmail("confirm");
    await admin.post("/admin/comptes", { intent: "create", name: "Dr Confirmation", email, role: "doctor", password: "correct-horse-battery" });
    const token = await tokenFor(email, "correct-horse-battery");
    const me = await api<{ id: string }>("GET", "/api/v1/me", { token });
    const unconfirmed = await admin.post("/admin/comptes", { intent: "disable", userId: me.body.id });
    expect(unconfirmed.status).toBe(303);
    expect((await api("GET", "/api/v1/me", { token })).status).toBe(200);
    const step = textOf((await admin.get(unconfirmed.headers.get("Location")!.replace(/#.*/, ""))).html);
    expect(step).toContain(`Dr Confirmation (${email})`);
    expect(step).toContain("ne pourra plus se connecter");
    expect((await admin.post("/admin/comptes", { intent: "disable", userId: me.body.id, confirm: "1" })).status).toBe(200);
    expect((await api("GET", "/api/v1/me", { token })).status).toBe(401);
  });

  it("empties the new-patient form after a creation", async () => {
    const name = `Formulaire Vide ${randomUUID().slice(0, 6)}`;
    const res = await doctor.post("/patients/nouveau", { displayName: name });
    expect(res.status).toBe(201);
    expect(textOf(res.html)).toContain("Patient créé.");
    expect(res.html).not.toContain(`value="${name}"`);
  });

  it("hides the upload form and the image links once the patient withdraws care", async () => {
    const created = await createPatient(doctorToken, { displayName: "Soins Retirés", email: uniqueEmail("care"), consents: { care: true, ai_analysis: true } });
    const imageId = await upload(doctorToken, created.id, await jpeg(40, 30), "b.jpg", "image/jpeg");
    expect((await api("POST", `/api/v1/images/${imageId}/predictions`, { token: doctorToken })).status).toBe(201);
    const before = await doctor.get(`/patients/${created.id}`);
    expect(before.html).toContain('name="file"');
    expect(before.html).toContain(`href="/images/${imageId}"`);
    const patientToken = await tokenFor(created.account!.email, created.account!.password);
    expect((await api("PUT", `/api/v1/patients/${created.id}/consents/care`, { token: patientToken, json: { granted: false } })).status).toBe(200);
    const after = await doctor.get(`/patients/${created.id}`);
    expect(after.status).toBe(200);
    expect(after.html).not.toContain('name="file"');
    expect(after.html).not.toContain(`href="/images/${imageId}"`);
    expect(textOf(after.html)).toContain("Le patient a retiré son consentement aux soins");
  });
});

describe("15. who accessed patient X last week", () => {
  it("filters by patient name, actor name or e-mail, and the action's French label; shows names", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus");
    const name = patient.name;
    const doctorName = "Claire Martin";
    for (const query of [
      `patient=${encodeURIComponent(name)}`,
      `patient=${encodeURIComponent(name.toLowerCase())}&actor=${encodeURIComponent(doctorName)}`,
      `patient=${encodeURIComponent(name)}&actor=doctor%40demo.nexus&action=${encodeURIComponent("Consultation du dossier")}`,
    ]) {
      const page = await admin.get(`/admin/audit?${query}`);
      expect(page.status, query).toBe(200);
      const rows = [...page.html.matchAll(/<tr data-event-id="(\d+)"/g)];
      expect(rows.length, query).toBeGreaterThan(0);
      expect(textOf(page.html), query).toContain(name);
      expect(page.html, query).not.toMatch(new RegExp(`>${patient.id.slice(0, 8)}…<`));
    }
    const byLabel = await admin.get(`/admin/audit?patient=${encodeURIComponent(name)}&action=${encodeURIComponent("Consultation du dossier")}`);
    for (const m of byLabel.html.matchAll(/<tr data-event-id="\d+"[\s\S]*?<\/tr>/g)) expect(m[0]).toContain("Consultation du dossier");
  });

  it("finds a patient by her IPP too (the hospital's id, any case)", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus");
    const ipp = `IPP-AUDIT-${randomUUID().slice(0, 6).toUpperCase()}`;
    const created = await api("POST", "/api/v1/patients", { token: doctorToken, json: { displayName: "Recherche Par IPP", ipp } });
    expect(created.status).toBe(201);
    expect((await api("GET", `/api/v1/patients/${created.body.id}`, { token: doctorToken })).status).toBe(200);
    const page = await admin.get(`/admin/audit?patient=${encodeURIComponent(ipp.toLowerCase())}`);
    expect(page.status).toBe(200);
    const rows = [...page.html.matchAll(/<tr data-event-id="\d+"[\s\S]*?<\/tr>/g)];
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(textOf(row[0])).toContain("Recherche Par IPP");
  });

  it("lists the choices when a name matches several patients, and says when none does", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus");
    const tag = randomUUID().slice(0, 6);
    const a = await createPatient(doctorToken, { displayName: `Homonyme ${tag} Anne` });
    const b = await createPatient(doctorToken, { displayName: `Homonyme ${tag} Berthe` });
    const page = await admin.get(`/admin/audit?patient=${encodeURIComponent(`Homonyme ${tag}`)}`);
    expect(page.status).toBe(400);
    expect(page.html).toContain(`patient=${a.id}`);
    expect(page.html).toContain(`patient=${b.id}`);
    const none = await admin.get(`/admin/audit?patient=${encodeURIComponent(`Personne ${tag}`)}`);
    expect(none.status).toBe(400);
    expect(textOf(none.html)).toContain("Aucun patient ne correspond");
  });

  it("exports CSV for French spreadsheets (BOM, `;`, French headers), and English on request", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus");
    const fr = await admin.get(`/admin/audit/export?format=csv&patient=${patient.id}`);
    expect(fr.status).toBe(200);
    const raw = await fetch(`${baseUrl()}/admin/audit/export?format=csv&patient=${patient.id}`, { headers: { Cookie: admin.cookieHeader() } });
    expect([...new Uint8Array(await raw.arrayBuffer()).slice(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const [header, first] = fr.html.replace(/^\uFEFF/, "").split("\r\n");
    expect(header!.split(";")).toHaveLength(17);
    expect(header).toMatch(/^n°;date \(UTC\);identifiant de l'acteur;/);
    expect(first!.split(";")[8]).toBe(patient.id);
    const en = await admin.get(`/admin/audit/export?format=csv&patient=${patient.id}&lang=en`);
    expect(en.html.replace(/^\uFEFF/, "").split("\r\n")[0]).toMatch(/^id,at,actor_id,/);
    const enUi = await admin.get(`/admin/audit/export?format=csv&patient=${patient.id}`, { Cookie: `${admin.cookieHeader()}; nexus_lang=en` });
    expect(enUi.html.replace(/^\uFEFF/, "").split("\r\n")[0]).toMatch(/^id,at,/);
  });
});

describe("13. an unknown URL in the server's output", () => {
  it("is one JSON access-log line, never a stack trace", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const path = await import("node:path");
    const { startServer } = await import("./helpers/server");
    const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-unit-404-"));
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: "production", PORT: "0", HOST: "127.0.0.1", DATA_DIR: dataDir, NEXUS_ACCESS_LOG: "1" };
    delete env.DATABASE_URL;
    delete env.S3_HOST;
    delete env.S3_ENDPOINT;
    const server = await startServer(env);
    try {
      const before = server.output().length;
      const res = await fetch(`${server.url}/nulle-part/encore`);
      expect(res.status).toBe(404);
      expect(await res.text()).toContain("Page introuvable");
      await new Promise((r) => setTimeout(r, 300));
      const printed = server.output().slice(before).trim().split("\n").filter(Boolean);
      expect(printed).toHaveLength(1);
      const line = JSON.parse(printed[0]!);
      expect(line).toMatchObject({ status: 404, path: "/nulle-part/encore", method: "GET" });
      expect(server.output()).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
    } finally {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
