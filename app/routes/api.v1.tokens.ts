import type { ActionFunctionArgs } from "@remix-run/node";
import { z } from "zod";
import { credentialsSchema, recordLogin } from "../accounts/auth.server";
import { MIN_PASSWORD_LENGTH } from "../accounts/password-policy";
import { TOTP_MESSAGES, TotpError, verifySecondFactor } from "../accounts/totp.server";
import { setChosenPassword } from "../accounts/users.server";
import { LOGIN_MESSAGES, retryAfterMessage, verifyCredentials } from "../accounts/login.server";
import { issueToken } from "../accounts/tokens.server";
import { invalid, methodNotAllowed, readJson } from "../http/api.server";
import { apiError, requestInfo } from "../http/context.server";
import { parseWith } from "../http/validation.server";

const tokenRequestSchema = credentialsSchema.extend({
  /** The second-factor code (or a recovery code), required once TOTP is on. */
  otp: z.string().trim().min(6).max(64).optional(),
  /** Required with a temporary password: it is consumed and replaced by this one. */
  newPassword: z.string().min(MIN_PASSWORD_LENGTH, `${MIN_PASSWORD_LENGTH} caractères au moins`).max(1024).optional(),
});

/**
 * POST /api/v1/tokens — exchange e-mail and password (+ `otp` when the second factor is on; + `newPassword` the
 * first time, with a temporary password) for a bearer token.
 */
export async function action({ request, context }: ActionFunctionArgs) {
  if (request.method !== "POST") return methodNotAllowed("POST");
  const info = requestInfo(request, context);
  const body = await readJson(request).catch(async (refusal: unknown) => {
    await recordLogin({ ok: false, reason: "unreadable_body" }, info, "token");
    throw refusal;
  });
  const parsed = parseWith(tokenRequestSchema, body);
  if (!parsed.ok) {
    await recordLogin({ ok: false, reason: "invalid_input", errors: parsed.errors }, info, "token");
    return invalid(parsed.errors);
  }
  const attempt = await verifyCredentials(parsed.data.email, parsed.data.password, info.ip);
  if (attempt.ok && attempt.totpEnabled) {
    const refusal = await checkOtp(attempt.actor.id, parsed.data.otp);
    if (refusal) {
      await recordLogin({ ok: false, reason: refusal.reason }, info, "token");
      return refusal.response;
    }
  }
  if (attempt.ok && attempt.mustChangePassword) {
    if (!parsed.data.newPassword) {
      await recordLogin({ ok: false, reason: "password_change_required" }, info, "token");
      return apiError(
        403,
        "password_change_required",
        "Mot de passe temporaire : choisissez le vôtre en envoyant aussi « newPassword » (il ne servira qu'une fois).",
      );
    }
    await setChosenPassword(attempt.actor.id, parsed.data.newPassword);
  }
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

async function checkOtp(
  userId: string,
  otp: string | undefined,
): Promise<{ reason: "otp_required" | "invalid_otp" | "otp_throttled"; response: Response } | null> {
  if (!otp) {
    return { reason: "otp_required", response: apiError(401, "otp_required", "Code de double authentification requis (champ « otp »).") };
  }
  try {
    await verifySecondFactor(userId, otp);
    return null;
  } catch (err) {
    if (!(err instanceof TotpError)) throw err;
    if (err.reason === "throttled") {
      const headers = { "Retry-After": String(err.retryAfterSeconds || 60) };
      return { reason: "otp_throttled", response: apiError(429, "throttled", TOTP_MESSAGES.throttled, headers) };
    }
    return { reason: "invalid_otp", response: apiError(401, "invalid_otp", TOTP_MESSAGES.invalid_code) };
  }
}

export function loader() {
  return methodNotAllowed("POST");
}
