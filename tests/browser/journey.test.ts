/**
 * The whole journey in a real browser (Debian's Chromium), through the HTTPS front (Debian's Caddy with
 * caddy/Caddyfile.local and a throwaway local CA, in front of the test server):
 *   HTTP → HTTPS redirect → a doctor uploads a mammogram with the progress bar and gets an AI prediction with its
 *   heatmap → the patient withdraws AI analysis and care in the portal → the doctor is refused → the admin finds
 *   every event in the audit trail, whose hash chain verifies.
 * Each main page is saved as a screenshot in test-results/screenshots/journey-*.png (docs/screenshots/ holds a
 * current copy for the README). Skipped, with one line, where /usr/bin/chromium or /usr/bin/caddy is absent.
 */
import { existsSync, mkdirSync } from "node:fs";
import { type Browser, type Page } from "playwright-core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CADDY } from "../../scripts/start-https";
import { request, startTestFront, type TestFront } from "../front/https";
import { DEMO_PASSWORD } from "../helpers/http";
import { ARTIFACTS, chromiumOrSkipLine, launchChromium } from "../helpers/browser";

const hasCaddy = existsSync(CADDY);
// One skip line: Chromium first, then Caddy.
const hasChromium = chromiumOrSkipLine();
if (hasChromium && !hasCaddy) console.log(`skipped: no caddy at ${CADDY}`);

/** A synthetic greyscale "mammogram", padded after its end marker to `size` bytes so the progress bar shows. */
async function mammogram(size: number): Promise<Buffer> {
  const width = 600;
  const height = 760;
  const pixels = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = x / (width * 0.85);
      const dy = (y - height / 2) / (height * 0.46);
      const r = dx * dx + dy * dy;
      const texture = 18 * Math.sin(x / 7) * Math.cos(y / 11);
      pixels[y * width + x] = r < 1 ? Math.max(0, Math.min(255, Math.round(60 + 140 * (1 - r) + texture))) : 6;
    }
  }
  const jpeg = await sharp(pixels, { raw: { width, height, channels: 1 } }).jpeg({ quality: 92 }).toBuffer();
  return Buffer.concat([jpeg, Buffer.alloc(Math.max(0, size - jpeg.length))]);
}

