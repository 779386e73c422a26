/** Debian's Chromium for browser tests, driven by playwright-core (never a downloaded browser). */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { chromium, type Browser, type Locator, type Page } from "playwright-core";
import sharp from "sharp";
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

/**
 * Writes a page's screenshot to `path` (docs/screenshots), unless the file there already shows the same page: fewer
 * than `tolerance` pixels differ (Chromium's anti-aliasing of a rounded border can change a few pixels from one run
 * to the next), not counting the page's navigation bar and the boxes of the `ignore` elements (what changes with each
 * run: a key, a date). A real change still rewrites the file; otherwise a run of the tests leaves the checkout clean.
 */
export async function saveScreenshot(page: Page, path: string, options: { tolerance?: number; ignore?: Locator[] } = {}): Promise<void> {
  const tolerance = options.tolerance ?? 50;
  const shot = await page.screenshot({ animations: "disabled" });
  if (existsSync(path)) {
    // The navigation bar is never compared: its badge counts what other tests left waiting (the DICOM inbox).
    const ignore = [page.locator("header").first(), ...(options.ignore ?? [])];
    const boxes = (await Promise.all(ignore.map(async (l) => ((await l.count()) > 0 ? l.boundingBox() : null)))).filter((b) => b !== null);
    const ignored = (x: number, y: number) => boxes.some((b) => x >= b.x && x < b.x + b.width && y >= b.y && y < b.y + b.height);
    const [a, b] = await Promise.all([sharp(shot).raw().toBuffer({ resolveWithObject: true }), sharp(path).raw().toBuffer({ resolveWithObject: true })]);
    if (a.info.width === b.info.width && a.info.height === b.info.height && a.info.channels === b.info.channels) {
      const { width, channels } = a.info;
      let differing = 0;
      for (let i = 0; i < a.data.length && differing < tolerance; i += channels) {
        for (let k = 0; k < channels; k++) {
          if (a.data[i + k] !== b.data[i + k]) {
            const pixel = i / channels;
            if (!ignored(pixel % width, Math.floor(pixel / width))) differing++;
            break;
          }
        }
      }
      if (differing < tolerance) return;
    }
  }
  writeFileSync(path, shot);
}
