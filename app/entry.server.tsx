import { PassThrough } from "node:stream";
import type { EntryContext } from "@remix-run/node";
import { createReadableStreamFromReadable } from "@remix-run/node";
import { RemixServer } from "@remix-run/react";
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
    const { pipe, abort } = renderToPipeableStream(<RemixServer context={remixContext} url={request.url} />, {
      onAllReady() {
        const body = new PassThrough();
        responseHeaders.set("Content-Type", "text/html; charset=utf-8");
        resolve(
          new Response(createReadableStreamFromReadable(body), {
            headers: responseHeaders,
            status: failed ? 500 : responseStatusCode,
          }),
        );
        pipe(body);
      },
      onShellError: reject,
      onError(error: unknown) {
        failed = true;
        console.error("[render]", error instanceof Error ? error.message : error);
      },
    });
    setTimeout(abort, streamTimeout + 1000);
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
  console.error("[error]", new URL(request.url).pathname, error instanceof Error ? (error.stack ?? error.message) : error);
}
