/**
 * The screening programme in a real browser (Debian's Chromium), French interface:
 *   the doctor uploads a four-view DICOM exam for the demo patient → a file of another woman is refused with the
 *   fields named → she runs the exam AI (hidden until her own reading: AI_DISPLAY=after_reading) → she reads L1
 *   ACR 1/2 → the exam page then shows four heatmaps and the breast/exam scores → doctor2 finds the exam in her
 *   second-reading worklist and reads blind (no first reading, no AI) → ACR 4 on the right → recall → the patient
 *   downloads her letter from the portal (text checked with pdftotext) and sees no score anywhere.
 * Screenshots: test-results/screenshots/screening-*.png (docs/screenshots/ holds a current copy for the README).
 */
import { spawnSync } from "node:child_process";
import type { Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, chromiumOrSkipLine, useChromium } from "../helpers/browser";
import { DEMO_IDENTITY, FOUR_VIEWS, newStudyUid, screeningView } from "../helpers/exams";
import { api, baseUrl, DEMO_PASSWORD, tokenFor } from "../helpers/http";

const hasChromium = chromiumOrSkipLine();
const hasPdftotext = !spawnSync("pdftotext", ["-v"]).error;
if (hasChromium && !hasPdftotext) console.log("skipped: the letter's text is not checked without pdftotext (poppler-utils)");

