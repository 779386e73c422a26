import type { LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";

/** GET /api/v1/me — who the token belongs to. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const me = await perform(ctx, "account.self", { type: "account", id: ctx.actor?.id }, async () => {
    const a = ctx.actor!;
    return { id: a.id, email: a.email, role: a.role, ...(a.patientId ? { patientId: a.patientId } : {}) };
  });
  return Response.json(me);
}

export function action() {
  return methodNotAllowed("GET");
}
