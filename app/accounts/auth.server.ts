/**
 * Login with remix-auth's FormStrategy (browser) and the same credential check for API tokens. remix-auth v4 keeps
 * no session of its own: the strategy returns a LoginResult and the route starts the session itself.
 */
import { Authenticator } from "remix-auth";
import { FormStrategy } from "remix-auth-form";
import { z } from "zod";
import { record, type RequestInfo } from "../audit/audit.server";
import { parseWith } from "../http/validation.server";
import { verifyCredentials, type LoginResult } from "./login.server";

export const credentialsSchema = z.object({
  email: z.string().trim().min(1, "Saisissez votre adresse e-mail.").max(320),
  password: z.string().min(1, "Saisissez votre mot de passe.").max(1024),
});

export type LoginAttempt =
  | LoginResult
  | { ok: false; reason: "invalid_input"; errors: Record<string, string> }
  /** Refused before the credentials were read: a bad CSRF token, a body that is not JSON. */
  | { ok: false; reason: "csrf" | "unreadable_body" | "otp_required" | "invalid_otp" | "otp_throttled" | "password_change_required" };

/** The client address of a login request (from the load context), for per-address throttling. */
export const loginClientIp = new WeakMap<Request, string | null>();

export const authenticator = new Authenticator<LoginAttempt>();
authenticator.use(
  new FormStrategy(async ({ form, request }) => {
    const parsed = parseWith(credentialsSchema, { email: form.get("email") ?? "", password: form.get("password") ?? "" });
    if (!parsed.ok) return { ok: false, reason: "invalid_input", errors: parsed.errors };
    return verifyCredentials(parsed.data.email, parsed.data.password, loginClientIp.get(request) ?? null);
  }),
  "form",
);

/** One audit event per login attempt, whatever the channel. */
export async function recordLogin(attempt: LoginAttempt, info: RequestInfo, via: "session" | "token"): Promise<void> {
  if (attempt.ok) {
    await record({
      actor: attempt.actor,
      action: via === "session" ? "auth.login" : "token.create",
      outcome: "allowed",
      resource: { type: "account", id: attempt.actor.id },
      info,
    });
    return;
  }
  const who = "email" in attempt ? ` (${attempt.email})` : "";
  await record({
    actor: null,
    action: via === "session" ? "auth.login" : "token.create",
    outcome: "denied",
    reason: `${attempt.reason}${who}`,
    resource: { type: "account" },
    info,
  });
}
