import type { LoaderFunctionArgs } from "@remix-run/node";
import { auditQuerySchema, searchEvents } from "../audit/audit.server";
import { invalid, methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { parseWith } from "../http/validation.server";

/** GET /api/v1/audit — the audit trail, filtered and paged by cursor (admins). */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const params = Object.fromEntries(new URL(args.request.url).searchParams);
  return perform(ctx, "audit.read", { type: "audit" }, async () => {
    const parsed = parseWith(auditQuerySchema, params);
    if (!parsed.ok) throw invalid(parsed.errors);
    const page = await searchEvents(parsed.data);
    return Response.json({
      events: page.events.map(({ prevHash: _p, ...e }) => ({ ...e, at: e.at.toISOString() })),
      nextCursor: page.nextCursor === null ? null : String(page.nextCursor),
    });
  });
}

export function action() {
  return methodNotAllowed("GET");
}
