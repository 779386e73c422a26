import type { ActionFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, HttpError, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { outboxEntry, retryEntry } from "../results/outbox.server";

/**
 * POST /api/v1/outbox/:entryId/retry — an admin sends a `failed` report to the PACS again (fresh attempts, due now):
 * 200 `{id, status:"pending"}`; 409 `wrong_state` when it is not `failed`; 404 for no such entry.
 */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("POST");
  const ctx = await apiContext(args);
  const entryId = idParam(ctx, args.params.entryId);
  const entry = await outboxEntry(entryId);
  // Admins only, asked first: whether an entry exists is nobody else's business (403 either way).
  const result = await perform(
    ctx,
    "outbox.retry",
    { type: "outbox", id: entryId },
    async () => {
      if (!entry) throw new HttpError(404, "not_found", "Envoi introuvable.");
      return retryEntry(entryId);
    },
    { patientId: entry?.patientId ?? null },
  );
  return Response.json(result);
}

export function loader() {
  return methodNotAllowed("POST");
}
