import type { LoaderFunctionArgs } from "@remix-run/node";
import { pageContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { renderPng } from "../imaging/dicom.server";
import { imageFailure } from "../imaging/image-failure.server";
import { vault } from "../vault/instance.server";
import { imageResponse, integrityRecorder, loadImage } from "../vault/serve.server";
import { browserResource, requestIdOf, unknownAs404 } from "../http/error-page.server";

/**
 * The image bytes for the browser (session cookie): the original (inline, or `?telecharger=1` as a download), or
 * for DICOM `?apercu=1`, a PNG rendered in the decode pool (windowed grey, or colour). Decrypted in memory only.
 * A refusal answers its real code and reason in French and English (app/imaging/image-failure.server.ts).
 */
export const loader = (args: LoaderFunctionArgs) => browserResource(args.request, requestIdOf(args), () => load(args));

async function load(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  const params = new URL(args.request.url).searchParams;
  const preview = params.has("apercu");
  const row = await loadImage(imageId);
  try {
    return await unknownAs404(ctx, Boolean(row), () => perform(ctx, "image.read", { type: "image", id: imageId, patientId: row?.patientId }, async () => {
      if (preview && row!.contentType === "application/dicom") {
        const png = await renderPng(await vault.readImage(row!, integrityRecorder(ctx, row!)), row!.contentType, 1600);
        return new Response(png, { headers: { "Content-Type": "image/png", "Cache-Control": "private, no-store" } });
      }
      return imageResponse(ctx, row!, params.has("telecharger"));
    }));
  } catch (err) {
    throw imageFailure(ctx, err, preview ? "preview" : "download");
  }
}
