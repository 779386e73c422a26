/**
 * The one place a redirect target coming from a request (a query parameter, a form field, the request's own path)
 * becomes a `Location`. Only a path of this origin survives; anything else falls back to `fallback`.
 *
 * Refused, whatever their encoding (raw, percent-encoded once or twice): backslashes (browsers read `/\` as `//`),
 * control characters (tab, CR, LF, NUL… — browsers strip tabs and newlines, and CR/LF would break the header),
 * a scheme-relative start (`//`, `/\`), any scheme (`javascript:`, `https:`), and anything that, resolved against
 * this origin, lands on another one.
 */
import { redirect } from "@remix-run/node";

const MAX_LENGTH = 2048;
const BASE = "http://nexus.invalid";
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\\\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]/;

/** The decoded forms of `value`, up to three rounds of percent-decoding; null when a round is malformed. */
function decodings(value: string): string[] | null {
  const forms = [value];
  let current = value;
  for (let i = 0; i < 3 && current.includes("%"); i++) {
    try {
      current = decodeURIComponent(current);
    } catch {
      return null;
    }
    forms.push(current);
  }
  return forms;
}

function unsafe(form: string): boolean {
  if (FORBIDDEN.test(form)) return true;
  const trimmed = form.trimStart();
  // A scheme-relative URL or a scheme, once decoded.
  if (/^[/\\]{2}/.test(trimmed)) return true;
  if (/^[a-z][a-z0-9+.-]*:/i.test(trimmed)) return true;
  return false;
}

/** `value` when it is a path of this origin (returned normalised), otherwise `fallback`. */
export function safeRedirectPath(value: unknown, fallback = "/"): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_LENGTH) return fallback;
  if (!value.startsWith("/")) return fallback;
  const forms = decodings(value);
  if (!forms || forms.some(unsafe)) return fallback;
  let url: URL;
  try {
    url = new URL(value, BASE);
  } catch {
    return fallback;
  }
  if (url.origin !== BASE) return fallback;
  const path = url.pathname + url.search + url.hash;
  // The normalised path must itself be safe (e.g. `/./%2F/` cannot turn into `//`).
  const normalised = decodings(path);
  return path.startsWith("/") && normalised && !normalised.some(unsafe) ? path : fallback;
}

/** A redirect to `value` when it is a safe same-origin path, otherwise to `fallback`. */
export function safeRedirect(value: unknown, init?: number | ResponseInit, fallback = "/"): Response {
  return redirect(safeRedirectPath(value, fallback), init);
}
