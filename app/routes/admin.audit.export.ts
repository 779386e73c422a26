import type { LoaderFunctionArgs } from "@remix-run/node";
import { describeExport, EXPORT_FORMATS, exportResponse, exportStream, type ExportFormat } from "../audit/export.server";
import { filtersOf, parsePageFilters } from "../audit/filters.server";
import { fhirSite } from "../audit/view.server";
import { HttpError, failure, pageContext, perform } from "../http/context.server";
import { browserResource, langOf, requestIdOf } from "../http/error-page.server";
import { parseLang } from "../i18n/strings";

/**
 * GET /admin/audit/export?format=csv|ndjson&<the page's filters> — the filtered events as a streamed download for
 * the admin page (session cookie); the API has the same export for tokens (api.v1.audit.export.ts).
 */
export const loader = (args: LoaderFunctionArgs) => browserResource(args.request, requestIdOf(args), () => load(args));

async function load(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const params = new URL(args.request.url).searchParams;
  try {
    const { format, body } = await perform(
      ctx,
      "audit.read",
      { type: "audit" },
      async () => {
        const format = (params.get("format") ?? "csv") as ExportFormat;
        if (!EXPORT_FORMATS.includes(format)) throw new HttpError(400, "invalid", `Format d'export inconnu (attendu : ${EXPORT_FORMATS.join(" ou ")}).`);
        const parsed = await parsePageFilters(params);
        if (!parsed.ok) {
          const detail = Object.entries(parsed.errors).map(([k, v]) => `${k} : ${v}`).join(" ; ");
          throw new HttpError(400, "invalid", `Filtres invalides — ${detail}`);
        }
        const filters = filtersOf(parsed.query);
        // The page's CSV opens in the reader's spreadsheet: French by default, `?lang=en` (or an English UI) in English.
        const csvLang = params.get("lang") === "en" || params.get("lang") === "fr" ? parseLang(params.get("lang")) : langOf(args.request);
        return { format, filters, body: await exportStream(filters, format, { site: fhirSite(), csvLang }) };
      },
      { describe: describeExport },
    );
    return exportResponse(format, body);
  } catch (err) {
    if (err instanceof HttpError) throw failure(ctx, err.status, err.code, err.message);
    throw err;
  }
}
