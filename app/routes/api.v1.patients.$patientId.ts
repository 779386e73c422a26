import type { ActionFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { vault } from "../vault/instance.server";

/** DELETE /api/v1/patients/:patientId — GDPR art. 17 erasure of a patient: images crypto-shredded, name removed. */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "DELETE") return methodNotAllowed("DELETE");
  const ctx = await apiContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const result = await perform(ctx, "patient.erase", { type: "patient", id: patientId }, () =>
    vault.erasePatient(patientId, ctx.actor!.id),
  );
  return Response.json({ erasedImages: result.images });
}

export function loader() {
  return methodNotAllowed("DELETE");
}
