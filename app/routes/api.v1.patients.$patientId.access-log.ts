import type { LoaderFunctionArgs } from "@remix-run/node";
import { accessLogOf } from "../audit/audit.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";

/** GET /api/v1/patients/:patientId/access-log — the patient's own view of who accessed their data. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const events = await perform(ctx, "accessLog.read", { type: "patient", id: patientId }, () => accessLogOf(patientId));
  return Response.json({ events: events.map((e) => ({ ...e, at: e.at.toISOString() })) });
}

export function action() {
  return methodNotAllowed("GET");
}
