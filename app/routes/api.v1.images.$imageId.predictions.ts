import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { predict, predictionsOfImage } from "../predictions/predictions.server";
import { integrityRecorder, loadImage } from "../vault/serve.server";

/** POST /api/v1/images/:imageId/predictions — an AI reading (needs the patient's live `ai_analysis` consent). */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("GET, POST");
  const ctx = await apiContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  const row = await loadImage(imageId);
  const prediction = await perform(
    ctx,
    "image.analyse",
    { type: "image", id: imageId, patientId: row?.patientId },
    () => predict(row!, ctx.actor!, integrityRecorder(ctx, row!)),
    { describe: (p) => ({ resourceType: "prediction", resourceId: p.id }) },
  );
  return Response.json(prediction, { status: 201 });
}

/** GET /api/v1/images/:imageId/predictions — the image's readings, newest first. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  const row = await loadImage(imageId);
  const list = await perform(ctx, "prediction.read", { type: "image", id: imageId, patientId: row?.patientId }, () =>
    predictionsOfImage(imageId),
  );
  return Response.json({ predictions: list });
}
