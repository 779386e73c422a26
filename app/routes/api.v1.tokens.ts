import type { ActionFunctionArgs } from "@remix-run/node";
import { credentialsSchema, recordLogin } from "../accounts/auth.server";
import { LOGIN_MESSAGES, retryAfterMessage, verifyCredentials } from "../accounts/login.server";
import { issueToken } from "../accounts/tokens.server";
import { invalid, methodNotAllowed, readJson } from "../http/api.server";
import { apiError, requestInfo } from "../http/context.server";
import { parseWith } from "../http/validation.server";

/** POST /api/v1/tokens — exchange e-mail and password for a bearer token. */
export async function action({ request, context }: ActionFunctionArgs) {
  if (request.method !== "POST") return methodNotAllowed("POST");
  const info = requestInfo(request, context);
  const body = await readJson(request).catch(async (refusal: unknown) => {
    await recordLogin({ ok: false, reason: "unreadable_body" }, info, "token");
    throw refusal;
  });
  const parsed = parseWith(credentialsSchema, body);
  if (!parsed.ok) {
    await recordLogin({ ok: false, reason: "invalid_input", errors: parsed.errors }, info, "token");
    return invalid(parsed.errors);
  }
  const attempt = await verifyCredentials(parsed.data.email, parsed.data.password);
  await recordLogin(attempt, info, "token");
  if (!attempt.ok) {
    if (attempt.reason === "locked") {
      return apiError(429, "throttled", retryAfterMessage(attempt.retryAfterSeconds), {
        "Retry-After": String(attempt.retryAfterSeconds),
      });
    }
    return apiError(401, "invalid_credentials", LOGIN_MESSAGES.invalid_credentials);
  }
  const issued = await issueToken(attempt.actor.id);
  return Response.json(
    { token: issued.token, expiresAt: issued.expiresAt.toISOString(), role: attempt.actor.role },
    { status: 201, headers: { "Cache-Control": "no-store" } },
  );
}

export function loader() {
  return methodNotAllowed("POST");
}
