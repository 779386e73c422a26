import type { LoaderFunctionArgs } from "@remix-run/node";
import { auditQuerySchema, searchEvents } from "../audit/audit.server";
import { forAdmins } from "../audit/export.server";
import { filterSummary, filtersOf } from "../audit/filters.server";
import { invalid, methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { parseWith } from "../http/validation.server";

/**
 * GET /api/v1/audit — the audit trail, filtered and paged by cursor (admins). The search is itself audited, with its
 * filters; searching a patient's events counts as an access to that patient's trail. Patients acting on their own
 * record are not named (identifiers only, like the admin page).
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const params = Object.fromEntries(new URL(args.request.url).searchParams);
  const { page } = await perform(
    ctx,
    "audit.read",
    { type: "audit" },
    async () => {
      const parsed = parseWith(auditQuerySchema, params);
      if (!parsed.ok) throw invalid(parsed.errors);
      return { query: parsed.data, page: await searchEvents(parsed.data) };
    },
    { describe: ({ query }) => ({ resourceId: filterSummary(filtersOf(query)) || undefined, patientId: query.patient ?? null }) },
  );
  return Response.json({
    events: page.events.map(forAdmins).map(({ prevHash: _p, ...e }) => ({ ...e, at: e.at.toISOString() })),
    nextCursor: page.nextCursor === null ? null : String(page.nextCursor),
  });
}

export function action() {
  return methodNotAllowed("GET");
}
