/**
 * The interoperability pages in Chromium, on a phone (390 px), with and without JavaScript: an admin creates a
 * machine account and sees its token once; a doctor attaches a queued instance to the wrong record, reads the
 * differing fields, and files it with a reason. The states only a form post reaches (the token, the mismatch) are
 * checked here for overflow and axe (tests/browser/layout.test.ts visits the pages' GET states). Skipped, with one
 * clear line, where /usr/bin/chromium is absent.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import type { Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { api, baseUrl, DEMO_PASSWORD, tokenFor } from "../helpers/http";
import { createPatient } from "../helpers/fixtures";
import { mammogram, stowBody, uid } from "../helpers/dicom";
import { ARTIFACTS, chromiumOrSkipLine, useChromium } from "../helpers/browser";

const hasChromium = chromiumOrSkipLine();
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const PHONE = { width: 390, height: 844 };

/**
 * Problems of the page as it is: wider than the screen, or serious/critical axe violations (axe runs in the page,
 * so only with JavaScript; the markup is the same without it).
 */
async function problems(page: Page, javaScriptEnabled: boolean): Promise<string[]> {
  const found: string[] = [];
  const width = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  if (width.scroll > width.inner) found.push(`laid out at ${width.scroll} px in ${width.inner} px`);
  if (!javaScriptEnabled) return found;
  await page.addScriptTag({ content: AXE });
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  return [...found, ...violations];
}

describe.skipIf(!hasChromium)("machine accounts and the reconciliation queue in the browser", () => {
  const browser = useChromium();
  const ipp = `BRW-${randomUUID().slice(0, 8)}`;
  const entries: string[] = [];
  let wrongName = "";

  beforeAll(async () => {
    const doctor = await tokenFor("doctor@demo.nexus");
    wrongName = `Odile Navigateur-${randomUUID().slice(0, 4)}`;
    await createPatient(doctor, { displayName: wrongName, birthDate: "1955-01-02", sex: "F", consents: { care: true } } as never);
    const { body, contentType } = stowBody(
      [uid(), uid()].map((studyInstanceUid) =>
        mammogram({ patientId: ipp, patientName: "MOREAU^CLAIRE", birthDate: "19750303", sex: "F", studyInstanceUid }),
      ),
    );
    const res = await fetch(`${baseUrl()}/dicomweb/studies`, { method: "POST", headers: { Authorization: `Bearer ${doctor}`, "Content-Type": contentType }, body });
    expect(res.status).toBe(409);
    const list = await api("GET", "/api/v1/dicom-inbox", { token: doctor });
    for (const e of list.body.entries as any[]) if (e.identity?.patientId === ipp) entries.push(e.id);
    expect(entries).toHaveLength(2);
  }, 60_000);

  async function signedIn(email: string, javaScriptEnabled: boolean): Promise<Page> {
    const context = await browser().newContext({ locale: "fr-FR", viewport: PHONE, javaScriptEnabled });
    const page = await context.newPage();
    await page.goto(`${baseUrl()}/connexion`);
    await page.getByLabel("Adresse e-mail").fill(email);
    await page.getByLabel("Mot de passe").fill(DEMO_PASSWORD);
    await page.getByRole("button", { name: "Se connecter" }).click();
    await page.waitForURL((url) => !url.pathname.startsWith("/connexion"));
    return page;
  }

  for (const javaScriptEnabled of [true, false]) {
    const mode = javaScriptEnabled ? "with JavaScript" : "without JavaScript";

    it(`an admin creates a machine account and copies its token, shown once (${mode})`, async () => {
      const page = await signedIn("admin@demo.nexus", javaScriptEnabled);
      await page.getByRole("navigation", { name: "Navigation principale" }).getByRole("link", { name: "Comptes machines" }).click();
      await page.getByRole("heading", { level: 1, name: "Comptes machines (modalités, PACS)" }).waitFor();
      const name = `PACS navigateur ${randomUUID().slice(0, 6)}`;
      await page.getByLabel("Nom", { exact: true }).fill(name);
      await page.getByLabel(/^query/).check();
      await page.getByRole("button", { name: "Créer un compte machine" }).click();
      const token = page.getByTestId("machine-token");
      await token.waitFor();
      expect(await token.inputValue()).toMatch(/^nxs_/);
      expect(await problems(page, javaScriptEnabled)).toEqual([]);
      await page.screenshot({ path: `${ARTIFACTS}/machines-token-${javaScriptEnabled ? "js" : "nojs"}.png`, fullPage: true });
      await page.goto(`${baseUrl()}/admin/machines`);
      await page.getByRole("heading", { level: 2, name }).waitFor();
      expect(await page.getByTestId("machine-token").count()).toBe(0);
      await page.context().close();
    });

    it(`a doctor sees the differing fields, then files the instance with a reason (${mode})`, async () => {
      const entry = entries[javaScriptEnabled ? 0 : 1]!;
      const page = await signedIn("doctor@demo.nexus", javaScriptEnabled);
      await page.getByRole("navigation", { name: "Navigation principale" }).getByRole("link", { name: /À rapprocher/ }).click();
      await page.getByRole("heading", { level: 1, name: "Images à rapprocher" }).waitFor();
      await page.locator(`li[data-entry="${entry}"]`).getByRole("link", { name: /Rattacher à une patiente/ }).click();
      const panel = page.locator(`li[data-entry="${entry}"]`);
      await panel.getByRole("searchbox").fill(wrongName);
      await panel.getByRole("button", { name: "Rechercher" }).click();
      await panel.getByRole("button", { name: `Rattacher à ${wrongName}` }).click();
      await page.getByTestId("identity-mismatch").waitFor();
      const mismatch = page.getByTestId("identity-mismatch");
      expect(await mismatch.locator("tr[data-field]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-field")))).toEqual([
        "PatientName",
        "PatientBirthDate",
      ]);
      expect(await problems(page, javaScriptEnabled)).toEqual([]);
      await page.screenshot({ path: `${ARTIFACTS}/inbox-mismatch-${javaScriptEnabled ? "js" : "nojs"}.png`, fullPage: true });
      await mismatch.getByLabel("Motif").fill("Erreur de saisie à la modalité, vérifiée au téléphone");
      await mismatch.getByRole("button", { name: "Rattacher malgré la discordance" }).click();
      await page.getByText("Image rattachée et classée dans l'examen de la patiente.").waitFor();
      expect(await page.locator(`li[data-entry="${entry}"]`).count()).toBe(0);
      await page.context().close();
    });
  }
});
