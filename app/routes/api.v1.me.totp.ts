import type { ActionFunctionArgs } from "@remix-run/node";
import { beginEnrolment, TOTP_MESSAGES, TotpError } from "../accounts/totp.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, HttpError, perform } from "../http/context.server";

/** POST /api/v1/me/totp — starts enrolling a second factor: a new secret, on only once confirmed. */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("POST");
  const ctx = await apiContext(args);
  const enrolment = await perform(ctx, "account.totp", { type: "account", id: ctx.actor?.id }, async () => {
    try {
      return await beginEnrolment(ctx.actor!.id, ctx.actor!.email);
    } catch (err) {
      if (err instanceof TotpError) throw new HttpError(409, err.reason, TOTP_MESSAGES[err.reason]);
      throw err;
    }
  });
  return Response.json(
    { secret: enrolment.secret, otpauthUrl: enrolment.otpauthUrl },
    { status: 201, headers: { "Cache-Control": "no-store" } },
  );
}

export function loader() {
  return methodNotAllowed("POST");
}
