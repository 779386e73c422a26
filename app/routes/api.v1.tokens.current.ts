import type { ActionFunctionArgs } from "@remix-run/node";
import { revokeToken } from "../accounts/tokens.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";

/** DELETE /api/v1/tokens/current — revoke the token used for this request. */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "DELETE") return methodNotAllowed("DELETE");
  const ctx = await apiContext(args);
  await perform(ctx, "token.revoke", { type: "token", id: ctx.tokenId ?? undefined }, () => revokeToken(ctx.tokenId!));
  return new Response(null, { status: 204 });
}

export function loader() {
  return methodNotAllowed("DELETE");
}
