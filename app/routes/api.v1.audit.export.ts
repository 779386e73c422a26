import type { LoaderFunctionArgs } from "@remix-run/node";
import { auditQuerySchema } from "../audit/audit.server";
import { describeExport, EXPORT_FORMATS, exportResponse, exportStream, type ExportFormat } from "../audit/export.server";
import { filtersOf } from "../audit/filters.server";
import { fhirSite } from "../audit/view.server";
import { invalid, methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { parseWith } from "../http/validation.server";

/**
 * GET /api/v1/audit/export?format=csv|ndjson&<filters of GET /api/v1/audit> — every matching event, newest first,
 * streamed (admins). `ndjson` is FHIR R4 AuditEvent, one resource per line (application/fhir+ndjson).
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const { format: rawFormat = "ndjson", cursor: _cursor, limit: _limit, ...params } = Object.fromEntries(new URL(args.request.url).searchParams);
  const { format, body } = await perform(
    ctx,
    "audit.read",
    { type: "audit" },
    async () => {
      const parsed = parseWith(auditQuerySchema, params);
      const format = rawFormat as ExportFormat;
      if (!EXPORT_FORMATS.includes(format)) throw invalid({ format: `${EXPORT_FORMATS.join(" ou ")} attendu.` });
      if (!parsed.ok) throw invalid(parsed.errors);
      const filters = filtersOf(parsed.data);
      return { format, filters, body: await exportStream(filters, format, { site: fhirSite() }) };
    },
    { describe: describeExport },
  );
  return exportResponse(format, body);
}

export function action() {
  return methodNotAllowed("GET");
}
