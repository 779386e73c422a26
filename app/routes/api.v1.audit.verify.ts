import type { LoaderFunctionArgs } from "@remix-run/node";
import { verifyChain } from "../audit/audit.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";

/** GET /api/v1/audit/verify — re-computes the audit hash chain (admins). */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const report = await perform(ctx, "audit.read", { type: "audit" }, () => verifyChain());
  return Response.json(report);
}

export function action() {
  return methodNotAllowed("GET");
}
