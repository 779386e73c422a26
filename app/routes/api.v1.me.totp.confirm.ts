import type { ActionFunctionArgs } from "@remix-run/node";
import { z } from "zod";
import { confirmEnrolment, TOTP_MESSAGES, TotpError } from "../accounts/totp.server";
import { invalid, methodNotAllowed, readJson } from "../http/api.server";
import { apiContext, HttpError, perform } from "../http/context.server";
import { parseWith } from "../http/validation.server";

const bodySchema = z.object({ otp: z.string().trim().regex(/^\d{6}$/, "un code à 6 chiffres") });

/** POST /api/v1/me/totp/confirm {otp} — turns the second factor on (204); from then on tokens need a code. */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("POST");
  const ctx = await apiContext(args);
  const parsed = parseWith(bodySchema, await readJson(args.request));
  await perform(ctx, "account.totp", { type: "account", id: ctx.actor?.id }, async () => {
    if (!parsed.ok) throw new HttpError(400, "invalid", Object.values(parsed.errors).join("; "));
    try {
      await confirmEnrolment(ctx.actor!.id, parsed.data.otp);
    } catch (err) {
      if (!(err instanceof TotpError)) throw err;
      const status = err.reason === "throttled" ? 429 : err.reason === "invalid_code" ? 401 : 409;
      const headers = err.reason === "throttled" ? { "Retry-After": String(err.retryAfterSeconds || 60) } : undefined;
      throw new HttpError(status, err.reason, TOTP_MESSAGES[err.reason], undefined, headers);
    }
  });
  if (!parsed.ok) return invalid(parsed.errors);
  return new Response(null, { status: 204 });
}

export function loader() {
  return methodNotAllowed("POST");
}
