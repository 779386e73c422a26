import type { LoaderFunctionArgs } from "@remix-run/node";
import { pageContext } from "../http/context.server";
import { idParam } from "../http/params.server";
import { imageFailure } from "../imaging/image-failure.server";
import { heatmapResponse } from "../predictions/serve.server";
import { browserResource, requestIdOf } from "../http/error-page.server";

/** The heatmap for the browser's image viewer (session cookie); a refusal carries its code and reason (fr/en). */
export const loader = (args: LoaderFunctionArgs) => browserResource(args.request, requestIdOf(args), () => load(args));

async function load(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  try {
    return await heatmapResponse(ctx, idParam(ctx, args.params.predictionId));
  } catch (err) {
    throw imageFailure(ctx, err, "heatmap");
  }
}
