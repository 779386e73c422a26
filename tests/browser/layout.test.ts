/**
 * Every page of the app, for every role, on a phone (390×844) and a desktop (1440×900), in Chromium: nothing may
 * lay out wider than the screen (`scrollWidth ≤ innerWidth`) and axe-core (injected into the page) may find no
 * serious or critical violation. Pages are enumerated from app/routes: a new page without an entry below fails.
 * Error pages (403, 404, unknown image) are visited too. Screenshots go to test-results/screenshots/layout-*.png.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, baseUrl, DEMO_PASSWORD, tokenFor } from "../helpers/http";
import { createPatient } from "../helpers/fixtures";
import { dicom } from "../helpers/images";
import { mammogram, stowBody, uid } from "../helpers/dicom";
import { ARTIFACTS, chromiumOrSkipLine, useChromium } from "../helpers/browser";
import { startOwnServer, type OwnServer } from "../helpers/own-server";
import { finalExam, token, waitFor, type OutboxEntry } from "../helpers/push";

const hasChromium = chromiumOrSkipLine();
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const VIEWPORTS = [
  { name: "phone", width: 390, height: 844 },
  { name: "desktop", width: 1440, height: 900 },
] as const;

type Role = "doctor" | "patient" | "admin" | "researcher" | "anonymous";

/** Each page route file (app/routes/*.tsx with a component) → who visits it, at which URL. */
function pagesFor(ids: { patientId: string; imageId: string; eventId: string; examId: string; machineId: string; entryId: string }): Record<string, { role: Role; path: string }[]> {
  return {
    "connexion.tsx": [{ role: "anonymous", path: "/connexion" }, { role: "anonymous", path: "/connexion?redirectTo=%2Fpatients" }],
    "compte.tsx": (["doctor", "patient", "admin", "researcher"] as const).map((role) => ({ role, path: "/compte" })),
    "compte_.double-authentification.tsx": (["doctor", "patient"] as const).map((role) => ({ role, path: "/compte/double-authentification" })),
    // Both render only inside a sign-in in progress (a temporary password, a second factor); elsewhere they send the
    // visitor to the login page, which is what is laid out here. tests/browser/identity.test.ts shows the code page.
    "compte_.nouveau-mot-de-passe.tsx": [{ role: "anonymous", path: "/compte/nouveau-mot-de-passe" }],
    "connexion_.code.tsx": [{ role: "anonymous", path: "/connexion/code" }],
    "patients._index.tsx": [
      { role: "doctor", path: "/patients" },
      { role: "admin", path: "/patients" },
      // A later page: the list's page links (tests/pages.test.ts follows them through 53 patients).
      { role: "admin", path: `/patients?cursor=${ids.patientId}` },
    ],
    "patients.nouveau.tsx": [{ role: "doctor", path: "/patients/nouveau" }],
    "patients.$patientId.tsx": [{ role: "doctor", path: `/patients/${ids.patientId}` }],
    "images.$imageId.tsx": [
      { role: "doctor", path: `/images/${ids.imageId}` },
      { role: "doctor", path: `/images/${ids.imageId}?effacer=1` },
      { role: "patient", path: `/images/${ids.imageId}` },
    ],
    "mon-dossier.tsx": [{ role: "patient", path: "/mon-dossier" }, { role: "patient", path: "/mon-dossier?retirer=care" }],
    "admin.comptes.tsx": [{ role: "admin", path: "/admin/comptes" }],
    "admin.machines.tsx": [{ role: "admin", path: "/admin/machines" }, { role: "admin", path: `/admin/machines?desactiver=${ids.machineId}` }],
    // This run's server has no PACS_PUSH (the page says how to set it); the entries are laid out on a server of their
    // own below.
    "admin.envois.tsx": [{ role: "admin", path: "/admin/envois" }, { role: "admin", path: "/admin/envois?etat=perdu" }],
    "dicom.a-rapprocher.tsx": [
      { role: "doctor", path: "/dicom/a-rapprocher" },
      { role: "doctor", path: `/dicom/a-rapprocher?entree=${ids.entryId}` },
      { role: "doctor", path: `/dicom/a-rapprocher?rejeter=${ids.entryId}` },
    ],
    "admin.audit._index.tsx": [{ role: "admin", path: "/admin/audit" }, { role: "admin", path: `/admin/audit?patient=${ids.patientId}` }],
    "admin.audit.$eventId.tsx": [{ role: "admin", path: `/admin/audit/${ids.eventId}` }],
    "recherche.tsx": [{ role: "researcher", path: "/recherche" }],
    "statistiques.tsx": [{ role: "doctor", path: "/statistiques" }, { role: "researcher", path: "/statistiques" }],
    "statistiques_.programme.tsx": [{ role: "doctor", path: "/statistiques/programme" }, { role: "admin", path: "/statistiques/programme" }],
    "lectures.tsx": [{ role: "doctor", path: "/lectures" }],
    "examens.$examId.tsx": [{ role: "doctor", path: `/examens/${ids.examId}` }],
    "examens.$examId_.lecture.tsx": [{ role: "doctor", path: `/examens/${ids.examId}/lecture` }],
    // Error pages.
    "$.tsx": [{ role: "anonymous", path: "/nulle-part" }, { role: "doctor", path: "/nulle-part" }],
    "(403)": [{ role: "patient", path: "/admin/comptes" }],
    "(unknown image)": [{ role: "doctor", path: "/images/00000000-0000-4000-8000-000000000000" }],
  };
}

