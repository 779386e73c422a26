/** Debian's Chromium for browser tests, driven by playwright-core (never a downloaded browser). */
import { existsSync, mkdirSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll } from "vitest";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const hasChromium = existsSync(CHROMIUM);
/** Screenshots of the main pages, kept as test artifacts. */
export const ARTIFACTS = "test-results/screenshots";

/** True when Chromium is present; otherwise prints the one "skipped: …" line of this test file. */
export function chromiumOrSkipLine(): boolean {
  if (!hasChromium) console.log(`skipped: no Chromium at ${CHROMIUM}`);
  return hasChromium;
}

/** Headless, sandbox off (root in CI), and no background networking: this machine has no internet. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/** One Chromium for the enclosing describe block: launched before its tests, closed after; returns a getter. */
export function useChromium(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  return () => browser!;
}
