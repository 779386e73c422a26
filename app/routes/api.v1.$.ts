import { apiError } from "../http/context.server";

/** Unknown API paths answer JSON, like the rest of the API. */
export function loader() {
  return apiError(404, "not_found", "Point d'accès inconnu.");
}
export const action = loader;
