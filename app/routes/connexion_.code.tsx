import type { ActionFunctionArgs, HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, useActionData } from "@remix-run/react";
import { z } from "zod";
import { completeSecondFactor, pendingSignIn } from "../accounts/login-flow.server";
import { TOTP_MESSAGES, TotpError, verifySecondFactor } from "../accounts/totp.server";
import { loadActor } from "../accounts/users.server";
import { record } from "../audit/audit.server";
import { readSignInForm, requestInfo } from "../http/context.server";
import { parseWith } from "../http/validation.server";
import { Alert, CsrfInput, Field } from "../ui/forms";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Code de vérification — Nexus" }];
export const headers: HeadersFunction = ({ actionHeaders }) => actionHeaders;

const codeSchema = z.object({ code: z.string().trim().min(6, "Saisissez le code à 6 chiffres ou un code de secours.").max(64) });

/** Second step of a sign-in with a second factor: only reachable with a fresh "pending" cookie from /connexion. */
export async function loader({ request }: LoaderFunctionArgs) {
  if (!(await pendingSignIn(request))) throw redirect("/connexion");
  return null;
}

export async function action({ request, context }: ActionFunctionArgs) {
  const info = requestInfo(request, context);
  const form = await readSignInForm(request, info, "auth.otp");
  const pending = await pendingSignIn(request);
  if (!pending) throw redirect("/connexion");
  const actor = await loadActor(pending.userId);
  if (!actor) throw redirect("/connexion");
  const parsed = parseWith(codeSchema, { code: form.get("code") ?? "" });
  const base = { actor, action: "auth.otp", resource: { type: "account", id: actor.id }, info } as const;
  if (!parsed.ok) return data({ message: null, errors: parsed.errors }, { status: 400 });
  try {
    const kind = await verifySecondFactor(actor.id, parsed.data.code);
    await record({ ...base, outcome: "allowed", reason: kind });
  } catch (err) {
    if (!(err instanceof TotpError)) throw err;
    await record({ ...base, outcome: "denied", reason: err.reason });
    if (err.reason === "throttled") {
      return data(
        { message: TOTP_MESSAGES.throttled, errors: {} },
        { status: 429, headers: { "Retry-After": String(err.retryAfterSeconds || 60) } },
      );
    }
    return data({ message: TOTP_MESSAGES.invalid_code, errors: {} }, { status: 401 });
  }
  throw await completeSecondFactor(request, pending, actor, info.ip);
}

export default function SecondFactor() {
  const t = useT();
  const result = useActionData<typeof action>();
  const errors: Record<string, string | undefined> = result?.errors ?? {};
  return (
    <div className="mx-auto max-w-md">
      <div className="card">
        <h1 className="text-2xl font-bold">{t("otp.title")}</h1>
        <p className="mt-2 text-sm text-slate-600">{t("otp.help")}</p>
        {result?.message ? (
          <div className="mt-4">
            <Alert kind="error">{result.message}</Alert>
          </div>
        ) : null}
        <Form method="post" className="mt-6 space-y-4" noValidate>
          <CsrfInput />
          <Field
            label={t("otp.code")}
            name="code"
            inputMode="numeric"
            autoComplete="one-time-code"
            required
            autoFocus
            error={errors.code}
            hint={t("otp.recoveryHint")}
          />
          <button type="submit" className="btn w-full">
            {t("otp.submit")}
          </button>
        </Form>
      </div>
    </div>
  );
}
