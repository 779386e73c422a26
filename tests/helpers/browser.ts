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

/** Screenshots are compared by cells of CELL × CELL pixels, averaged (see saveScreenshot). */
const CELL = 16;
/** A cell differs when a channel of its average moved by more than this (0–255). */
const CELL_THRESHOLD = 24;

/**
 * Writes a page's screenshot to `path` (docs/screenshots), unless the file there already shows the same page. Both
 * images are averaged over cells of 16 × 16 pixels and compared cell by cell, not counting the page's navigation bar
 * and the boxes of the `ignore` elements (what changes with each run: a key, a date): the file is rewritten when at
 * least `tolerance` cells (4) differ. Pixel by pixel, two machines' Chromium and fonts differ without the page
 * differing (anti-aliasing, a line of text 1 px lower, the noise of a rendered image): hundreds of thousands of
 * pixels, but no cell by more than 12–27 levels, where another page differs in hundreds of cells by up to 255. A real
 * change rewrites the file; otherwise a run of the tests leaves the checkout clean on any machine.
 */
export async function saveScreenshot(page: Page, path: string, options: { tolerance?: number; ignore?: Locator[] } = {}): Promise<void> {
  const tolerance = options.tolerance ?? 4;
  const shot = await page.screenshot({ animations: "disabled" });
  if (existsSync(path)) {
    // The navigation bar is never compared: its badge counts what other tests left waiting (the DICOM inbox).
    const ignore = [page.locator("header").first(), ...(options.ignore ?? [])];
    const boxes = (await Promise.all(ignore.map(async (l) => ((await l.count()) > 0 ? l.boundingBox() : null)))).filter((b) => b !== null);
    const [a, b] = await Promise.all([sharp(shot).metadata(), sharp(path).metadata()]);
    if (a.width === b.width && a.height === b.height) {
      const columns = Math.ceil(a.width! / CELL);
      const rows = Math.ceil(a.height! / CELL);
      // A cell's box in page pixels (the resize spreads the image over whole cells: a little under CELL each).
      const w = a.width! / columns;
      const h = a.height! / rows;
      const ignored = (cx: number, cy: number) =>
        boxes.some((box) => cx * w < box.x + box.width && (cx + 1) * w > box.x && cy * h < box.y + box.height && (cy + 1) * h > box.y);
      const cells = (image: Buffer | string) => sharp(image).resize(columns, rows, { fit: "fill" }).removeAlpha().raw().toBuffer();
      const [ca, cb] = await Promise.all([cells(shot), cells(path)]);
      let differing = 0;
      for (let cell = 0; cell < columns * rows && differing < tolerance; cell++) {
        for (let k = 0; k < 3; k++) {
          if (Math.abs(ca[cell * 3 + k]! - cb[cell * 3 + k]!) > CELL_THRESHOLD) {
            if (!ignored(cell % columns, Math.floor(cell / columns))) differing++;
            break;
          }
        }
      }
      if (differing < tolerance) return;
    }
  }
  writeFileSync(path, shot);
}
