import { HttpError } from "../http/errors.server";
import type { Ctx } from "../http/context.server";
import { perform } from "../http/context.server";
import { getPrediction, heatmapOf } from "./predictions.server";

/** The heatmap PNG of a prediction: model output, for the care team only (never the patient). */
export async function heatmapResponse(ctx: Ctx, predictionId: string): Promise<Response> {
  const row = await getPrediction(predictionId);
  const png = await perform(
    ctx,
    "prediction.read",
    { type: "image", id: row?.imageId, patientId: row?.patientId },
    async () => {
      const bytes = await heatmapOf(row!);
      if (!bytes) throw new HttpError(410, "erased", "Carte de chaleur effacée avec son image.");
      return bytes;
    },
    { describe: () => ({ resourceType: "heatmap", resourceId: predictionId }) },
  );
  return new Response(new Uint8Array(png), { headers: { "Content-Type": "image/png", "Cache-Control": "private, no-store" } });
}
