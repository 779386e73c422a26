import { fieldMessage } from "../i18n/fields";
import { apiError } from "./context.server";

/** Reads a JSON body; anything else is a 400 with a clear message. */
export async function readJson(request: Request): Promise<unknown> {
  const type = request.headers.get("Content-Type") ?? "";
  if (!type.includes("application/json")) {
    throw apiError(415, "unsupported_media_type", "Le corps de la requête doit être du JSON (Content-Type: application/json).");
  }
  try {
    return await request.json();
  } catch {
    throw apiError(400, "invalid_json", "Corps JSON illisible.");
  }
}

export function invalid(errors: Record<string, string>): Response {
  const message = Object.entries(errors)
    .map(([k, v]) => `${k}: ${fieldMessage(v, "fr")}`)
    .join("; ");
  return apiError(400, "invalid", message || "Requête invalide.");
}

export function methodNotAllowed(allowed: string): Response {
  return apiError(405, "method_not_allowed", `Méthode non autorisée (autorisées : ${allowed}).`, { Allow: allowed });
}
