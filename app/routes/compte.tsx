import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useRouteLoaderData } from "@remix-run/react";
import type { loader as rootLoader } from "../root";
import { formatDate } from "../ui/format";
import { changePasswordSchema, endCredentialSchema } from "../accounts/account-forms";
import { totpState } from "../accounts/totp.server";
import { changePassword, endCredential, listCredentials } from "../accounts/users.server";
import { HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { formFields, parseWith } from "../http/validation.server";
import { Alert, CsrfInput, Field } from "../ui/forms";
import { useT } from "../ui/shell";
import { pageTitle } from "../ui/meta";

export const meta = pageTitle("account.title");

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  return perform(ctx, "account.self", { type: "account", id: ctx.actor?.id }, async () => {
    const credentials = await listCredentials(ctx.actor!.id);
    return {
      name: ctx.actor!.name,
      email: ctx.actor!.email,
      role: ctx.actor!.role,
      totp: await totpState(ctx.actor!.id),
      sessions: credentials.sessions.map((s) => ({ ...s, current: s.idHash === ctx.sessionIdHash })),
      tokens: credentials.tokens,
    };
  });
}

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const intent = (await args.request.clone().formData()).get("intent");
  if (intent === "end-session" || intent === "end-token") {
    const form = await readMutation(ctx, "account.sessions");
    const parsed = parseWith(endCredentialSchema, formFields(form, ["intent", "id"]));
    try {
      await perform(ctx, "account.sessions", { type: "account", id: ctx.actor?.id }, async () => {
        if (!parsed.ok) throw new HttpError(400, "invalid", "Formulaire invalide.", parsed.errors);
        const kind = parsed.data.intent === "end-session" ? "session" : "token";
        if (!(await endCredential(ctx.actor!.id, kind, parsed.data.id))) throw new HttpError(404, "not_found", "Session ou jeton introuvable.");
      });
      return data({ ok: false, ended: true, errors: {} as Record<string, string> });
    } catch (err) {
      if (err instanceof HttpError) return data({ ok: false, ended: false, errors: { end: err.message } }, { status: err.status });
      throw err;
    }
  }
  const form = await readMutation(ctx, "account.password");
  const parsed = parseWith(changePasswordSchema, formFields(form, ["current", "next"]));
  try {
    await perform(ctx, "account.password", { type: "account", id: ctx.actor?.id }, async () => {
      if (!parsed.ok) throw new HttpError(400, "invalid", "Formulaire invalide.", parsed.errors);
      const changed = await changePassword(ctx.actor!.id, parsed.data.current, parsed.data.next, ctx.sessionIdHash);
      if (!changed) throw new HttpError(400, "invalid", "Mot de passe actuel incorrect.", { current: "Mot de passe actuel incorrect." });
    });
    return data({ ok: true, ended: false, errors: {} as Record<string, string> });
  } catch (err) {
    if (err instanceof HttpError) return data({ ok: false, ended: false, errors: err.fields ?? {} }, { status: err.status });
    throw err;
  }
}

/** Ends one of the user's own sessions or API tokens (a form: works without JavaScript). */
function EndButton({ intent, id }: { intent: "end-session" | "end-token"; id: string }) {
  const t = useT();
  return (
    <Form method="post">
      <CsrfInput />
      <input type="hidden" name="intent" value={intent} />
      <input type="hidden" name="id" value={id} />
      <button type="submit" className="btn-secondary">{t("sessions.end")}</button>
    </Form>
  );
}

export default function Account() {
  const t = useT();
  const me = useLoaderData<typeof loader>();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const result = useActionData<typeof action>();
  const errors: Record<string, string | undefined> = result?.errors ?? {};
  return (
    <div className="mx-auto max-w-xl space-y-6">
      <h1 className="text-2xl font-bold">{t("account.title")}</h1>
      <dl className="card grid grid-cols-3 gap-2 text-sm">
        <dt className="text-slate-500">{t("accounts.name")}</dt>
        <dd className="col-span-2">{me.name}</dd>
        <dt className="text-slate-500">{t("accounts.email")}</dt>
        <dd className="col-span-2">{me.email}</dd>
        <dt className="text-slate-500">{t("accounts.role")}</dt>
        <dd className="col-span-2">{t(`role.${me.role}`)}</dd>
      </dl>
      <section className="card" aria-labelledby="pw-title">
        <h2 id="pw-title" className="text-lg font-semibold">{t("account.changePassword")}</h2>
        {result?.ok ? <div className="mt-3"><Alert kind="success">{t("account.changed")}</Alert></div> : null}
        <Form method="post" className="mt-4 space-y-4" noValidate>
          <CsrfInput />
          <Field label={t("account.current")} name="current" type="password" autoComplete="current-password" required error={errors.current} />
          <Field label={t("account.new")} name="next" type="password" autoComplete="new-password" required minLength={12} error={errors.next} />
          <button type="submit" className="btn">{t("account.submit")}</button>
        </Form>
      </section>
      <section className="card" aria-labelledby="mfa-title">
        <h2 id="mfa-title" className="text-lg font-semibold">{t("account.secondFactor")}</h2>
        <p className="mt-2 text-sm text-slate-600">{me.totp.enabled ? t("totp.isOn") : t("totp.isOff")}</p>
        <Link to="/compte/double-authentification" className="btn-secondary mt-4 inline-block">{t("account.manageSecondFactor")}</Link>
      </section>
      <section className="card" aria-labelledby="sessions-title">
        <h2 id="sessions-title" className="text-lg font-semibold">{t("sessions.title")}</h2>
        {result?.ended ? <div className="mt-3"><Alert kind="success">{t("sessions.ended")}</Alert></div> : null}
        {errors.end ? <div className="mt-3"><Alert kind="error">{errors.end}</Alert></div> : null}
        <h3 className="mt-4 font-medium">{t("sessions.browser")}</h3>
        <ul className="mt-2 divide-y divide-slate-200 text-sm" data-testid="session-list">
          {me.sessions.map((s) => (
            <li key={s.idHash} className="flex flex-wrap items-center justify-between gap-2 py-2">
              <span className="min-w-0 break-words">
                {t("sessions.started")} {formatDate(s.createdAt, lang)} · {s.userAgent ?? "—"} · {s.ip ?? "—"}
              </span>
              {s.current ? (
                <strong className="text-emerald-700">{t("sessions.current")}</strong>
              ) : (
                <EndButton intent="end-session" id={s.idHash} />
              )}
            </li>
          ))}
        </ul>
        <h3 className="mt-4 font-medium">{t("sessions.tokens")}</h3>
        {me.tokens.length === 0 ? <p className="mt-2 text-sm text-slate-600">{t("sessions.none")}</p> : null}
        <ul className="mt-2 divide-y divide-slate-200 text-sm" data-testid="token-list">
          {me.tokens.map((tok) => (
            <li key={tok.id} className="flex flex-wrap items-center justify-between gap-2 py-2">
              <span>
                {t("sessions.started")} {formatDate(tok.createdAt, lang)} · {t("sessions.expires")} {formatDate(tok.expiresAt, lang)}
              </span>
              <EndButton intent="end-token" id={tok.id} />
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}
