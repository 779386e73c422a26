import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, useActionData, useLoaderData } from "@remix-run/react";
import { changePasswordSchema } from "../accounts/account-forms";
import { changePassword } from "../accounts/users.server";
import { HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { formFields, parseWith } from "../http/validation.server";
import { Alert, CsrfInput, Field } from "../ui/forms";
import { useT } from "../ui/shell";
import { pageTitle } from "../ui/meta";

export const meta = pageTitle("account.title");

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  return perform(ctx, "account.self", { type: "account", id: ctx.actor?.id }, async () => ({
    name: ctx.actor!.name,
    email: ctx.actor!.email,
    role: ctx.actor!.role,
  }));
}

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const form = await readMutation(ctx, "account.password");
  const parsed = parseWith(changePasswordSchema, formFields(form, ["current", "next"]));
  try {
    await perform(ctx, "account.password", { type: "account", id: ctx.actor?.id }, async () => {
      if (!parsed.ok) throw new HttpError(400, "invalid", "Formulaire invalide.", parsed.errors);
      const changed = await changePassword(ctx.actor!.id, parsed.data.current, parsed.data.next);
      if (!changed) throw new HttpError(400, "invalid", "Mot de passe actuel incorrect.", { current: "Mot de passe actuel incorrect." });
    });
    return data({ ok: true, errors: {} as Record<string, string> });
  } catch (err) {
    if (err instanceof HttpError) return data({ ok: false, errors: err.fields ?? {} }, { status: err.status });
    throw err;
  }
}

export default function Account() {
  const t = useT();
  const me = useLoaderData<typeof loader>();
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
    </div>
  );
}
