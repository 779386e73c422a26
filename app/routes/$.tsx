import { data } from "@remix-run/node";

/**
 * Any URL no other route matches: a 404 through the root ErrorBoundary, so the page has the app's header and the
 * reader's language (the root loader runs for a matched route). Reads nothing; the access log has its one line.
 */
export function loader() {
  throw data({ code: "not_found", message: "Page introuvable." }, { status: 404 });
}

/** Never rendered: the loader always throws. */
export default function NotFound() {
  return null;
}
