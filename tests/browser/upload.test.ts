/**
 * Uploading mammograms in a real browser (Debian's Chromium): with JavaScript, the progress bar and the result
 * appear without a full reload; without JavaScript, the same form works as a plain multipart post. Skipped, with
 * one clear line, where /usr/bin/chromium is absent.
 */
import { type BrowserContext } from "playwright-core";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { baseUrl, DEMO_PASSWORD } from "../helpers/http";
import { ARTIFACTS, chromiumOrSkipLine, useChromium } from "../helpers/browser";

const hasChromium = chromiumOrSkipLine();

const jpeg = (w: number, h: number) =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r: 90, g: 90, b: 90 } } }).jpeg().toBuffer();

describe.skipIf(!hasChromium)("mammogram upload in the browser", () => {
  const browser = useChromium();

  async function doctorOnPatientPage(javaScriptEnabled: boolean): Promise<BrowserContext> {
    const context = await browser().newContext({ javaScriptEnabled });
    const page = await context.newPage();
    await page.goto(`${baseUrl()}/connexion`);
    await page.getByLabel("Adresse e-mail").fill("doctor@demo.nexus");
    await page.getByLabel("Mot de passe").fill(DEMO_PASSWORD);
    await page.getByRole("button", { name: "Se connecter" }).click();
    await page.getByRole("heading", { name: "Mes patients" }).waitFor();
    await page.getByRole("row", { name: /Camille Dupont/ }).getByRole("link", { name: "Ouvrir" }).click();
    await page.getByRole("heading", { level: 1, name: "Camille Dupont" }).waitFor();
    return context;
  }

  it("shows a progress bar, then the per-file result and the new images without a full reload", async () => {
    const context = await doctorOnPatientPage(true);
    const page = context.pages()[0]!;
    const before = await page.locator("tr[data-image-id]").count();
    // A marker on window survives only if the page is not reloaded.
    await page.evaluate(() => ((window as unknown as { nexusNoReload: boolean }).nexusNoReload = true));
    // A 12 MB JPEG (valid head, padded) so the progress bar has time to show.
    const big = Buffer.concat([await jpeg(1200, 900), Buffer.alloc(12 * 1024 * 1024, 7)]);
    await page.setInputFiles("#upload-file", [
      { name: "grand.jpg", mimeType: "image/jpeg", buffer: big },
      { name: "petit.jpg", mimeType: "image/jpeg", buffer: await jpeg(300, 200) },
      { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("pas une image") },
    ]);
    await page.getByRole("button", { name: "Envoyer" }).click();
    await page.getByRole("progressbar", { name: /Envoi/ }).waitFor();
    await page.getByText("2 / 3 fichier(s) enregistré(s), chiffré(s).").waitFor({ timeout: 30_000 });
    expect(await page.getByText(/notes\.txt : Type de fichier non pris en charge/).count()).toBe(1);
    await expect.poll(() => page.locator("tr[data-image-id]").count()).toBe(before + 2);
    expect(await page.evaluate(() => (window as unknown as { nexusNoReload?: boolean }).nexusNoReload)).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}/upload-progress.png`, fullPage: true });

    // The new image opens and is shown from its decrypted bytes.
    await page.locator("tr[data-image-id]").first().getByRole("link", { name: "Voir" }).click();
    await page.getByRole("heading", { level: 1, name: "Mammographie", exact: true }).waitFor();
    const img = page.locator("figure img");
    await expect.poll(() => img.evaluate((el) => (el as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    await page.screenshot({ path: `${ARTIFACTS}/image-view.png`, fullPage: true });
    await context.close();
  });

  it("works without JavaScript: the plain form posts and the page reports the result", async () => {
    const context = await doctorOnPatientPage(false);
    const page = context.pages()[0]!;
    const before = await page.locator("tr[data-image-id]").count();
    await page.setInputFiles("#upload-file", [{ name: "sans-js.jpg", mimeType: "image/jpeg", buffer: await jpeg(640, 480) }]);
    await page.getByRole("button", { name: "Envoyer" }).click();
    await page.getByText("1 fichier(s) enregistré(s), chiffré(s).").waitFor();
    expect(await page.locator("tr[data-image-id]").count()).toBe(before + 1);
    await context.close();
  });
});
