// What the HTTP edge of the Nexus server enforces before and after the Remix app (used by server.mjs):
//  - body limits per route, before any parsing: a declared Content-Length over the limit is answered 413 without
//    reading a byte; a body without one (chunked) is counted as it streams and cut at the limit (413);
//  - `Cache-Control: private, no-store` by default on every dynamic answer (static assets are served before);
//  - a request that failed because the database refuses connections is answered 503 with Retry-After (JSON on the
//    API, a short page in the browser) instead of Remix's "Unexpected Server Error";
//  - a Host header no URL can be made of is a 400, and a failure of the edge itself a 500, both in the user's
//    language and logged in one line without a stack;
//  - the access log's destination (`createAccessLog`);
//  - what a request says of itself once the proxy is believed or not (`trustProxy`, `clientOf`): its client address,
//    protocol and host, as Express's `trust proxy` setting resolved them (the same syntax, the same proxy-addr).
import { Transform } from "node:stream";
import { createReadableStreamFromReadable, createRequestHandler } from "@remix-run/node";
import pino from "pino";
import proxyaddr from "proxy-addr";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Forms and JSON bodies: logins, tokens, consents, patients, accounts — a few KiB at most. */
export const FORM_BODY_LIMIT = 64 * KiB;
/**
 * Multipart uploads: up to 20 files of 50 MiB each (checked per file by the parser), streamed, plus the fields; a
 * DICOMweb STOW-RS study likewise (each instance ≤ 50 MiB, checked part by part as it streams).
 */
export const UPLOAD_BODY_LIMIT = 20 * 50 * MiB + MiB;
const UPLOAD_ROUTES = [
  /^\/patients\/[^/]+\/televersement\/?$/,
  /^\/api\/v1\/patients\/[^/]+\/images\/?$/,
  /^\/dicomweb\/studies(\/[^/]+)?\/?$/,
];

/**
 * The access log: pino JSON lines on `fd` (stdout), the same settings as app/log.server.ts, written in batches rather
 * than one write(2) each — a write per line to the pipe that docker (or a supervisor) reads cost ≈ 40 % of a JSON API
 * request's CPU, as it wakes the reader every time. A batch is whole lines and at most PIPE_BUF (4 KiB), so the
 * batches of several worker processes never interleave within a line; it goes out once 3 KiB wait, else within
 * 100 ms, and when the process exits. `flush()` writes at once (server.mjs: after a 5xx line). The 100 ms flush runs
 * only after a line was logged: sonic-boom's own `periodicFlush` writes an empty string when nothing waits, a
 * write(2) ten times a second in every idle worker.
 * flush(), never flushSync(): on a synchronous destination it writes at once too, and stops logging when the reader
 * has gone (EPIPE), where sonic-boom 4's flushSync() retries forever and would hang the process.
 */
export function createAccessLog({ enabled, fd = 1 }) {
  const destination = pino.destination({ dest: fd, sync: true, minLength: 3 * KiB, maxWrite: 4 * KiB });
  let logged = false;
  const flush = () => {
    logged = false;
    destination.flush();
  };
  setInterval(() => logged && flush(), 100).unref();
  process.on("exit", () => logged && flush());
  const log = pino(
    {
      level: enabled ? "info" : "silent",
      base: { service: "nexus" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          logged = true;
          return method.apply(this, args);
        },
      },
    },
    destination,
  );
  return Object.assign(log, { flush });
}

export function bodyLimit(path) {
  return UPLOAD_ROUTES.some((route) => route.test(path)) ? UPLOAD_BODY_LIMIT : FORM_BODY_LIMIT;
}

/** Whether the request may carry a body the app reads (anything but GET and HEAD). */
const mayHaveBody = (req) => req.method !== "GET" && req.method !== "HEAD";

/** The request's path, without its query string. */
export function pathOf(req) {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}

/**
 * TRUST_PROXY in Express's `trust proxy` syntax: `true` (any), a number of hops, or addresses, subnets and the names
 * `loopback`, `linklocal`, `uniquelocal`, comma-separated (proxy-addr). Returns proxy-addr's trust function.
 */
export function trustProxy(value) {
  const v = String(value ?? "").trim();
  if (v === "true") return () => true;
  if (v === "false" || v === "") return () => false;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    return (_address, i) => i < hops;
  }
  return proxyaddr.compile(v.split(",").map((s) => s.trim()).filter(Boolean));
}

/**
 * The client's address, protocol and host (without port) as Express computed `req.ip`, `req.protocol` and
 * `req.hostname`: the X-Forwarded-* headers count only when the connection comes from a trusted proxy.
 */
export function clientOf(req, trust) {
  const fromProxy = trust(req.socket.remoteAddress, 0);
  const first = (header) => {
    const value = req.headers[header];
    return typeof value === "string" ? value.split(",")[0].trim() : "";
  };
  const direct = req.socket.encrypted ? "https" : "http";
  const protocol = (fromProxy && first("x-forwarded-proto")) || direct;
  const host = (fromProxy && first("x-forwarded-host")) || req.headers.host || "";
  // "[::1]:3000" → "[::1]", "example.org:443" → "example.org".
  const end = host.startsWith("[") ? host.indexOf("]") + 1 : 0;
  const colon = host.indexOf(":", end);
  return { ip: proxyaddr(req, trust), protocol, host, hostname: colon < 0 ? host : host.slice(0, colon) };
}

