import type { LoaderFunctionArgs } from "@remix-run/node";
import { consentState } from "../consent/consent.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";

/** GET /api/v1/patients/:patientId/consents — the live state of each purpose. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const state = await perform(ctx, "consent.read", { type: "patient", id: patientId }, () => consentState(patientId));
  return Response.json(
    Object.fromEntries(
      Object.entries(state).map(([purpose, s]) => [purpose, { granted: s.granted, updatedAt: s.updatedAt?.toISOString() ?? null }]),
    ),
  );
}

export function action() {
  return methodNotAllowed("GET");
}