/**
 * Opens `url` in `page`: what is wrong with it (laid out wider than the screen, serious or critical axe violations),
 * each prefixed by `label`; a full-page screenshot `<shot>.png` in the artifacts.
 */
async function checkPage(page: Page, url: string, label: string, shot: string): Promise<string[]> {
  const problems: string[] = [];
  await page.goto(url);
  const width = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  if (width.scroll > width.inner) problems.push(`${label}: laid out at ${width.scroll} px in ${width.inner} px`);
  await page.addScriptTag({ content: AXE });
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
  });
  for (const v of violations) problems.push(`${label}: ${v}`);
  await page.screenshot({ path: `${ARTIFACTS}/${shot}.png`, fullPage: true });
  return problems;
}

/** The page routes of app/routes: .tsx files that render a component. */
function pageRouteFiles(): string[] {
  return readdirSync("app/routes")
    .filter((f) => f.endsWith(".tsx"))
    .filter((f) => /export default/.test(readFileSync(`app/routes/${f}`, "utf8")));
}

describe.skipIf(!hasChromium)("every page at 390 px and 1440 px: no horizontal overflow, no serious axe violation", () => {
  const browser = useChromium();
  const ids = { patientId: "", imageId: "", eventId: "", examId: "", machineId: "", entryId: "" };
  const passwords: Record<Role, { email: string; password: string } | null> = {
    doctor: { email: "doctor@demo.nexus", password: DEMO_PASSWORD },
    patient: null,
    admin: { email: "admin@demo.nexus", password: DEMO_PASSWORD },
    researcher: { email: "researcher@demo.nexus", password: DEMO_PASSWORD },
    anonymous: null,
  };

  it("has an entry for every page route", () => {
    const covered = Object.keys(pagesFor(ids));
    expect(pageRouteFiles().filter((f) => !covered.includes(f))).toEqual([]);
  });

  async function loggedIn(b: Browser, role: Role, viewport: { width: number; height: number }): Promise<Page> {
    const context = await b.newContext({ locale: "fr-FR", viewport });
    const page = await context.newPage();
    const account = passwords[role];
    if (!account) return page;
    await page.goto(`${baseUrl()}/connexion`);
    await page.getByLabel("Adresse e-mail").fill(account.email);
    await page.getByLabel("Mot de passe").fill(account.password);
    await page.getByRole("button", { name: "Se connecter" }).click();
    await page.waitForURL((url) => !url.pathname.startsWith("/connexion"));
    return page;
  }

  it("sets up a patient with an account, a DICOM image, a reading and a long access log", async () => {
    const doctor = await tokenFor("doctor@demo.nexus");
    const patient = await createPatient(doctor, {
      displayName: "Camille Mise-en-page",
      email: `layout-${Date.now()}@test.nexus`,
      consents: { care: true, ai_analysis: true, research: true },
    });
    ids.patientId = patient.id;
    passwords.patient = { email: patient.account!.email, password: patient.account!.password };
    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(dicom({ rows: 64, columns: 48, patientName: "Camille Mise-en-page" }))], { type: "application/dicom" }), "mammo.dcm");
    const res = await fetch(`${baseUrl()}/api/v1/patients/${patient.id}/images`, {
      method: "POST",
      headers: { Authorization: `Bearer ${doctor}` },
      body: form,
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { id?: string; images?: { id: string }[] };
    ids.imageId = body.id ?? body.images![0]!.id;
    expect((await api("POST", `/api/v1/images/${ids.imageId}/predictions`, { token: doctor })).status).toBe(201);
    const exams = await api<{ exams: { id: string }[] }>("GET", `/api/v1/patients/${patient.id}/exams`, { token: doctor });
    ids.examId = exams.body.exams[0]!.id;
    // Worklists with several rows and long names (CI's worklist is full of other tests' exams).
    for (const longName of ["Marie-Christine Bonnefoy-Desjardins de la Tour d'Auvergne", "Anne-Sophie Lefebvre-Castelnau"]) {
      const other = await createPatient(doctor, { displayName: longName, consents: { care: true } });
      const file = new FormData();
      file.append("file", new Blob([new Uint8Array(dicom({ rows: 32, columns: 24, patientName: longName }))], { type: "application/dicom" }), "long.dcm");
      const stored = await fetch(`${baseUrl()}/api/v1/patients/${other.id}/images`, { method: "POST", headers: { Authorization: `Bearer ${doctor}` }, body: file });
      expect(stored.status).toBe(201);
    }
    // A machine account with a long name and two tokens; an instance for an unknown patient with long header values.
    const admin = await tokenFor("admin@demo.nexus");
    const machine = await api("POST", "/api/v1/machines", {
      token: admin,
      json: { name: "Mammographe numérique plein champ de la salle de radiologie numéro 2 (bâtiment B)", scopes: ["store", "query"], aeTitle: `MGLAYOUT${Date.now() % 100000}` },
    });
    expect(machine.status).toBe(201);
    ids.machineId = machine.body.id;
    expect((await api("POST", `/api/v1/machines/${ids.machineId}/tokens`, { token: admin })).status).toBe(201);
    const unknownIpp = `LAYOUT-${Date.now()}`;
    const { body: stowed, contentType } = stowBody([
      mammogram({ patientId: unknownIpp, patientName: "BONNEFOY-DESJARDINS DE LA TOUR^MARIE-CHRISTINE^ANNE", birthDate: "19680514", sex: "F", studyInstanceUid: uid() }),
    ]);
    const queued = await fetch(`${baseUrl()}/dicomweb/studies`, { method: "POST", headers: { Authorization: `Bearer ${doctor}`, "Content-Type": contentType }, body: stowed });
    expect(queued.status).toBe(409);
    const inbox = await api<{ entries: { id: string; identity: { patientId?: string } }[] }>("GET", "/api/v1/dicom-inbox", { token: doctor });
    ids.entryId = inbox.body.entries.find((e) => e.identity.patientId === unknownIpp)!.id;
    // Enough accesses to need paging in the patient's access log.
    for (let i = 0; i < 30; i++) await api("GET", `/api/v1/patients/${patient.id}/consents`, { token: doctor });
    const events = await api<{ events: { id: number | string }[] }>("GET", `/api/v1/audit?patient=${patient.id}&limit=1`, { token: admin });
    ids.eventId = String(events.body.events[0]!.id);
  }, 120_000);

  for (const viewport of VIEWPORTS) {
    it(`lays out every page within ${viewport.width} px with no serious or critical axe violation`, async () => {
      const problems: string[] = [];
      const byRole = new Map<Role, { file: string; path: string }[]>();
      for (const [file, visits] of Object.entries(pagesFor(ids))) {
        for (const v of visits) byRole.set(v.role, [...(byRole.get(v.role) ?? []), { file, path: v.path }]);
      }
      for (const [role, visits] of byRole) {
        const page = await loggedIn(browser(), role, viewport);
        for (const { file, path } of visits) {
          problems.push(...(await checkPage(page, `${baseUrl()}${path}`, `${role} ${path}`, `layout-${viewport.name}-${file.replace(/\.tsx$/, "").replace(/[^a-z0-9.]+/gi, "_")}-${role}`)));
        }
        await page.context().close();
      }
      expect(problems).toEqual([]);
    }, 240_000);
  }
});

