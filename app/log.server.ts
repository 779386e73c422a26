/**
 * Operational logs: JSON lines on stdout (pino), for operators and their log collector. They are NOT the audit
 * trail (app/audit/: who touched which patient's data, hash-chained, in the database) and must never carry medical
 * data or secrets: no request or response bodies, no query strings, no names, no patient ids in paths, no tokens,
 * passwords or cookies (redacted should one slip into a logged object). Every line of a request carries its
 * X-Request-Id, which is also in that request's audit event: an operator can go from a log line to the audit
 * event, but only an admin can read the latter.
 *
 * server.mjs writes the access log with the same settings (it runs before the app bundle is loaded).
 */
import pino, { type Logger } from "pino";

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
const level = (LEVELS as readonly string[]).includes(process.env.LOG_LEVEL ?? "") ? process.env.LOG_LEVEL! : "info";

/** Keys whose values never reach a log line, at the top level or one object down. */
export const REDACTED_KEYS = [
  "password",
  "passwordHash",
  "token",
  "authorization",
  "cookie",
  "csrf",
  "secret",
  "body",
  "displayName",
  "name",
  "email",
] as const;

/** A logger with Nexus's settings; `destination` is for tests (stdout otherwise). */
export function createLogger(destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: "nexus" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: [...REDACTED_KEYS, ...REDACTED_KEYS.map((k) => `*.${k}`), "req.headers.authorization", "req.headers.cookie"],
      censor: "[redacted]",
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

export const log: Logger = createLogger();

/** A logger whose lines all carry the request's id. */
export function requestLog(requestId: string | null | undefined): Logger {
  return requestId ? log.child({ requestId }) : log;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
/** Long opaque segments (tokens, hashes) are masked like ids. */
const OPAQUE = /(?<=\/)[A-Za-z0-9_-]{32,}(?=\/|$)/g;

/**
 * A path fit for a log line: ids replaced by `:id` (a patient id in a URL says whose record was opened: that is the
 * audit trail's business), long opaque segments by `:token`, no query string.
 */
export function logPath(path: string): string {
  const bare = path.split("?", 1)[0] ?? "";
  return bare.replace(UUID, ":id").replace(OPAQUE, ":token").slice(0, 200);
}
