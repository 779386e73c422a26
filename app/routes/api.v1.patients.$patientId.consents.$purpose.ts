import type { ActionFunctionArgs } from "@remix-run/node";
import { z } from "zod";
import { setConsent } from "../consent/consent.server";
import { invalid, methodNotAllowed, readJson } from "../http/api.server";
import { apiContext, apiError, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { parseWith } from "../http/validation.server";
import { PURPOSES, type Purpose } from "../vocabulary";

const bodySchema = z.object({ granted: z.boolean({ message: "granted doit valoir true ou false." }) }).strict();

/** PUT /api/v1/patients/:patientId/consents/:purpose — the patient grants or revokes; effective on the next request. */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "PUT") return methodNotAllowed("PUT");
  const ctx = await apiContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const purpose = args.params.purpose as Purpose;
  if (!PURPOSES.includes(purpose)) {
    return apiError(400, "unknown_purpose", `Finalité inconnue : ${args.params.purpose} (attendu : ${PURPOSES.join(", ")}).`);
  }
  const state = await perform(
    ctx,
    "consent.update",
    { type: "patient", id: patientId },
    async () => {
      const parsed = parseWith(bodySchema, await readJson(args.request));
      if (!parsed.ok) throw invalid(parsed.errors);
      return setConsent(patientId, purpose, parsed.data.granted, ctx.actor!);
    },
    { describe: (s) => ({ resourceType: "consent", resourceId: `${purpose}:${s.granted ? "granted" : "revoked"}` }) },
  );
  return Response.json({ purpose, granted: state.granted, updatedAt: state.updatedAt?.toISOString() ?? null });
}

export function loader() {
  return methodNotAllowed("PUT");
}
