/**
 * A database that made a statement wait too long — for a lock (SQLSTATE 55P03, lock_timeout: the audit chain's lock
 * held elsewhere, a locked row) or to run (57014, statement_timeout) — is a temporary condition: the request is
 * answered 503 with Retry-After, never left waiting forever and never a 500 (issue 11.5). The timeouts are
 * DB_LOCK_TIMEOUT_MS and DB_STATEMENT_TIMEOUT_MS (app/db/db.server.ts).
 */
import { HttpError } from "./errors.server";

const BUSY_CODES = new Set(["55P03", "57014"]);
export const RETRY_AFTER_SECONDS = 5;

/** True for a lock or statement timeout, whether the driver's error or drizzle's wrapper around it. */
export function isDatabaseBusy(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && typeof e === "object" && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && BUSY_CODES.has(code)) return true;
  }
  return false;
}

export function busyError(): HttpError {
  return new HttpError(
    503,
    "busy",
    "Le service est momentanément surchargé : réessayez dans quelques secondes.",
    undefined,
    { "Retry-After": String(RETRY_AFTER_SECONDS) },
  );
}
