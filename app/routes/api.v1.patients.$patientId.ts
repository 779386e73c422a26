import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { getPatient, identityOf } from "../patients/patients.server";
import { vault } from "../vault/instance.server";

/** DELETE /api/v1/patients/:patientId — GDPR art. 17 erasure of a patient: images crypto-shredded, name removed. */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "DELETE") return methodNotAllowed("GET, DELETE");
  const ctx = await apiContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const result = await perform(ctx, "patient.erase", { type: "patient", id: patientId }, () =>
    vault.erasePatient(patientId, ctx.actor!.id),
  );
  return Response.json({ erasedImages: result.images });
}

/** GET /api/v1/patients/:patientId — `{id, displayName, ipp?, ins?, birthDate?, sex?, createdAt}` for her doctors and herself. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const patient = await perform(ctx, "patient.read", { type: "patient", id: patientId }, () => getPatient(patientId));
  if (!patient) return Response.json({ error: { code: "not_found", message: "Patient introuvable." } }, { status: 404 });
  return Response.json(identityOf(patient));
}