const wantsJson = (req) => pathOf(req).startsWith("/api/") || /application\/json/.test(req.headers.accept ?? "");
const english = (req) =>
  /(?:^|;\s*)nexus_lang=en\b/.test(req.headers.cookie ?? "") ||
  (!/(?:^|;\s*)nexus_lang=/.test(req.headers.cookie ?? "") && /^en\b/i.test(req.headers["accept-language"] ?? ""));

const MESSAGES = {
  too_large: {
    status: 413,
    fr: ["Requête trop volumineuse", "Le corps de la requête dépasse la limite autorisée. Rien n'a été enregistré."],
    en: ["Request too large", "The request body exceeds the allowed size. Nothing was stored."],
  },
  bad_host: {
    status: 400,
    fr: ["Requête invalide", "L'en-tête Host de la requête n'est pas un nom d'hôte valide."],
    en: ["Bad request", "The request's Host header is not a valid host name."],
  },
  internal: {
    status: 500,
    fr: ["Erreur du serveur", "La requête n'a pas pu aboutir. Rien n'a été enregistré ; réessayez."],
    en: ["Server error", "The request could not be completed. Nothing was stored; please try again."],
  },
  unavailable: {
    status: 503,
    fr: ["Service momentanément indisponible", "La base de données ne répond pas. Réessayez dans quelques instants."],
    en: ["Service temporarily unavailable", "The database is not answering. Please try again in a moment."],
  },
};
const RETRY_AFTER_SECONDS = "5";

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

/** Answers a refusal of the edge itself (413, 503): JSON on the API, a short page in the user's language elsewhere. */
export function refuse(req, res, code, extraHeaders = {}) {
  const { status, fr, en } = MESSAGES[code];
  const [title, message] = english(req) ? en : fr;
  res.statusCode = status;
  res.setHeader("Cache-Control", "private, no-store");
  for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
  if (wantsJson(req)) {
    send(res, "application/json; charset=utf-8", JSON.stringify({ error: { code, message } }));
    return;
  }
  const lang = english(req) ? "en" : "fr";
  send(
    res,
    "text/html; charset=utf-8",
    `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
      `<title>${escapeHtml(title)} — Nexus</title></head><body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem">` +
      `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p><p><a href="/">Nexus</a></p></body></html>`,
  );
}

function send(res, type, body) {
  res.setHeader("Content-Type", type);
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}

/** Refuses a body whose declared length is over the route's limit, before anything reads it: true when refused. */
export function refusedBodyLength(req, res) {
  if (!mayHaveBody(req)) return false;
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > bodyLimit(pathOf(req))) {
    // The body is never read for the app: at most LINGER_BYTES of it are discarded, then the connection closes.
    refuse(req, res, "too_large");
    lingerThenClose(req);
    return true;
  }
  return false;
}

class BodyTooLargeError extends Error {
  constructor() {
    super("request body over the route's limit");
    this.name = "BodyTooLargeError";
  }
}

/** What a refused body may still send, read and discarded, before its connection is closed (see lingerThenClose). */
const LINGER_BYTES = 16 * MiB;
const LINGER_MS = 2000;

/**
 * After a refusal given before the body was read whole (the edge's 413, or the app's answer to a request whose body
 * it did not need): reads and discards the rest for a while before closing the connection, a lingering close as
 * Apache and nginx do. Closing a socket with unread bytes resets the connection, and a proxy still writing the body
 * (Caddy 2.6, caddyserver/caddy#5652) may see the reset before it has read the answer and answer 502 instead. The
 * connection is closed once LINGER_BYTES more arrived or after LINGER_MS; a body that ends before leaves it open for
 * the next request.
 */
function lingerThenClose(req) {
  req.unpipe();
  let discarded = 0;
  const close = () => req.socket?.destroy();
  const timer = setTimeout(close, LINGER_MS);
  timer.unref();
  req.once("end", () => clearTimeout(timer));
  req.on("data", (chunk) => {
    discarded += chunk.length;
    if (discarded > LINGER_BYTES) close();
  });
  req.resume();
}

/** The request body as the app sees it: counted, and cut with an error at `limit` bytes. */
function cappedBody(req, limit, onOverflow) {
  let seen = 0;
  const counter = new Transform({
    transform(chunk, _encoding, callback) {
      seen += chunk.length;
      if (seen > limit) {
        onOverflow();
        callback(new BodyTooLargeError());
        return;
      }
      callback(null, chunk);
    },
  });
  req.on("error", (err) => counter.destroy(err));
  req.on("aborted", () => counter.destroy(new Error("request aborted")));
  req.pipe(counter);
  return counter;
}

function requestHeaders(raw) {
  const headers = new Headers();
  for (const [key, values] of Object.entries(raw)) {
    if (Array.isArray(values)) for (const value of values) headers.append(key, value);
    else if (values) headers.set(key, values);
  }
  return headers;
}

