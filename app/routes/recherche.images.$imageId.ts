import type { LoaderFunctionArgs } from "@remix-run/node";
import { HttpError, pageContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { imageFailure } from "../imaging/image-failure.server";
import { deidentifiedPng } from "../research/research.server";
import { vault } from "../vault/instance.server";
import { integrityRecorder, loadImage } from "../vault/serve.server";
import { browserResource, requestIdOf, unknownAs404 } from "../http/error-page.server";

/**
 * A pseudonymised image for researchers (live `research` consent): re-rendered PNG without any metadata. An image
 * that cannot be decoded answers 422 with its reason (was 500), a full decode pool 503 with Retry-After.
 */
export const loader = (args: LoaderFunctionArgs) => browserResource(args.request, requestIdOf(args), () => load(args));

async function load(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  const row = await loadImage(imageId);
  try {
    const png = await unknownAs404(ctx, Boolean(row), () => perform(ctx, "research.image", { type: "image", id: imageId, patientId: row?.patientId }, async () => {
      if (row!.erasedAt) throw new HttpError(410, "erased", "Image effacée.");
      return deidentifiedPng(await vault.readImage(row!, integrityRecorder(ctx, row!)), row!.contentType);
    }));
    return new Response(png, { headers: { "Content-Type": "image/png", "Cache-Control": "private, no-store" } });
  } catch (err) {
    throw imageFailure(ctx, err, "rendering");
  }
}
