import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { beginOidc, oidcEnabled } from "../accounts/oidc.server";
import { record } from "../audit/audit.server";
import { readSignInForm, requestInfo } from "../http/context.server";

/** GET: nothing to show here. */
export function loader() {
  return redirect("/connexion");
}

/** POST /connexion/oidc — the "Se connecter avec Pro Santé Connect" button: off to the provider. */
export async function action({ request, context }: ActionFunctionArgs) {
  const info = requestInfo(request, context);
  const form = await readSignInForm(request, info, "auth.login", "oidc: csrf");
  if (!oidcEnabled()) throw redirect("/connexion");
  try {
    const { url, cookie } = await beginOidc(request, form.get("redirectTo") as string | null);
    return redirect(url, { headers: { "Set-Cookie": cookie } });
  } catch {
    await record({ actor: null, action: "auth.login", outcome: "error", reason: "oidc: provider unreachable", info });
    return redirect("/connexion?erreur=oidc-indisponible");
  }
}
