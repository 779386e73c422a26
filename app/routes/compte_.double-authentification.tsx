import type { ActionFunctionArgs, HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { totpIntentSchema } from "../accounts/account-forms";
import { verifyPassword } from "../accounts/password.server";
import {
  beginEnrolment,
  confirmEnrolment,
  disableTotp,
  mfaRequiredFor,
  pendingEnrolment,
  TOTP_MESSAGES,
  TotpError,
  totpState,
  verifySecondFactor,
  type Enrolment,
} from "../accounts/totp.server";
import { getUser } from "../accounts/users.server";
import { HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { formFields, parseWith } from "../http/validation.server";
import { Alert, CsrfInput, Field } from "../ui/forms";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Double authentification — Nexus" }];
export const headers: HeadersFunction = ({ actionHeaders }) => actionHeaders;

/** A full session manages its second factor here; a session in the `mfa_enrol` stage must enrol here first. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  if (ctx.stage && ctx.stage !== "mfa_enrol") throw redirect("/");
  return perform(ctx, "account.totp", { type: "account", id: ctx.actor?.id }, async () => ({
    ...(await totpState(ctx.actor!.id)),
    required: mfaRequiredFor(ctx.actor!.role),
    enrolling: ctx.stage === "mfa_enrol",
    pending: await pendingEnrolment(ctx.actor!.id, ctx.actor!.email),
  }));
}

type Result =
  | { step: "enrol"; enrolment: Enrolment; message: string | null; errors: Record<string, string> }
  | { step: "codes"; codes: string[] }
  | { step: "disabled" }
  | { step: "error"; message: string | null; errors: Record<string, string> };

function totpFailure(err: TotpError): HttpError {
  const status = err.reason === "throttled" ? 429 : err.reason === "invalid_code" ? 400 : 409;
  const headers = err.reason === "throttled" ? { "Retry-After": String(err.retryAfterSeconds || 60) } : undefined;
  return new HttpError(status, err.reason, TOTP_MESSAGES[err.reason], { code: TOTP_MESSAGES[err.reason] }, headers);
}

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  if (ctx.stage && ctx.stage !== "mfa_enrol") throw redirect("/");
  const form = await readMutation(ctx, "account.totp");
  const parsed = parseWith(totpIntentSchema, formFields(form, ["intent", "code", "password"]));
  const actor = ctx.actor;
  try {
    return await perform(ctx, "account.totp", { type: "account", id: actor?.id }, async () => {
      if (!parsed.ok) throw new HttpError(400, "invalid", "Formulaire invalide.", parsed.errors);
      const me = actor!;
      try {
        switch (parsed.data.intent) {
          case "begin":
            return data<Result>({ step: "enrol", enrolment: await beginEnrolment(me.id, me.email), message: null, errors: {} });
          case "confirm": {
            const codes = await confirmEnrolment(me.id, parsed.data.code);
            // From the next request on, a session restricted to enrolling is a full one (the stage is derived).
            return data<Result>({ step: "codes", codes });
          }
          case "disable": {
            if (mfaRequiredFor(me.role)) throw new HttpError(409, "required", "La double authentification est obligatoire pour votre rôle.");
            const user = await getUser(me.id);
            if (!user || !(await verifyPassword(user.passwordHash, parsed.data.password))) {
              throw new HttpError(400, "invalid", "Mot de passe incorrect.", { password: "Mot de passe incorrect." });
            }
            await verifySecondFactor(me.id, parsed.data.code);
            await disableTotp(me.id);
            return data<Result>({ step: "disabled" });
          }
        }
      } catch (err) {
        throw err instanceof TotpError ? totpFailure(err) : err;
      }
    });
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    const pending = actor ? await pendingEnrolment(actor.id, actor.email) : null;
    const body: Result = pending
      ? { step: "enrol", enrolment: pending, message: err.message, errors: err.fields ?? {} }
      : { step: "error", message: err.message, errors: err.fields ?? {} };
    return data<Result>(body, { status: err.status, headers: err.headers });
  }
}

export default function SecondFactorSettings() {
  const t = useT();
  const state = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>() as Result | undefined;
  const enrolment = result?.step === "enrol" ? result.enrolment : state.pending;
  const errors: Record<string, string | undefined> = result && "errors" in result ? result.errors : {};
  const message = result && "message" in result ? result.message : null;

  if (result?.step === "codes") {
    return (
      <div className="mx-auto max-w-xl space-y-6">
        <h1 className="text-2xl font-bold">{t("totp.title")}</h1>
        <Alert kind="success">{t("totp.enabled")}</Alert>
        <section className="card" aria-labelledby="codes-title">
          <h2 id="codes-title" className="text-lg font-semibold">{t("totp.codesTitle")}</h2>
          <p className="mt-2 text-sm text-slate-600">{t("totp.codesHelp")}</p>
          <ul className="mt-4 grid grid-cols-1 gap-2 font-mono text-sm sm:grid-cols-2" data-testid="recovery-codes">
            {result.codes.map((c) => (
              <li key={c} className="rounded bg-slate-100 px-2 py-1">{c}</li>
            ))}
          </ul>
          <Link to="/" className="btn mt-6 inline-block">{t("totp.continue")}</Link>
        </section>
      </div>
    );
  }

  return (
    <div className="mx-auto max-w-xl space-y-6">
      <h1 className="text-2xl font-bold">{t("totp.title")}</h1>
      {state.enrolling ? <Alert kind="info">{t("totp.requiredNow")}</Alert> : null}
      {result?.step === "disabled" ? <Alert kind="success">{t("totp.disabled")}</Alert> : null}
      {message ? <Alert kind="error">{message}</Alert> : null}
      {state.enabled && result?.step !== "disabled" ? (
        <section className="card space-y-4" aria-labelledby="on-title">
          <h2 id="on-title" className="text-lg font-semibold">{t("totp.isOn")}</h2>
          <p className="text-sm text-slate-600">
            {t("totp.codesLeft")} <strong>{state.recoveryCodesLeft}</strong>
          </p>
          {state.required ? (
            <p className="text-sm text-slate-600">{t("totp.requiredRole")}</p>
          ) : (
            <Form method="post" className="space-y-4" noValidate>
              <CsrfInput />
              <input type="hidden" name="intent" value="disable" />
              <Field label={t("login.password")} name="password" type="password" autoComplete="current-password" required error={errors.password} />
              <Field label={t("otp.code")} name="code" inputMode="numeric" autoComplete="one-time-code" required error={errors.code} />
              <button type="submit" className="btn-secondary">{t("totp.disable")}</button>
            </Form>
          )}
        </section>
      ) : enrolment ? (
        <section className="card space-y-4" aria-labelledby="enrol-title">
          <h2 id="enrol-title" className="text-lg font-semibold">{t("totp.scan")}</h2>
          <div
            className="mx-auto h-56 w-56 [&>svg]:h-full [&>svg]:w-full"
            role="img"
            aria-label={t("totp.qrLabel")}
            dangerouslySetInnerHTML={{ __html: enrolment.qrSvg }}
          />
          <p className="text-sm text-slate-600">
            {t("totp.manual")}{" "}
            <code className="break-all rounded bg-slate-100 px-1 font-mono" data-testid="totp-secret">{enrolment.secret}</code>
          </p>
          <Form method="post" className="space-y-4" noValidate>
            <CsrfInput />
            <input type="hidden" name="intent" value="confirm" />
            <Field label={t("otp.code")} name="code" inputMode="numeric" autoComplete="one-time-code" required error={errors.code} />
            <button type="submit" className="btn">{t("totp.confirm")}</button>
          </Form>
        </section>
      ) : (
        <section className="card space-y-4" aria-labelledby="off-title">
          <h2 id="off-title" className="text-lg font-semibold">{t("totp.isOff")}</h2>
          <p className="text-sm text-slate-600">{t("totp.why")}</p>
          <Form method="post">
            <CsrfInput />
            <input type="hidden" name="intent" value="begin" />
            <button type="submit" className="btn">{t("totp.begin")}</button>
          </Form>
        </section>
      )}
      {state.enrolling ? (
        <Form method="post" action="/deconnexion">
          <CsrfInput />
          <button type="submit" className="btn-secondary">{t("nav.logout")}</button>
        </Form>
      ) : null}
    </div>
  );
}
