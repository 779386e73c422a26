import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, apiError, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { vault } from "../vault/instance.server";
import { imageResponse, loadImage } from "../vault/serve.server";

/** GET /api/v1/images/:imageId — the decrypted original bytes, verified segment by segment. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  const row = await loadImage(imageId);
  return perform(ctx, "image.read", { type: "image", id: imageId, patientId: row?.patientId }, () =>
    imageResponse(ctx, row!, new URL(args.request.url).searchParams.has("download")),
  );
}

/** DELETE /api/v1/images/:imageId — erasure (crypto-shredding: the data key goes first). */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "DELETE") return methodNotAllowed("GET, DELETE");
  const ctx = await apiContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  const row = await loadImage(imageId);
  const erased = await perform(ctx, "image.erase", { type: "image", id: imageId, patientId: row?.patientId }, () =>
    vault.eraseImage(imageId, ctx.actor!.id),
  );
  return erased ? new Response(null, { status: 204 }) : apiError(410, "erased", "Image déjà effacée.");
}
