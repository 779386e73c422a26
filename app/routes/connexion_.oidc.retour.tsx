import type { LoaderFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { afterSignIn } from "../accounts/login-flow.server";
import { finishOidc, OidcError } from "../accounts/oidc.server";
import { totpState } from "../accounts/totp.server";
import { loadActor } from "../accounts/users.server";
import { record } from "../audit/audit.server";
import { requestInfo } from "../http/context.server";

/**
 * GET /connexion/oidc/retour — the provider's answer. Any failure (wrong state, replayed code, a token that does
 * not validate, an identity linked to no account) goes back to the login page with a clear message and is audited
 * as a denied sign-in.
 */
export async function loader({ request, context }: LoaderFunctionArgs) {
  const info = requestInfo(request, context);
  let signIn;
  try {
    signIn = await finishOidc(request);
  } catch (err) {
    const reason = err instanceof OidcError ? err.reason : "unexpected error";
    const who = err instanceof OidcError && err.subject ? ` (${err.subject})` : "";
    await record({ actor: null, action: "auth.login", outcome: "denied", reason: `oidc: ${reason}${who}`, resource: { type: "account" }, info });
    const code = err instanceof OidcError && err.subject ? "oidc-compte" : "oidc";
    throw redirect(`/connexion?erreur=${code}`);
  }
  const actor = await loadActor(signIn.userId);
  if (!actor) throw redirect("/connexion?erreur=oidc-compte");
  await record({ actor, action: "auth.login", outcome: "allowed", reason: "oidc", resource: { type: "account", id: actor.id }, info });
  const { enabled } = await totpState(actor.id);
  throw await afterSignIn(
    request,
    { actor, mustChangePassword: false, totpEnabled: enabled, strongAuthentication: true, idToken: signIn.idToken, cookies: [signIn.clearCookie] },
    signIn.redirectTo,
    info.ip,
  );
}
