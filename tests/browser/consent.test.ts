/**
 * The consent journey in a real browser (Debian's Chromium): the patient withdraws `care` in the portal → the
 * doctor's next view of the image is refused, with the reason → the patient grants it again → the view works.
 */
import { randomUUID } from "node:crypto";
import { type Page } from "playwright-core";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { createAccount, createPatient } from "../helpers/fixtures";
import { baseUrl, tokenFor } from "../helpers/http";
import { ARTIFACTS, chromiumOrSkipLine, useChromium } from "../helpers/browser";

const hasChromium = chromiumOrSkipLine();

describe.skipIf(!hasChromium)("consent journey (Chromium)", () => {
  const browser = useChromium();

  async function login(email: string, password: string): Promise<Page> {
    const page = await (await browser().newContext()).newPage();
    await page.goto(`${baseUrl()}/connexion`);
    await page.getByLabel("Adresse e-mail").fill(email);
    await page.getByLabel("Mot de passe").fill(password);
    await page.getByRole("button", { name: "Se connecter" }).click();
    await page.waitForURL((url) => !url.pathname.startsWith("/connexion"));
    return page;
  }

  it("patient revokes → doctor refused → patient grants again → doctor sees the image", async () => {
    const doctor = await createAccount("doctor");
    const doctorToken = await tokenFor(doctor.email, doctor.password);
    const patient = await createPatient(doctorToken, {
      displayName: "Parcours Consentement",
      email: `journey-${randomUUID().slice(0, 6)}@test.nexus`,
      consents: { care: true },
    });
    const form = new FormData();
    const jpeg = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 120, g: 120, b: 120 } } }).jpeg().toBuffer();
    form.append("file", new Blob([new Uint8Array(jpeg)], { type: "image/jpeg" }), "cc-gauche.jpg");
    const uploaded = await fetch(`${baseUrl()}/api/v1/patients/${patient.id}/images`, { method: "POST", headers: { Authorization: `Bearer ${doctorToken}` }, body: form });
    const { id: imageId } = (await uploaded.json()) as { id: string };

    const doctorPage = await login(doctor.email, doctor.password);
    const view = await doctorPage.goto(`${baseUrl()}/images/${imageId}`);
    expect(view?.status()).toBe(200);

    const patientPage = await login(patient.account!.email, patient.account!.password);
    await patientPage.getByRole("heading", { level: 1, name: /Mon dossier/ }).waitFor();
    await patientPage.getByRole("button", { name: /^Retirer — Soins/ }).click();
    await patientPage.getByRole("button", { name: "Confirmer le retrait" }).click();
    await patientPage.getByText("Votre choix est enregistré").waitFor();
    await expect.poll(() => patientPage.locator('[data-purpose="care"]').textContent()).toContain("retiré");
    await patientPage.screenshot({ path: `${ARTIFACTS}/portal-revoked.png`, fullPage: true });

    const refused = await doctorPage.goto(`${baseUrl()}/images/${imageId}`);
    expect(refused?.status()).toBe(403);
    expect(await doctorPage.getByRole("alert").textContent()).toContain("Consentement aux soins retiré");
    // The patient page says why the images cannot be opened.
    await doctorPage.goto(`${baseUrl()}/patients/${patient.id}`);
    expect(await doctorPage.getByText("consultation refusée").count()).toBe(1);
    await doctorPage.screenshot({ path: `${ARTIFACTS}/doctor-refused.png`, fullPage: true });

    await patientPage.getByRole("button", { name: /^Accorder — Soins/ }).click();
    await expect.poll(() => patientPage.locator('[data-purpose="care"]').textContent()).toContain("accordé");

    const again = await doctorPage.goto(`${baseUrl()}/images/${imageId}`);
    expect(again?.status()).toBe(200);
    await doctorPage.locator("figure img").waitFor();

    // The patient sees the refused access in their log.
    await patientPage.reload();
    const log = patientPage.getByTestId("access-log");
    expect(await log.getByRole("row").filter({ hasText: "refusé" }).count()).toBeGreaterThan(0);
    await patientPage.context().close();
    await doctorPage.context().close();
  });
});
