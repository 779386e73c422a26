import type { ActionFunctionArgs } from "@remix-run/node";
import { z } from "zod";
import { attachEntry, rejectEntry } from "../dicomweb/inbox.server";
import { invalid, methodNotAllowed, readJson } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { parseWith } from "../http/validation.server";

const decisionSchema = z.discriminatedUnion("decision", [
  z.object({ decision: z.literal("attach"), patientId: z.uuid("Identifiant de patient invalide.") }),
  z.object({ decision: z.literal("reject") }),
], { message: "decision : « attach » (avec patientId) ou « reject »." });

/**
 * POST /api/v1/dicom-inbox/:entryId `{decision:"attach", patientId}` → 201 `{imageId}` (identity check: 409
 * identity_mismatch, the entry stays queued) | `{decision:"reject"}` → 204 (the instance is crypto-shredded).
 */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("POST");
  const ctx = await apiContext(args);
  const entryId = idParam(ctx, args.params.entryId);
  const body = await readJson(args.request).catch((res: Response) => res);
  const parsed = body instanceof Response ? null : parseWith(decisionSchema, body);
  const decision = parsed?.ok ? parsed.data : null;
  // Attaching is filing to a patient: the care team rule applies to that patient; rejecting needs a doctor.
  const resource = decision?.decision === "attach" ? { type: "patient" as const, id: decision.patientId } : { type: "inbox" as const, id: entryId };
  const result = await perform(ctx, "inbox.resolve", resource, async () => {
    if (body instanceof Response) throw body;
    if (!parsed!.ok) throw invalid(parsed!.errors);
    if (decision!.decision === "reject") {
      await rejectEntry(entryId, ctx.actor!.id);
      return null;
    }
    return attachEntry(entryId, decision!.patientId, ctx.actor!);
  });
  return result ? Response.json(result, { status: 201 }) : new Response(null, { status: 204 });
}
