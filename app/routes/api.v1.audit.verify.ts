import type { LoaderFunctionArgs } from "@remix-run/node";
import { chainCheckResource } from "../audit/audit.server";
import { verifyAnchoredChain } from "../audit/checkpoint.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";

/**
 * GET /api/v1/audit/verify — re-computes the audit hash chain (admins): `{ok, checked, firstBrokenId?}`, plus
 * `archives` (sealed periods the chain continues from) once there are any, and `checkpoint`: the newest signed
 * checkpoint of the chain's head (outside the database) and whether the chain still ends on it
 * (`{checkpoint: {lastId, at} | null, ok, problem?: "missing" | "rewritten", invalid}`). The result is kept in the request's
 * own audit event (resource `audit_chain`), which the admin page reads back as the chain's state.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const report = await perform(ctx, "audit.read", { type: "audit" }, () => verifyAnchoredChain(), { describe: chainCheckResource });
  return Response.json(report);
}

export function action() {
  return methodNotAllowed("GET");
}
