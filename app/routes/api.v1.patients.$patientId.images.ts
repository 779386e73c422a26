import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { authorize } from "../policy/policy.server";
import { predictionsOfPatient, type PredictionView } from "../predictions/predictions.server";
import { vault } from "../vault/instance.server";
import type { StoredImage } from "../vault/vault.server";
import { missingFile } from "../vault/serve.server";
import { collectUploadField, examAdmission, type UploadFields } from "../exams/exams.server";
import { receiveUploads, type UploadOutcome } from "../vault/upload.server";

/** GET /api/v1/patients/:patientId/images — the patient's images (metadata only). */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const [list, readings] = await perform(ctx, "image.list", { type: "patient", id: patientId }, async () => {
    // Model output goes to the care team only: the patient's answer carries no prediction field at all.
    const mayReadAi = (await authorize(ctx.actor, "prediction.read", { type: "image", patientId })).allowed;
    return Promise.all([vault.listImages(patientId), mayReadAi ? predictionsOfPatient(patientId) : []]);
  });
  // Newest first: the first reading met for an image is its latest.
  const latest = new Map<string, PredictionView>();
  for (const p of readings) if (!latest.has(p.imageId)) latest.set(p.imageId, p);
  return Response.json({
    images: list
      .filter((i) => !i.erasedAt)
      .map((i) => {
        const p = latest.get(i.id);
        return {
          id: i.id,
          contentType: i.contentType,
          size: i.size,
          createdAt: i.createdAt.toISOString(),
          examId: i.examId,
          laterality: i.laterality,
          view: i.view,
          ...(p ? { latestPrediction: { id: p.id, label: p.label, probability: p.probability, createdAt: p.createdAt, model: p.model, notice: p.notice } } : {}),
        };
      }),
  });
}

/**
 * POST /api/v1/patients/:patientId/images — multipart field `file`: encrypted in memory, stored, 201
 * `{id, size, sha256, contentType}`. Several `file` parts are each stored: 201 with `files` listing them all, or
 * 207 with each file's outcome when some were refused.
 */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("GET, POST");
  const ctx = await apiContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const outcomes = await perform(
    ctx,
    "image.upload",
    { type: "patient", id: patientId },
    async () => {
      // Fields (laterality, view, examId) precede the file parts they apply to.
      const fields: UploadFields = {};
      const admit = examAdmission({ patientId, actor: ctx.actor!, fields, allowOverride: false });
      const outcomes = await receiveUploads(args.request, {
        onField: (name, value) => void collectUploadField(fields, name, value),
        store: (file) => vault.storeImage({ patientId, uploadedBy: ctx.actor!.id, ...file, admit, timing: ctx.info.timing }),
        discard: (ids) => vault.discardImages(ids),
      });
      if (outcomes.length === 0) throw missingFile();
      // Nothing stored: the request fails with the (first) reason.
      if (outcomes.every((o) => !o.ok)) throw (outcomes[0] as Extract<UploadOutcome, { ok: false }>).error;
      return outcomes;
    },
    { describe: (o) => ({ resourceType: "image", resourceId: o.flatMap((x) => (x.ok ? [x.image.id] : [])).join(",") }) },
  );
  if (outcomes.length === 1) return Response.json(stored((outcomes[0] as Extract<UploadOutcome, { ok: true }>).image), { status: 201 });
  const files = outcomes.map((o) =>
    o.ok ? { fileName: o.fileName, ...stored(o.image) } : { fileName: o.fileName, error: { code: o.error.code, message: o.error.message } },
  );
  const first = outcomes.find((o) => o.ok) as Extract<UploadOutcome, { ok: true }>;
  return Response.json({ ...stored(first.image), files }, { status: outcomes.every((o) => o.ok) ? 201 : 207 });
}

/** The 201 answer for one stored file: `{id, size, sha256, contentType, examId, laterality, view}`. */
function stored(image: StoredImage) {
  const { placement, ...rest } = image;
  return {
    ...rest,
    examId: placement?.examId ?? null,
    laterality: placement?.laterality ?? null,
    view: placement?.view ?? null,
    ...(placement?.identityNotice ? { identityNotice: placement.identityNotice } : {}),
  };
}
