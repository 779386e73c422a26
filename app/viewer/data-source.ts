/**
 * Where the viewer gets its pixels: the one place to change when WADO-RS (`/dicomweb`, branch `interop`) replaces
 * the consent-gated file endpoint. Every byte comes through `/images/:imageId/fichier`, which runs the policy check
 * (care consent live, care team), writes one audit event and answers `Cache-Control: private, no-store`.
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
