import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { endSession } from "../accounts/session.server";
import { pageContext, perform, readMutation } from "../http/context.server";

export async function loader() {
  return redirect("/");
}

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  await readMutation(ctx, "session.logout");
  const cookie = await perform(ctx, "session.logout", { type: "account", id: ctx.actor?.id }, () => endSession(args.request));
  return redirect("/connexion", { headers: { "Set-Cookie": cookie } });
}
