import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, useActionData } from "@remix-run/react";
import { newPasswordSchema } from "../accounts/account-forms";
import { afterStage } from "../accounts/login-flow.server";
import { totpState } from "../accounts/totp.server";
import { setChosenPassword } from "../accounts/users.server";
import { HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { formFields, parseWith } from "../http/validation.server";
import { Alert, CsrfInput, Field } from "../ui/forms";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Nouveau mot de passe — Nexus" }];

/**
 * After a login with a temporary password (consumed by that login): the user chooses her own before anything
 * else. Only a session in the `password_change` stage reaches this page.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  if (ctx.stage !== "password_change") throw redirect(ctx.actor ? "/compte" : "/connexion");
  return null;
}

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  if (ctx.stage !== "password_change") throw redirect(ctx.actor ? "/compte" : "/connexion");
  const form = await readMutation(ctx, "account.password");
  const parsed = parseWith(newPasswordSchema, formFields(form, ["next", "confirm"]));
  try {
    await perform(ctx, "account.password", { type: "account", id: ctx.actor?.id }, async () => {
      if (!parsed.ok) throw new HttpError(400, "invalid", "Formulaire invalide.", parsed.errors);
      await setChosenPassword(ctx.actor!.id, parsed.data.next, ctx.sessionIdHash);
    });
  } catch (err) {
    if (err instanceof HttpError) return data({ errors: err.fields ?? {} }, { status: err.status });
    throw err;
  }
  const { enabled } = await totpState(ctx.actor!.id);
  throw await afterStage(args.request, ctx.actor!, ctx.info.ip, enabled);
}

export default function ChooseNewPassword() {
  const t = useT();
  const result = useActionData<typeof action>();
  const errors: Record<string, string | undefined> = result?.errors ?? {};
  return (
    <div className="mx-auto max-w-md">
      <div className="card">
        <h1 className="text-2xl font-bold">{t("newPassword.title")}</h1>
        <div className="mt-4">
          <Alert kind="info">{t("newPassword.why")}</Alert>
        </div>
        <Form method="post" className="mt-6 space-y-4" noValidate>
          <CsrfInput />
          <Field label={t("account.new")} name="next" type="password" autoComplete="new-password" required minLength={12} error={errors.next} />
          <Field label={t("newPassword.confirm")} name="confirm" type="password" autoComplete="new-password" required error={errors.confirm} />
          <button type="submit" className="btn w-full">{t("account.submit")}</button>
        </Form>
        <Form method="post" action="/deconnexion" className="mt-4">
          <CsrfInput />
          <button type="submit" className="btn-secondary w-full">{t("nav.logout")}</button>
        </Form>
      </div>
    </div>
  );
}
