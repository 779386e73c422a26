/**
 * Is this error "the database cannot be reached right now" (refused or dropped connection, server shutting down,
 * database closed to connections, pool exhausted) rather than a bug? Such a request is answered 503 with
 * Retry-After by server.mjs (see `markUnavailable`), not 500. drizzle wraps driver errors: the chain of `cause`s is
 * searched.
 */
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "ENOTFOUND", "EAI_AGAIN"]);
// SQLSTATE classes 08 (connection exception) and 57P (operator intervention: admin shutdown, crash, cannot connect
// now), 53300 (too many connections), 3D000 (database does not exist), 55000 with the "not accepting connections"
// message (ALLOW_CONNECTIONS false).
const SQLSTATE = /^(08...|57P0[1-4]|53300|3D000)$/;
const MESSAGES =
  /not currently accepting connections|Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect|Cannot use a pool after calling end|the database system is (starting up|shutting down|in recovery mode)/i;

export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current && typeof current === "object"; depth++) {
    const e = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof e.code === "string" && (NETWORK_CODES.has(e.code) || SQLSTATE.test(e.code))) return true;
    if (typeof e.message === "string" && MESSAGES.test(e.message)) return true;
    current = e.cause;
  }
  return false;
}

/** The load-context flag server.mjs reads to answer 503 instead of the 500 Remix made of the error. */
export const UNAVAILABLE_FLAG = "databaseUnavailable";

export function markUnavailable(context: unknown, error: unknown): boolean {
  if (!isDatabaseUnavailable(error) || !context || typeof context !== "object") return false;
  (context as Record<string, unknown>)[UNAVAILABLE_FLAG] = true;
  return true;
}

/** The driver's own words (the deepest cause), never drizzle's wrapper, which quotes the query and its parameters. */
export function unavailableReason(error: unknown): string {
  let current: unknown = error;
  let reason = "unknown";
  for (let depth = 0; depth < 6 && current && typeof current === "object"; depth++) {
    const e = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof e.message === "string" && !e.message.startsWith("Failed query")) reason = `${typeof e.code === "string" ? `${e.code} ` : ""}${e.message}`;
    current = e.cause;
  }
  return reason.slice(0, 200);
}
