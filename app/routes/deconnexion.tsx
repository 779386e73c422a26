import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { providerLogoutUrl } from "../accounts/oidc.server";
import { endSession } from "../accounts/session.server";
import { pageContext, perform, readMutation } from "../http/context.server";

export async function loader() {
  return redirect("/");
}

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  await readMutation(ctx, "session.logout");
  const ended = await perform(ctx, "session.logout", { type: "account", id: ctx.actor?.id }, () => endSession(args.request));
  // A Pro Santé Connect sign-in also ends at the provider (RP-initiated logout), which then returns to /connexion.
  const provider = await providerLogoutUrl(args.request, ended.idToken);
  return redirect(provider ?? "/connexion", { headers: { "Set-Cookie": ended.cookie } });
}
