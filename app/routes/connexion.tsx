import type { ActionFunctionArgs, HeadersFunction, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation, useSearchParams } from "@remix-run/react";
import { authenticator, loginClientIp, recordLogin } from "../accounts/auth.server";
import { LOGIN_MESSAGES, retryAfterMessage } from "../accounts/login.server";
import { afterSignIn } from "../accounts/login-flow.server";
import { oidcLabel } from "../accounts/oidc.server";
import { actorFromSession } from "../accounts/session.server";
import { readSignInForm, requestInfo } from "../http/context.server";
import { Alert, CsrfInput, Field } from "../ui/forms";
import { useT } from "../ui/shell";
import { pageTitle } from "../ui/meta";

export const meta = pageTitle("login.title");
/** Carries the action's Retry-After (429) to the document response. */
export const headers: HeadersFunction = ({ actionHeaders }) => actionHeaders;

export async function loader({ request }: LoaderFunctionArgs) {
  if (await actorFromSession(request)) throw redirect("/");
  const error = new URL(request.url).searchParams.get("erreur");
  const oidcError = error === "oidc" || error === "oidc-compte" || error === "oidc-indisponible" ? error : null;
  return { oidc: oidcLabel(), oidcError };
}

export async function action({ request, context }: ActionFunctionArgs) {
  const info = requestInfo(request, context);
  const form = await readSignInForm(request, info, "auth.login");
  loginClientIp.set(request, info.ip);
  const attempt = await authenticator.authenticate("form", request);
  await recordLogin(attempt, info, "session");
  if (attempt.ok) throw await afterSignIn(request, attempt, form.get("redirectTo") as string | null, info.ip);
  if (attempt.reason === "invalid_input") return data({ errors: attempt.errors, message: null }, { status: 400 });
  if (attempt.reason === "locked") {
    return data(
      { errors: {}, message: retryAfterMessage(attempt.retryAfterSeconds), code: "locked", minutes: Math.max(1, Math.ceil(attempt.retryAfterSeconds / 60)) },
      { status: 429, headers: { "Retry-After": String(attempt.retryAfterSeconds) } },
    );
  }
  return data({ errors: {}, message: LOGIN_MESSAGES.invalid_credentials, code: "invalid_credentials", minutes: 0 }, { status: 401 });
}

export default function Login() {
  const t = useT();
  const result = useActionData<typeof action>();
  const { oidc, oidcError } = useLoaderData<typeof loader>();
  const [params] = useSearchParams();
  const busy = useNavigation().state === "submitting";
  const errors: Record<string, string | undefined> = result?.errors ?? {};
  return (
    <div className="mx-auto max-w-md">
      <div className="card">
        <h1 className="text-2xl font-bold">{t("login.title")}</h1>
        {params.get("redirectTo") && !result ? (
          <div className="mt-4">
            <Alert kind="info">{params.get("expiree") ? t("login.expired") : t("login.continue")}</Alert>
          </div>
        ) : null}
        {oidcError && !result ? (
          <div className="mt-4">
            <Alert kind="error">
              {oidcError === "oidc-compte" ? t("login.oidcNoAccount") : oidcError === "oidc-indisponible" ? t("login.oidcDown") : t("login.oidcFailed")}
            </Alert>
          </div>
        ) : null}
        {result?.message ? (
          <div className="mt-4">
            <Alert kind="error">
              {"code" in result && result.code === "locked"
                ? result.minutes > 1
                  ? t("login.locked").replace("{n}", String(result.minutes))
                  : t("login.lockedOne")
                : "code" in result && result.code === "invalid_credentials"
                  ? t("login.invalid")
                  : result.message}
            </Alert>
          </div>
        ) : null}
        <Form method="post" className="mt-6 space-y-4" noValidate>
          <CsrfInput />
          <input type="hidden" name="redirectTo" value={params.get("redirectTo") ?? "/"} />
          <Field label={t("login.email")} name="email" type="email" autoComplete="username" required error={errors.email} />
          <Field
            label={t("login.password")}
            name="password"
            type="password"
            autoComplete="current-password"
            required
            error={errors.password}
          />
          <button type="submit" className="btn w-full" disabled={busy}>
            {t("login.submit")}
          </button>
        </Form>
        {oidc ? (
          <Form method="post" action="/connexion/oidc" className="mt-4 border-t border-slate-200 pt-4">
            <CsrfInput />
            <input type="hidden" name="redirectTo" value={params.get("redirectTo") ?? "/"} />
            <button type="submit" className="btn-secondary w-full">
              {`${t("login.oidcWith")} ${oidc}`}
            </button>
          </Form>
        ) : null}
      </div>
    </div>
  );
}
