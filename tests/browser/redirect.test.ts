/**
 * Open redirects in a real browser (issue 11, item 1): Chromium follows every known bypass through `/langue?retour=`
 * and through the login form's `redirectTo`, and must stay on the Nexus origin. Skipped, with one line, without
 * Chromium.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium } from "playwright-core";
import { baseUrl, DEMO_PASSWORD } from "../helpers/http";
import { CHROMIUM, chromiumOrSkipLine } from "../helpers/browser";
import { BYPASSES } from "../hardening/redirect-bypasses";
import type { Browser } from "playwright-core";

const hasChromium = chromiumOrSkipLine();

describe.skipIf(!hasChromium)("open redirects (Chromium)", () => {
  let browser: Browser;
  beforeAll(async () => {
    // Every host other than the test server's resolves to nothing: a browser that left would show an error page
    // on evil.example, and its URL would say so.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
    });
  });
  afterAll(() => browser?.close());

  const origin = () => new URL(baseUrl()).origin;

  it("stays on the origin through /langue?retour= for every known bypass", async () => {
    const page = await browser.newPage();
    const left: string[] = [];
    for (const value of BYPASSES) {
      await page.goto(`${baseUrl()}/langue?l=fr&retour=${encodeURIComponent(value)}`).catch(() => null);
      if (new URL(page.url()).origin !== origin()) left.push(`${JSON.stringify(value)} → ${page.url()}`);
    }
    await page.close();
    expect(left).toEqual([]);
  }, 120_000);

  it("stays on the origin after logging in with a hostile redirectTo", async () => {
    const left: string[] = [];
    const values = ["/\t/evil.example", "/\\evil.example", "//evil.example", "/%09/evil.example", "%2F%5Cevil.example", "https://evil.example"];
    // Without JavaScript the browser itself follows the Location header; with it, Remix's router does.
    for (const [value, javaScriptEnabled] of values.flatMap((v) => [[v, false], [v, true]] as const)) {
      const context = await browser.newContext({ javaScriptEnabled });
      const page = await context.newPage();
      await page.goto(`${baseUrl()}/connexion?redirectTo=${encodeURIComponent(value)}`);
      await page.getByLabel("Adresse e-mail").fill("doctor@demo.nexus");
      await page.getByLabel("Mot de passe").fill(DEMO_PASSWORD);
      await page.getByRole("button", { name: "Se connecter" }).click();
      await page.waitForURL((url) => !url.pathname.startsWith("/connexion")).catch(() => null);
      if (new URL(page.url()).origin !== origin()) left.push(`${JSON.stringify(value)} (JS ${javaScriptEnabled}) → ${page.url()}`);
      await context.close();
    }
    expect(left).toEqual([]);
  }, 120_000);
});
