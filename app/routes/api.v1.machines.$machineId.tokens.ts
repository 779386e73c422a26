import type { ActionFunctionArgs } from "@remix-run/node";
import { newMachineToken } from "../accounts/machines.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";

/** POST /api/v1/machines/:machineId/tokens — a new bearer token for a machine account (admins); shown once. */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("POST");
  const ctx = await apiContext(args);
  const machineId = idParam(ctx, args.params.machineId);
  const issued = await perform(ctx, "machine.token", { type: "machine", id: machineId }, () => newMachineToken(machineId));
  return Response.json({ ...issued, expiresAt: issued.expiresAt.toISOString() }, { status: 201 });
}