const RELEASE = Symbol.for("nexus.release");

/**
 * Writes a response body with backpressure, and cancels it when the client goes away: the cancel reaches the
 * body's source (an image's decrypting stream, then the object store's file or S3 stream), which closes it.
 * (@remix-run/node's writer ignores both, so an aborted download kept reading its file and a file handle could be
 * left to the garbage collector.)
 */
async function writeBody(body, res) {
  const reader = body.getReader();
  let gone = false;
  const onClose = () => {
    if (res.writableFinished) return;
    gone = true;
    reader.cancel(new Error("client went away")).catch(() => {});
  };
  res.on("close", onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        if (!gone) res.end();
        return;
      }
      if (gone || res.destroyed) {
        await reader.cancel().catch(() => {});
        return;
      }
      // A pooled chunk (app/vault/buffer-pool.server.ts) goes back to its pool once the socket has taken its bytes.
      if (!res.write(value, value[RELEASE])) {
        await new Promise((resolve) => {
          const resume = () => {
            res.off("drain", resume);
            res.off("close", resume);
            resolve();
          };
          res.on("drain", resume);
          res.on("close", resume);
        });
      }
    }
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    res.destroy(error);
  } finally {
    res.off("close", onClose);
    reader.releaseLock?.();
  }
}

/** The URL as @remix-run/express built it: protocol and host as the proxy is believed (`clientOf`), the port kept. */
function requestUrl(req, client) {
  const portOf = (value) => Number.parseInt(typeof value === "string" ? (value.split(":")[1] ?? "") : "", 10);
  const forwardedPort = portOf(req.headers["x-forwarded-host"]);
  const hostPort = portOf(req.headers.host);
  const port = Number.isSafeInteger(forwardedPort) ? forwardedPort : Number.isSafeInteger(hostPort) ? hostPort : "";
  return new URL(`${client.protocol}://${client.hostname}${port ? `:${port}` : ""}${req.url}`);
}

/** Text and JSON types name their charset, as Express's `res.set` added it (`text/html` → `text/html; charset=utf-8`). */
function withCharset(type) {
  return /^(text\/|application\/(javascript|json))/i.test(type) && !/;\s*charset\s*=/i.test(type) ? `${type}; charset=utf-8` : type;
}

/**
 * @remix-run/express's handler, with the body cap, the no-store default and the 503 mapping; `client` is what
 * `clientOf` found. A failure outside the app (its own errors are its error pages) is a 500 in the user's language,
 * logged in one line without a stack.
 */
export function remixHandler({ build, mode, getLoadContext, unavailableFlag }) {
  const handleRequest = createRequestHandler(build, mode);
  return async (req, res, client) => {
    let url;
    try {
      url = requestUrl(req, client);
    } catch {
      // e.g. "Host: a b": no URL can be built of it.
      refuse(req, res, "bad_host");
      if (mayHaveBody(req)) lingerThenClose(req);
      return;
    }
    let overflowed = false;
    try {
      let controller = new AbortController();
      const init = { method: req.method, headers: requestHeaders(req.headers), signal: controller.signal };
      if (mayHaveBody(req)) {
        const body = cappedBody(req, bodyLimit(pathOf(req)), () => {
          overflowed = true;
          if (!res.headersSent) {
            refuse(req, res, "too_large");
            lingerThenClose(req);
          }
        });
        init.body = createReadableStreamFromReadable(body);
        init.duplex = "half";
      }
      res.on("finish", () => (controller = null));
      res.on("close", () => controller?.abort());
      const request = new Request(url.href, init);
      const loadContext = await getLoadContext(req, res, client);
      const response = await handleRequest(request, loadContext);
      if (overflowed || res.headersSent || res.destroyed) {
        await response.body?.cancel().catch(() => {});
        return;
      }
      if (loadContext[unavailableFlag] && response.status >= 500) {
        await response.body?.cancel().catch(() => {});
        return refuse(req, res, "unavailable", { "Retry-After": RETRY_AFTER_SECONDS });
      }
      // An answer given before the body was read whole (a refusal): the rest is read and discarded, so that the
      // next request on this keep-alive connection parses, or the connection closes without a reset (lingerThenClose).
      if (mayHaveBody(req)) {
        res.once("finish", () => {
          if (!req.readableEnded && !req.destroyed) lingerThenClose(req);
        });
      }
      res.statusMessage = response.statusText;
      res.statusCode = response.status;
      if (!response.headers.has("Cache-Control")) res.setHeader("Cache-Control", "private, no-store");
      for (const [key, value] of response.headers.entries()) res.appendHeader(key, key === "content-type" ? withCharset(value) : value);
      if (response.body) await writeBody(response.body, res);
      else res.end();
    } catch (error) {
      if (overflowed) return;
      // No path (its ids name patients): the request id leads to the access log's line, whose path has them masked.
      console.error(`[http] request ${res.requestId ?? "-"} failed: ${error instanceof Error ? error.message : String(error)}`);
      if (res.headersSent) res.destroy();
      else refuse(req, res, "internal");
    }
  };
}
