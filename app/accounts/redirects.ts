/** Where a sign-in may send the browser afterwards: the one safe-redirect rule (app/http/redirect.server.ts). */
import { safeRedirectPath } from "../http/redirect.server";

export function safeRedirectTarget(value: string | null | undefined): string {
  return safeRedirectPath(value);
}
