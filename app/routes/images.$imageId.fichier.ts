import type { LoaderFunctionArgs } from "@remix-run/node";
import sharp from "sharp";
import { HttpError, failure, pageContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { dicomToGreyAsync } from "../imaging/dicom.server";
import { vault } from "../vault/instance.server";
import { imageResponse, integrityRecorder, loadImage } from "../vault/serve.server";
import { browserResource, requestIdOf, unknownAs404 } from "../http/error-page.server";

/**
 * The image bytes for the browser (session cookie): the original (inline, or `?telecharger=1` as a download), or
 * for DICOM `?apercu=1`, a PNG rendered on the server with windowing. Decrypted in memory only.
 */
export const loader = (args: LoaderFunctionArgs) => browserResource(args.request, requestIdOf(args), () => load(args));

async function load(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  const params = new URL(args.request.url).searchParams;
  const row = await loadImage(imageId);
  try {
    return await unknownAs404(ctx, Boolean(row), () => perform(ctx, "image.read", { type: "image", id: imageId, patientId: row?.patientId }, async () => {
      if (params.has("apercu") && row!.contentType === "application/dicom") {
        const grey = await dicomToGreyAsync(await vault.readImage(row!, integrityRecorder(ctx, row!)));
        const png = await sharp(Buffer.from(grey.pixels), { raw: { width: grey.width, height: grey.height, channels: 1 } })
          .resize({ width: 1600, height: 1600, fit: "inside", withoutEnlargement: true })
          .png()
          .toBuffer();
        return new Response(new Uint8Array(png), { headers: { "Content-Type": "image/png", "Cache-Control": "private, no-store" } });
      }
      return imageResponse(ctx, row!, params.has("telecharger"));
    }));
  } catch (err) {
    if (err instanceof HttpError) throw failure(ctx, err.status, err.code, err.message);
    throw err;
  }
}
