import type { ActionFunctionArgs, HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, useActionData, useNavigation, useSearchParams } from "@remix-run/react";
import { authenticator, recordLogin } from "../accounts/auth.server";
import { CSRF_FIELD, CsrfError, verifyCsrf } from "../accounts/csrf.server";
import { LOGIN_MESSAGES, retryAfterMessage } from "../accounts/login.server";
import { actorFromSession, startSession } from "../accounts/session.server";
import { failure, requestInfo } from "../http/context.server";
import { safeRedirect } from "../http/redirect.server";
import { Alert, CsrfInput, Field } from "../ui/forms";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Connexion — Nexus" }];
/** Carries the action's Retry-After (429) to the document response. */
export const headers: HeadersFunction = ({ actionHeaders }) => actionHeaders;

export async function loader({ request }: LoaderFunctionArgs) {
  if (await actorFromSession(request)) throw redirect("/");
  return null;
}

export async function action({ request, context }: ActionFunctionArgs) {
  const info = requestInfo(request, context);
  const form = await request.clone().formData();
  try {
    await verifyCsrf(request, form.get(CSRF_FIELD));
  } catch (err) {
    if (err instanceof CsrfError) {
      await recordLogin({ ok: false, reason: "csrf" }, info, "session");
      throw failure({ channel: "page" }, 403, "csrf", err.message);
    }
    throw err;
  }
  const attempt = await authenticator.authenticate("form", request);
  await recordLogin(attempt, info, "session");
  if (attempt.ok) {
    const cookie = await startSession(request, attempt.actor.id);
    throw safeRedirect(form.get("redirectTo"), { headers: { "Set-Cookie": cookie } });
  }
  if (attempt.reason === "invalid_input") return data({ errors: attempt.errors, message: null }, { status: 400 });
  if (attempt.reason === "locked") {
    return data(
      { errors: {}, message: retryAfterMessage(attempt.retryAfterSeconds) },
      { status: 429, headers: { "Retry-After": String(attempt.retryAfterSeconds) } },
    );
  }
  return data({ errors: {}, message: LOGIN_MESSAGES.invalid_credentials }, { status: 401 });
}

export default function Login() {
  const t = useT();
  const result = useActionData<typeof action>();
  const [params] = useSearchParams();
  const busy = useNavigation().state === "submitting";
  const errors: Record<string, string | undefined> = result?.errors ?? {};
  return (
    <div className="mx-auto max-w-md">
      <div className="card">
        <h1 className="text-2xl font-bold">{t("login.title")}</h1>
        {params.get("redirectTo") && !result ? (
          <div className="mt-4">
            <Alert kind="info">{t("login.expired")}</Alert>
          </div>
        ) : null}
        {result?.message ? (
          <div className="mt-4">
            <Alert kind="error">{result.message}</Alert>
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
      </div>
    </div>
  );
}
