import { Writable } from "node:stream";
import type { EntryContext } from "@remix-run/node";
import { RemixServer, isRouteErrorResponse } from "@remix-run/react";
import { log, logPath } from "./log.server";
import { renderToPipeableStream } from "react-dom/server";
import { boot as bootApp } from "./boot.server";
import { markUnavailable, unavailableReason } from "./db/unavailable.server";

export const streamTimeout = 5_000;

/** Called once by server.mjs before it listens: migrations have run (db import), demo data is seeded. */
export const boot = bootApp;

/** Pages are rendered whole (no deferred data), so one code path serves browsers and bots alike. */
export default function handleRequest(
  request: Request,
  responseStatusCode: number,
  responseHeaders: Headers,
  remixContext: EntryContext,
) {
  return new Promise<Response>((resolve, reject) => {
    let failed = false;
    // The render is aborted if it has not finished in time; the timer goes once the page has been written out (a
    // timer left running kept every rendered page in memory for six seconds, and aborted it when long finished).
    const deadline: { timer?: ReturnType<typeof setTimeout> } = {};
    const { pipe, abort } = renderToPipeableStream(<RemixServer context={remixContext} url={request.url} />, {
      onAllReady() {
        // The page is complete here (no deferred data): it is collected and answered as one body with its length,
        // which goes out in one socket write with the headers. Piped through as React flushes it, the patient list
        // left in ≈ 9 writes (issue 15: on these virtual machines each costs its sender a wake-up of the reader).
        const chunks: Buffer[] = [];
        const page = new Writable({
          write(chunk: Buffer, _encoding, done) {
            chunks.push(chunk);
            done();
          },
        });
        page.once("finish", () => {
          clearTimeout(deadline.timer);
          const body = Buffer.concat(chunks);
          responseHeaders.set("Content-Type", "text/html; charset=utf-8");
          responseHeaders.set("Content-Length", String(body.length));
          resolve(new Response(body, { headers: responseHeaders, status: failed ? 500 : responseStatusCode }));
        });
        page.once("error", (error) => {
          clearTimeout(deadline.timer);
          reject(error);
        });
        pipe(page);
      },
      onShellError(error: unknown) {
        clearTimeout(deadline.timer);
        reject(error);
      },
      onError(error: unknown) {
        failed = true;
        log.error({ path: logPath(new URL(request.url).pathname), err: error instanceof Error ? error.message : String(error) }, "render error");
      },
    });
    deadline.timer = setTimeout(abort, streamTimeout + 1000);
  });
}

/** Server errors are logged (message only, no request data); users see the error page, never a stack trace. */
export function handleError(error: unknown, { request, context }: { request: Request; context?: unknown }) {
  if (request.signal.aborted) return;
  // The database refuses connections: server.mjs answers 503 with Retry-After; one line, no stack.
  if (markUnavailable(context, error)) {
    console.error("[unavailable] database unreachable:", unavailableReason(error));
    return;
  }
  // An answer the app chose (404 for an unknown URL, 403, …) is not a server error: the access log's one line says it.
  if (isRouteErrorResponse(error)) return;
  const requestId = (context as { requestId?: string } | undefined)?.requestId;
  const line = { requestId, path: logPath(new URL(request.url).pathname), err: error instanceof Error ? error.message : String(error) };
  log.error(process.env.LOG_LEVEL === "debug" && error instanceof Error ? { ...line, stack: error.stack } : line, "unexpected error");
}
