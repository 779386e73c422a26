/**
 * Where the viewer gets its pixels: the one place that names the pixel endpoint. Every byte comes through
 * `/images/:imageId/fichier`, which runs the policy check (care consent live, care team), writes one audit event per
 * request and answers `Cache-Control: private, no-store`.
 */
export interface ViewerImageRef {
  imageId: string;
  contentType: string;
}

/** The consent-gated URL of an image's original bytes (decrypted in the server's memory only). */
export function pixelUrl(imageId: string): string {
  return `/images/${encodeURIComponent(imageId)}/fichier`;
}

/**
 * The Cornerstone image id of a view: `wadouri:` for DICOM (the DICOM image loader and its WASM codecs), `web:` for
 * JPEG/PNG (the viewer's own loader). Absolute, because the decoding workers resolve URLs against their own script.
 */
export function cornerstoneImageId(image: ViewerImageRef, origin: string): string {
  const url = new URL(pixelUrl(image.imageId), origin).toString();
  return image.contentType === "application/dicom" ? `wadouri:${url}` : `web:${url}`;
}

/** One view's bytes, fetched once into memory (never a cache: `no-store` both ways). */
export async function fetchPixels(imageId: string, signal: AbortSignal): Promise<ArrayBuffer> {
  const res = await fetch(pixelUrl(imageId), { credentials: "same-origin", cache: "no-store", signal });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.arrayBuffer();
}

declare global {
  interface Window {
    /** Fetches started by the page's inline script (earlyPrefetchScript), by image id, taken once by prefetchViews. */
    __nexusPixels?: Record<string, Promise<ArrayBuffer>>;
  }
}

/**
 * The same fetches as prefetchViews, as an inline script run while the HTML is parsed — before the page's modules
 * load and hydrate. The viewer's effect takes them over; where the script did not run (a client-side navigation)
 * the effect fetches itself.
 */
export function earlyPrefetchScript(groups: string[][]): string {
  const urls = groups.map((ids) => ids.map((id) => [id, pixelUrl(id)]));
  return `(function(){var P=window.__nexusPixels=window.__nexusPixels||{},prev=Promise.resolve();${JSON.stringify(urls).replace(/</g, "\\u003c")}.forEach(function(g){var s=prev;prev=Promise.allSettled(g.map(function(e){var p=s.then(function(){return fetch(e[1],{credentials:"same-origin",cache:"no-store"}).then(function(r){if(!r.ok)throw new Error("HTTP "+r.status);return r.arrayBuffer()})});p.catch(function(){});P[e[0]]=p;return p}))})})();`;
}

/**
 * Starts fetching the exam's views at once — while the viewer's code is still loading — and the prior's as soon as
 * the current exam's bytes are in (so the server decrypts the prior while the browser decodes the current views).
 * One request per view, as before: one audit event each.
 */
export function prefetchViews(groups: { name: string; imageIds: string[] }[], signal: AbortSignal): Map<string, Promise<ArrayBuffer>> {
  const out = new Map<string, Promise<ArrayBuffer>>();
  let previous: Promise<unknown> = Promise.resolve();
  for (const group of groups) {
    const start = previous;
    const promises = group.imageIds.map((id) => {
      const early = typeof window !== "undefined" ? window.__nexusPixels?.[id] : undefined;
      if (early) delete window.__nexusPixels![id];
      const p = early ?? start.then(() => fetchPixels(id, signal));
      // Errors surface where the view is loaded; this copy only orders the groups.
      p.catch(() => undefined);
      out.set(id, p);
      return p;
    });
    previous = Promise.allSettled(promises);
  }
  return out;
}