describe.skipIf(!hasChromium)("the screening programme in Chromium (French)", () => {
  const browser = useChromium();
  let patientId = "";
  let examId = "";
  let doctorToken = "";

  async function login(email: string, width = 1440): Promise<Page> {
    const context = await browser().newContext({ locale: "fr-FR", viewport: { width, height: 1000 } });
    const page = await context.newPage();
    await page.goto(`${baseUrl()}/connexion`);
    await page.getByLabel("Adresse e-mail").fill(email);
    await page.getByLabel("Mot de passe").fill(DEMO_PASSWORD);
    await page.getByRole("button", { name: "Se connecter" }).click();
    await page.waitForURL((url) => !url.pathname.startsWith("/connexion"));
    return page;
  }
  const shot = (page: Page, file: string) => page.screenshot({ path: `${ARTIFACTS}/${file}`, fullPage: true });

  beforeAll(async () => {
    doctorToken = await tokenFor("doctor@demo.nexus");
    patientId = (await api("GET", "/api/v1/me", { token: await tokenFor("patient@demo.nexus") })).body.patientId;
  });

  it("the doctor uploads a four-view DICOM exam; a file of another woman is refused with the fields named", async () => {
    const before = new Set(((await api("GET", `/api/v1/patients/${patientId}/exams`, { token: doctorToken })).body.exams as { id: string }[]).map((e) => e.id));
    const page = await login("doctor@demo.nexus");
    await page.goto(`${baseUrl()}/patients/${patientId}`);
    await page.getByTestId("patient-ipp").getByText(DEMO_IDENTITY.id).waitFor();
    const study = newStudyUid();
    await page.setInputFiles(
      "#upload-file",
      FOUR_VIEWS.map(([l, v]) => ({ name: `${l}-${v}.dcm`, mimeType: "application/dicom", buffer: Buffer.from(screeningView(DEMO_IDENTITY, study, l, v, 128)) })),
    );
    await page.getByRole("button", { name: "Envoyer" }).click();
    await page.getByText("4 / 4 fichier(s) enregistré(s), chiffré(s).").waitFor({ timeout: 30_000 });
    const after = ((await api("GET", `/api/v1/patients/${patientId}/exams`, { token: doctorToken })).body.exams as { id: string }[]).map((e) => e.id);
    examId = after.find((id) => !before.has(id))!;
    expect(examId).toBeTruthy();

    const other = { id: "IPP-AUTRE-42", name: "MARTIN^JEANNE", birthDate: "19550302", sex: "F" };
    await page.setInputFiles("#upload-file", [{ name: "autre.dcm", mimeType: "application/dicom", buffer: Buffer.from(screeningView(other, newStudyUid(), "R", "CC", 64)) }]);
    await page.getByRole("button", { name: "Envoyer" }).click();
    const refusal = page.getByRole("alert").filter({ hasText: "Identité discordante" });
    await refusal.waitFor({ timeout: 30_000 });
    const text = await refusal.innerText();
    expect(text).toContain("identifiant patient (PatientID)");
    expect(text).toContain("nom (PatientName)");
    expect(text).toContain("date de naissance (PatientBirthDate)");
    await shot(page, "screening-01-identity-mismatch.png");
    await page.context().close();
  }, 90_000);

  it("the exam AI runs; its results show after her L1 reading (ACR 1/2): four heatmaps and the scores", async () => {
    const page = await login("doctor@demo.nexus");
    await page.goto(`${baseUrl()}/examens/${examId}`);
    await page.getByTestId("exam-completeness").waitFor();
    await page.getByRole("button", { name: "Analyser l'examen" }).click();
    await page.getByTestId("ai-hidden").waitFor({ timeout: 60_000 });
    await expect.poll(() => page.getByTestId("exam-score").count()).toBe(0);
    await shot(page, "screening-02-exam-before-reading.png");

    // L1: ACR 1 right, ACR 2 left, density B, in the form docked on the exam page.
    await page.getByRole("heading", { name: "Première lecture (L1)" }).waitFor();
    await page.selectOption("#reading-R-acr", "1");
    await page.selectOption("#reading-R-density", "B");
    await page.selectOption("#reading-L-acr", "2");
    await page.selectOption("#reading-L-density", "B");
    await page.getByRole("button", { name: "Enregistrer la lecture" }).click();
    await page.getByText("Lecture enregistrée. Statut de l'examen : En attente de deuxième lecture.").waitFor();

    await page.goto(`${baseUrl()}/examens/${examId}`);
    await page.getByTestId("exam-score").waitFor();
    // With JavaScript the heatmaps are drawn by the viewer over its four views (the <img> previews are for no-JS).
    await expect.poll(() => page.locator('[data-heatmap="loaded"]').count(), { timeout: 60_000 }).toBe(4);
    await page.waitForFunction(() => document.documentElement.dataset.viewerCurrent === "rendered", null, { timeout: 60_000 });
    for (const id of ["breast-R", "breast-L", "exam-score"]) expect(await page.getByTestId(id).innerText()).toMatch(/\d+(,\d+)?\s?%/);
    await shot(page, "screening-03-exam-ai-after-reading.png");
    await page.context().close();
  }, 120_000);

  it("doctor2 reads blind from her worklist: ACR 4 on the right → recall", async () => {
    const page = await login("doctor2@demo.nexus");
    await page.goto(`${baseUrl()}/lectures`);
    const row = page.getByTestId("worklist-second").locator(`tr[data-exam="${examId}"]`);
    await row.waitFor();
    await shot(page, "screening-04-worklists.png");
    await row.getByRole("link", { name: "Lire" }).click();
    await page.getByRole("heading", { name: "Deuxième lecture (L2)" }).waitFor();
    // Blind: no first reading and no AI score on her page.
    await page.getByText("Aucune lecture visible").waitFor();
    expect(await page.locator("body").innerText()).not.toMatch(/ACR 1|%/);

    // First a reading without the left breast: the form names the missing fields (server-side, same schema).
    await page.selectOption("#reading-R-acr", "4");
    await page.selectOption("#reading-R-density", "B");
    await page.getByRole("button", { name: "Enregistrer la lecture" }).click();
    await page.locator("#reading-L-acr-error").waitFor();
    await page.selectOption("#reading-L-acr", "1");
    await page.selectOption("#reading-L-density", "B");
    await page.selectOption("#reading-finding-0-laterality", "R");
    await page.selectOption("#reading-finding-0-type", "mass");
    await page.selectOption("#reading-finding-0-quadrant", "UOQ");
    await page.fill("#reading-finding-0-sizeMm", "14");
    await page.fill("#reading-conclusion", "Masse spiculée QSE droit, rappel pour bilan.");
    await shot(page, "screening-05-second-reading.png");
    await page.getByRole("button", { name: "Enregistrer la lecture" }).click();
    await page.getByText("Lecture enregistrée. Statut de l'examen : Rappel pour bilan.").waitFor();
    await page.context().close();
  }, 60_000);

  it("the patient downloads her letter from the portal and sees no score anywhere", async () => {
    const page = await login("patient@demo.nexus", 390);
    await page.goto(`${baseUrl()}/mon-dossier`);
    const link = page.getByTestId("letters").locator(`a[href="/examens/${examId}/courrier"]`);
    await link.waitFor();
    await shot(page, "screening-06-portal.png");
    const body = await page.locator("body").innerText();
    expect(body).not.toMatch(/score|probabilit|Positive|Negative|Positif|Négatif|heatmap|carte d'activation|\d+(,\d+)?\s?%/i);
    expect(await page.locator("img[src*='/carte'], img[src*='heatmap']").count()).toBe(0);

    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    const pdf = Buffer.from(await (await download.createReadStream()).toArray().then((c) => Buffer.concat(c as Buffer[])));
    expect(pdf.subarray(0, 5).toString()).toBe("%PDF-");
    if (hasPdftotext) {
      const text = spawnSync("pdftotext", ["-enc", "UTF-8", "-", "-"], { input: pdf }).stdout.toString().replace(/\s+/g, " ");
      expect(text).toContain("Camille Dupont");
      expect(text).toContain("examens complémentaires sont nécessaires");
      expect(text).not.toMatch(/ACR|score|%|Positive/);
    }
    await page.context().close();
  }, 60_000);
});
