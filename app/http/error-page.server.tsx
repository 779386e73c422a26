/**
 * Errors of the browser's non-page links (an image file, a heatmap, an audit export): the same error page as the
 * app's, as HTML in the reader's language, with the real status — never Remix's raw `{"message":"Unexpected Server
 * Error"}`. Redirects (to the login page) pass through; an unexpected error is logged once and answered 500.
 */
import { isRouteErrorResponse } from "@remix-run/react";
import { renderToStaticMarkup } from "react-dom/server";
import { parseLang, translator } from "../i18n/strings";
import { log } from "../log.server";
import { ErrorContent, describeError, type ErrorInfo } from "../ui/error-page";
import stylesheet from "../tailwind.css?url";
import { failure } from "./context.server";
import { HttpError } from "./errors.server";

/** The reader's language: the interface cookie, else French. */
export function langOf(request: Request) {
  return parseLang(/(?:^|;\s*)nexus_lang=(\w+)/.exec(request.headers.get("Cookie") ?? "")?.[1]);
}

/** A thrown `data({code, message}, {status})` (what `failure()` gives a page), as status, code and message. */
function asErrorInfo(err: unknown): ErrorInfo | null {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
  if (isRouteErrorResponse(err)) {
    const payload = err.data as { code?: string; message?: string } | undefined;
    return { status: err.status, code: payload?.code, message: payload?.message };
  }
  if (err && typeof err === "object" && (err as { type?: unknown }).type === "DataWithResponseInit") {
    const { data, init } = err as { data?: { code?: string; message?: string }; init?: { status?: number } | null };
    return { status: init?.status ?? 500, code: data?.code, message: data?.message };
  }
  return null;
}

export function errorPageResponse(request: Request, error: ErrorInfo, requestId?: string | null): Response {
  const lang = langOf(request);
  const t = translator(lang);
  const { title } = describeError(error, lang);
  const body = renderToStaticMarkup(
    <html lang={lang} className="h-full bg-slate-50">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} — Nexus`}</title>
        <link rel="stylesheet" href={stylesheet} />
      </head>
      <body className="h-full text-slate-900">
        <header className="bg-white shadow-sm">
          <div className="mx-auto flex max-w-6xl items-baseline gap-2 px-4 py-3">
            <a href="/" className="text-xl font-bold text-brand-700">Nexus</a>
            <span className="hidden text-sm text-slate-500 sm:inline">{t("app.tagline")}</span>
          </div>
        </header>
        <main className="mx-auto max-w-6xl px-4 py-8">
          <ErrorContent error={error} lang={lang} requestId={error.status >= 500 ? requestId : null} />
        </main>
      </body>
    </html>,
  );
  return new Response(`<!DOCTYPE html>${body}`, {
    status: error.status,
    headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "private, no-store" },
  });
}

/** Runs a browser resource route; its failures become the error page (redirects and responses pass through). */
export async function browserResource(request: Request, requestId: string | undefined, run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof Response) return err;
    const info = asErrorInfo(err);
    if (info) return errorPageResponse(request, info);
    log.error({ requestId, err: err instanceof Error ? err.message : String(err) }, "unexpected error in a browser link");
    return errorPageResponse(request, { status: 500 }, requestId);
  }
}

/** The request id server.mjs gave this request (for the error page's reference). */
export function requestIdOf(args: { context: unknown }): string | undefined {
  return (args.context as { requestId?: string } | undefined)?.requestId;
}

function isForbidden(err: unknown): boolean {
  if (err instanceof Response) return err.status === 403;
  return asErrorInfo(err)?.status === 403;
}

/**
 * For a resource looked up before authorising (an image, a reading): when it does not exist, the policy refuses it
 * (it names no patient) and the refusal is audited; the reader is then told the truth — 404, not "your role does
 * not allow this action".
 */
export async function unknownAs404<T>(ctx: { channel: "page" | "api"; actor: unknown }, exists: boolean, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (!exists && ctx.actor && isForbidden(err)) throw failure(ctx, 404, "not_found", "Ressource introuvable.");
    throw err;
  }
}
