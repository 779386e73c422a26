import type { LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, apiError, perform } from "../http/context.server";
import { listOutbox, OUTBOX_STATUSES } from "../results/outbox.server";

/**
 * GET /api/v1/outbox[?status=pending|sent|failed|cancelled] — the reports queued for the PACS (PACS_PUSH) and how
 * their delivery went: identifiers, attempts, last error, no medical content. Admins (`outbox.list`).
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const status = new URL(args.request.url).searchParams.get("status");
  const entries = await perform(ctx, "outbox.list", { type: "app" }, async () => {
    if (status !== null && !(OUTBOX_STATUSES as readonly string[]).includes(status)) {
      throw apiError(400, "invalid", `status : valeur inconnue (attendu : ${OUTBOX_STATUSES.join(", ")}).`);
    }
    return listOutbox(status as (typeof OUTBOX_STATUSES)[number] | null);
  });
  return Response.json({ entries });
}

export function action() {
  return methodNotAllowed("GET");
}
