import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { vault } from "../vault/instance.server";
import { missingFile } from "../vault/serve.server";
import { receiveUploads } from "../vault/upload.server";

/** GET /api/v1/patients/:patientId/images — the patient's images (metadata only). */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const list = await perform(ctx, "image.list", { type: "patient", id: patientId }, () => vault.listImages(patientId));
  return Response.json({
    images: list
      .filter((i) => !i.erasedAt)
      .map((i) => ({ id: i.id, contentType: i.contentType, size: i.size, createdAt: i.createdAt.toISOString() })),
  });
}

/** POST /api/v1/patients/:patientId/images — multipart field `file`: encrypted in memory, stored, 201. */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("GET, POST");
  const ctx = await apiContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const image = await perform(
    ctx,
    "image.upload",
    { type: "patient", id: patientId },
    async () => {
      const [first] = await receiveUploads(args.request, {
        store: (file) => vault.storeImage({ patientId, uploadedBy: ctx.actor!.id, ...file }),
      });
      if (!first) throw missingFile();
      if (!first.ok) throw first.error;
      return first.image;
    },
    { describe: (img) => ({ resourceType: "image", resourceId: img.id }) },
  );
  return Response.json(image, { status: 201 });
}