/**
 * The PACS push page with entries in every status it can reach without a PACS (a server of its own whose PACS_PUSH
 * names a port where nothing listens, in this file's range 27500–27549): failed entries with their outcome and the
 * re-send button, and one queued again (pending, with its next attempt).
 */
describe.skipIf(!hasChromium)("the PACS push page with entries, at 390 px and 1440 px", () => {
  const browser = useChromium();
  let own: OwnServer | null = null;

  beforeAll(async () => {
    own = await startOwnServer({ PACS_PUSH: "PACS_RADIO_B@127.0.0.1:27503", PACS_PUSH_ATTEMPTS: "1", PACS_PUSH_BACKOFF_MS: "100", PACS_PUSH_POLL_MS: "100" });
    const [doctor, patient, admin] = await Promise.all(["doctor@demo.nexus", "patient@demo.nexus", "admin@demo.nexus"].map((e) => token(own!.url, e)));
    const { examId } = await finalExam(own.url, doctor!, patient!, { ai: true });
    await waitFor("failed reports", async () => {
      const res = await api<{ entries: OutboxEntry[] }>("GET", "/api/v1/outbox?status=failed", { base: own!.url, token: admin });
      return res.body.entries.filter((e) => e.examId === examId).length === 2;
    });
  }, 180_000);

  afterAll(async () => {
    await own?.stop();
  });

  for (const viewport of VIEWPORTS) {
    it(`lays out /admin/envois with entries within ${viewport.width} px, axe clean`, async () => {
      const context = await browser().newContext({ locale: "fr-FR", viewport });
      const page = await context.newPage();
      await page.goto(`${own!.url}/connexion`);
      await page.getByLabel("Adresse e-mail").fill("admin@demo.nexus");
      await page.getByLabel("Mot de passe").fill(DEMO_PASSWORD);
      await page.getByRole("button", { name: "Se connecter" }).click();
      await page.waitForURL((url) => !url.pathname.startsWith("/connexion"));
      const problems: string[] = [];
      for (const [path, shot] of [
        ["/admin/envois", "all"],
        ["/admin/envois?etat=failed", "failed"],
      ] as const) {
        problems.push(...(await checkPage(page, `${own!.url}${path}`, `admin ${path}`, `layout-${viewport.name}-admin.envois-entries-${shot}`)));
      }
      // Re-send one with the keyboard-reachable button (JavaScript on): the confirmation, the list still laid out.
      await page.getByRole("button", { name: "Renvoyer" }).first().click();
      await page.getByText("L'envoi est de nouveau en file").waitFor();
      problems.push(...(await checkPage(page, page.url(), "admin after a re-send", `layout-${viewport.name}-admin.envois-entries-resent`)));
      await context.close();
      expect(problems).toEqual([]);
    }, 120_000);
  }
});
