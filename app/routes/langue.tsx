import type { LoaderFunctionArgs } from "@remix-run/node";
import { safeRedirect } from "../http/redirect.server";
import { parseLang } from "../i18n/strings";

/** Switches the interface language (a display preference only: no data changes). */
export function loader({ request }: LoaderFunctionArgs) {
  const url = new URL(request.url);
  const lang = parseLang(url.searchParams.get("l"));
  return safeRedirect(url.searchParams.get("retour"), {
    headers: { "Set-Cookie": `nexus_lang=${lang}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly` },
  });
}
