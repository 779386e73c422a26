import type { LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "../http/api.server";
import { apiContext } from "../http/context.server";
import { idParam } from "../http/params.server";
import { heatmapResponse } from "../predictions/serve.server";

/** GET /api/v1/predictions/:predictionId/heatmap — the Grad-CAM overlay (PNG with alpha), decrypted in memory. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  return heatmapResponse(ctx, idParam(ctx, args.params.predictionId));
}

export function action() {
  return methodNotAllowed("GET");
}