describe.skipIf(!hasChromium || !hasCaddy)("the whole journey through the HTTPS front (Chromium + Caddy)", () => {
  let front: TestFront;
  let browser: Browser;
  let patient: { id: string; email: string; password: string };
  let imageId = "";
  const name = `Patiente Parcours ${Date.now().toString(36)}`;

  const api = (method: string, path: string, token?: string, json?: unknown) =>
    request(front.url + path, {
      method,
      ca: front.ca,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(json !== undefined ? { "Content-Type": "application/json" } : {}) },
      body: json === undefined ? undefined : Buffer.from(JSON.stringify(json)),
    });
  const token = async (email: string, password = DEMO_PASSWORD) => {
    const res = await api("POST", "/api/v1/tokens", undefined, { email, password });
    expect(res.status, `login ${email}`).toBe(201);
    return res.json.token as string;
  };
  const shot = (page: Page, file: string) => page.screenshot({ path: `${ARTIFACTS}/${file}`, fullPage: true });

  /** Everything the CSP blocked on any page of the journey (console "Refused to …"/"violates … Content Security Policy"). */
  const cspViolations: string[] = [];
  async function newPage(): Promise<Page> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "fr-FR", viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on("console", (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) cspViolations.push(`${page.url()}: ${m.text()}`);
    });
    return page;
  }

  async function login(email: string, password = DEMO_PASSWORD): Promise<Page> {
    const page = await newPage();
    await page.goto(`${front.url}/connexion`);
    await page.getByLabel("Adresse e-mail").fill(email);
    await page.getByLabel("Mot de passe").fill(password);
    await page.getByRole("button", { name: "Se connecter" }).click();
    await page.waitForURL((url) => !url.pathname.startsWith("/connexion"));
    return page;
  }

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    front = await startTestFront();
    browser = await launchChromium();
    // The doctor registers the patient at intake, with her consents and an account for the portal.
    const doctor = await token("doctor@demo.nexus");
    const email = `parcours-${Date.now().toString(36)}@test.nexus`;
    const created = await api("POST", "/api/v1/patients", doctor, { displayName: name, email, consents: { care: true, ai_analysis: true, research: false } });
    expect(created.status).toBe(201);
    // Her first sign-in replaces the temporary password (it works once) by her own.
    const password = "mon-mot-de-passe-a-moi";
    const first = await api("POST", "/api/v1/tokens", undefined, { email, password: created.json.account.temporaryPassword, newPassword: password });
    expect(first.status).toBe(201);
    patient = { id: created.json.id, email, password };
  });
  afterAll(async () => {
    await browser?.close();
    await front?.close();
  });

  it("sends the browser from HTTP to the HTTPS login page", async () => {
    const page = await newPage();
    const response = await page.goto(`${front.httpUrl}/connexion`);
    expect(page.url()).toBe(`${front.url}/connexion`);
    expect(response?.request().redirectedFrom()?.url()).toBe(`${front.httpUrl}/connexion`);
    expect(response?.headers()["strict-transport-security"]).toMatch(/max-age=\d+/);
    await page.getByRole("button", { name: "Se connecter" }).waitFor();
    await shot(page, "journey-01-login.png");
    await page.context().close();
  });

  it("lets the doctor upload a mammogram with the progress bar and get an AI prediction with its heatmap", async () => {
    const page = await login("doctor@demo.nexus");
    await page.getByRole("heading", { name: "Mes patients" }).waitFor();
    await shot(page, "journey-02-doctor-patients.png");
    // The rows link with plain anchors; once the page is hydrated, a click navigates within the app (ScrollRegion, as a
    // <Link> would: the document stays), and a Ctrl-click still opens a new tab.
    await page.waitForFunction(() => "__remixRouter" in window);
    await page.evaluate(() => Object.assign(window, { sameDocument: true }));
    const open = page.getByRole("row", { name: new RegExp(name) }).getByRole("link", { name: "Ouvrir" });
    const [tab] = await Promise.all([page.context().waitForEvent("page"), open.click({ modifiers: ["ControlOrMeta"] })]);
    await tab.waitForURL(/\/patients\/[0-9a-f-]{36}$/);
    await tab.close();
    expect(new URL(page.url()).pathname).toBe("/patients");
    await open.click();
    await page.getByRole("heading", { level: 1, name }).waitFor();
    expect(await page.evaluate(() => (window as { sameDocument?: boolean }).sameDocument)).toBe(true);

    // 12 MB so the progress bar has time to show.
    await page.setInputFiles("#upload-file", [{ name: "mammographie-gauche.jpg", mimeType: "image/jpeg", buffer: await mammogram(12 * 1024 * 1024) }]);
    await page.getByRole("button", { name: "Envoyer" }).click();
    await page.getByRole("progressbar", { name: /Envoi/ }).waitFor();
    await shot(page, "journey-03-upload-progress.png");
    await page.getByText("1 / 1 fichier(s) enregistré(s), chiffré(s).").waitFor({ timeout: 30_000 });
    await expect.poll(() => page.locator("tr[data-image-id]").count()).toBe(1);
    imageId = (await page.locator("tr[data-image-id]").first().getAttribute("data-image-id"))!;
    await shot(page, "journey-04-patient-record.png");

    await page.locator("tr[data-image-id]").first().getByRole("link", { name: "Voir" }).click();
    await page.getByRole("heading", { level: 1, name: "Mammographie", exact: true }).waitFor();
    const img = page.locator("figure img").first();
    await expect.poll(() => img.evaluate((el) => (el as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    await shot(page, "journey-05-image.png");

    // The AI analysis from the image page (needs POST /api/v1/images/:id/predictions and the page's button).
    await page.getByRole("button", { name: /analyse IA/i }).click();
    const heatmap = page.getByRole("img", { name: /carte d'activation|heatmap|Grad-CAM/i }).first();
    await heatmap.waitFor({ timeout: 30_000 });
    await expect.poll(() => heatmap.evaluate((el) => (el as HTMLImageElement).naturalWidth), { timeout: 15_000 }).toBeGreaterThan(0);
    await expect.poll(() => page.getByText(/Positive|Negative|Positif|Négatif/).count()).toBeGreaterThan(0);
    await shot(page, "journey-06-ai-prediction.png");
    await page.context().close();

    // The same through the API contract (shared/API.md): 201 with label, probabilities, model and heatmap.
    const doctor = await token("doctor@demo.nexus");
    const res = await api("POST", `/api/v1/images/${imageId}/predictions`, doctor);
    expect(res.status, res.text.slice(0, 300)).toBe(201);
    expect(res.json).toMatchObject({ label: expect.any(String), probability: expect.any(Number), model: { name: expect.any(String), version: expect.any(String), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    expect(Object.keys(res.json.probabilities).length).toBeGreaterThanOrEqual(2);
    expect(res.json.heatmapUrl, "a heatmap with the prediction").toEqual(expect.any(String));
    const map = await request(new URL(res.json.heatmapUrl, front.url).toString(), { ca: front.ca, headers: { Authorization: `Bearer ${doctor}` } });
    expect(map.status).toBe(200);
    expect(map.headers["content-type"]).toMatch(/^image\//);
  });

  it("lets the patient withdraw AI analysis and care in the portal, effective at once", async () => {
    expect(imageId, "the doctor's upload succeeded").not.toBe("");
    const page = await login(patient.email, patient.password);
    await page.getByRole("heading", { level: 1, name: new RegExp(`Mon dossier — ${name}`) }).waitFor();
    await shot(page, "journey-07-patient-portal.png");
    for (const purpose of ["ai_analysis", "care"]) {
      const row = page.locator(`[data-purpose="${purpose}"]`).first();
      await row.getByRole("button", { name: /^Retirer/ }).click();
      // The confirmation step says what the withdrawal changes before it is made.
      await page.getByTestId("withdraw-confirm").getByRole("button", { name: "Confirmer le retrait" }).click();
      await page.getByText("Votre choix est enregistré et s'applique dès maintenant.").waitFor();
      await expect.poll(() => row.textContent()).toContain("retiré");
    }
    await shot(page, "journey-08-patient-withdrawn.png");
    await page.context().close();
  });

  it("refuses the doctor, with the patient's reason, on the page and through the API", async () => {
    const page = await login("doctor@demo.nexus");
    const response = await page.goto(`${front.url}/images/${imageId}`);
    expect(response?.status()).toBe(403);
    await page.getByText("Consentement aux soins retiré par le patient").first().waitFor();
    await shot(page, "journey-09-doctor-refused.png");
    await page.context().close();

    const doctor = await token("doctor@demo.nexus");
    const read = await api("GET", `/api/v1/images/${imageId}`, doctor);
    expect(read.status).toBe(403);
    const analyse = await api("POST", `/api/v1/images/${imageId}/predictions`, doctor);
    expect(analyse.status, analyse.text.slice(0, 300)).toBe(403);
  });

  it("lets the admin find every event of the journey in the audit trail, whose chain verifies", async () => {
    const admin = await token("admin@demo.nexus");
    const res = await api("GET", `/api/v1/audit?patient=${patient.id}&limit=200`, admin);
    expect(res.status).toBe(200);
    const seen = (res.json.events as { action: string; outcome: string }[]).map((e) => `${e.action}:${e.outcome}`);
    for (const expected of [
      "patient.create:allowed",
      "image.upload:allowed",
      "image.read:allowed",
      "image.analyse:allowed",
      "consent.update:allowed",
      "image.read:denied",
      "image.analyse:denied",
    ]) {
      expect(seen, expected).toContain(expected);
    }
    expect(seen.filter((e) => e === "consent.update:allowed")).toHaveLength(2);
    const verify = await api("GET", "/api/v1/audit/verify", admin);
    expect(verify.json).toMatchObject({ ok: true });

    // The admin's page shows the same events for this patient.
    const page = await login("admin@demo.nexus");
    await page.goto(`${front.url}/admin/audit?patient=${patient.id}`);
    await page.getByRole("heading", { level: 1, name: "Journal d'audit" }).waitFor();
    const rows = page.locator("tr[data-event-id]");
    await expect.poll(() => rows.count()).toBeGreaterThanOrEqual(seen.length);
    expect(await page.locator('tr[data-event-id][data-outcome="denied"]').count()).toBeGreaterThanOrEqual(2);
    await shot(page, "journey-10-admin-audit.png");
    await page.context().close();
  });

  it("met no Content Security Policy violation on any page of the journey", () => {
    expect(cspViolations).toEqual([]);
  });
});
