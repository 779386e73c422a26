import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation, useRouteLoaderData, useSearchParams } from "@remix-run/react";
import { editAccountSchema, newAccountSchema } from "../accounts/account-forms";
import {
  createUser,
  EmailTakenError,
  listUsers,
  resetPassword,
  setUserDisabled,
  SubjectTakenError,
  updateUser,
} from "../accounts/users.server";
import { HttpError, failure, pageContext, perform, readMutation } from "../http/context.server";
import { formFields, parseWith } from "../http/validation.server";
import { authorize } from "../policy/policy.server";
import { fieldMessage } from "../i18n/fields";
import type { loader as rootLoader } from "../root";
import { HUMAN_ROLES } from "../vocabulary";
import { formatDate } from "../ui/format";
import { Alert, CsrfInput, Field } from "../ui/forms";
import { ConfirmStep } from "../ui/confirm";
import { useT } from "../ui/shell";
import { ScrollRegion } from "../ui/table";
import { pageTitle } from "../ui/meta";

export const meta = pageTitle("nav.accounts");

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const users = await perform(ctx, "account.list", { type: "account" }, () => listUsers());
  return { users, selfId: ctx.actor!.id };
}

type Result = { ok: boolean; message: string | null; errors: Record<string, string>; temporaryPassword?: string; email?: string };

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const intent = (await args.request.clone().formData()).get("intent");
  if (intent === "create") {
    const form = await readMutation(ctx, "account.create");
    const parsed = parseWith(newAccountSchema, formFields(form, ["name", "email", "role", "password"]));
    try {
      await perform(
        ctx,
        "account.create",
        { type: "account" },
        async () => {
          if (!parsed.ok) throw new HttpError(400, "invalid", "Formulaire invalide.", parsed.errors);
          try {
            return await createUser(parsed.data);
          } catch (err) {
            if (err instanceof EmailTakenError) throw new HttpError(409, "conflict", err.message, { email: err.message });
            throw err;
          }
        },
        { describe: (r) => ({ resourceId: r.id }) },
      );
      return data<Result>({ ok: true, message: "created", errors: {} }, { status: 201 });
    } catch (err) {
      if (err instanceof HttpError) return data<Result>({ ok: false, message: null, errors: err.fields ?? {} }, { status: err.status });
      throw err;
    }
  }
  if (intent === "disable" || intent === "enable") {
    const action = intent === "disable" ? "account.disable" : "account.enable";
    const form = await readMutation(ctx, action);
    const userId = String(form.get("userId") ?? "");
    // Disabling cuts someone off: without the confirmation step's field, show that step (works without JavaScript).
    // (Only for whoever may disable it: anyone else goes on to perform(), which refuses and audits the refusal.)
    if (intent === "disable" && form.get("confirm") !== "1" && (await authorize(ctx.actor, action, { type: "account", id: userId })).allowed) {
      return redirect(`/admin/comptes?desactiver=${encodeURIComponent(userId)}#confirmation`, 303);
    }
    const found = await perform(ctx, action, { type: "account", id: userId }, () =>
      setUserDisabled(userId, intent === "disable"),
    );
    if (!found) throw failure(ctx, 404, "not_found", "Compte introuvable.");
    return data<Result>({ ok: true, message: intent, errors: {} });
  }
  if (intent === "reset") {
    const form = await readMutation(ctx, "account.reset");
    const userId = String(form.get("userId") ?? "");
    const password = await perform(ctx, "account.reset", { type: "account", id: userId }, () => resetPassword(userId));
    if (!password) throw failure(ctx, 404, "not_found", "Compte introuvable.");
    return data<Result>({ ok: true, message: "reset", errors: {}, temporaryPassword: password, email: String(form.get("email") ?? "") });
  }
  if (intent === "update") {
    const form = await readMutation(ctx, "account.update");
    const userId = String(form.get("userId") ?? "");
    const parsed = parseWith(editAccountSchema, formFields(form, ["name", "role", "oidcSubject"]));
    try {
      const found = await perform(ctx, "account.update", { type: "account", id: userId }, async () => {
        if (!parsed.ok) throw new HttpError(400, "invalid", "Formulaire invalide.", parsed.errors);
        try {
          return await updateUser(userId, parsed.data);
        } catch (err) {
          if (err instanceof SubjectTakenError) throw new HttpError(409, "conflict", err.message, { oidcSubject: err.message });
          throw err;
        }
      });
      if (!found) throw failure(ctx, 404, "not_found", "Compte introuvable.");
      return data<Result>({ ok: true, message: "updated", errors: {} });
    } catch (err) {
      if (err instanceof HttpError) return data<Result>({ ok: false, message: null, errors: err.fields ?? {} }, { status: err.status });
      throw err;
    }
  }
  throw failure(ctx, 400, "invalid", "Action inconnue.");
}

export default function Accounts() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { users, selfId } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const errors: Record<string, string | undefined> = result?.errors ?? {};
  const [params] = useSearchParams();
  const toDisable = result ? null : users.find((u) => u.id === params.get("desactiver") && !u.disabledAt && u.id !== selfId);
  return (
    <div className="space-y-8">
      <h1 className="text-2xl font-bold">{t("accounts.title")}</h1>
      {result?.message === "reset" && result.temporaryPassword ? (
        <Alert kind="success">
          {t("accounts.resetDone")} {result.email}:{" "}
          <code className="rounded bg-white px-1 font-mono" data-testid="temporary-password">{result.temporaryPassword}</code>
        </Alert>
      ) : null}
      {result?.message === "updated" ? <Alert kind="success">{t("accounts.updated")}</Alert> : null}
      {result?.message === "disable" ? <Alert kind="success">{t("accounts.disabledDone")}</Alert> : null}
      {result?.message === "enable" ? <Alert kind="success">{t("accounts.enabledDone")}</Alert> : null}
      {toDisable ? (
        <ConfirmStep
          testId="disable-confirm"
          title={`${t("accounts.disableTitle")} ${toDisable.name} (${toDisable.email}) ?`}
          action="/admin/comptes"
          fields={{ intent: "disable", userId: toDisable.id }}
          confirmLabel={t("accounts.disableConfirm")}
          cancelTo="/admin/comptes"
        >
          <p>{t("accounts.disableConsequences")}</p>
        </ConfirmStep>
      ) : null}
      <ScrollRegion label={t("accounts.title")} className="card p-0">
        <table className="min-w-full divide-y divide-slate-200 text-sm">
          <thead className="bg-slate-50 text-left text-slate-600">
            <tr>
              <th scope="col" className="px-4 py-3 font-medium">{t("accounts.name")}</th>
              <th scope="col" className="px-4 py-3 font-medium">{t("accounts.email")}</th>
              <th scope="col" className="px-4 py-3 font-medium">{t("accounts.role")}</th>
              <th scope="col" className="px-4 py-3 font-medium">{t("patients.created")}</th>
              <th scope="col" className="px-4 py-3 font-medium">{t("accounts.status")}</th>
              <th scope="col" className="px-4 py-3"><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {users.map((u) => (
              <tr key={u.id} data-email={u.email}>
                <td className="px-4 py-3 font-medium">{u.name}</td>
                <td className="px-4 py-3">{u.email}</td>
                <td className="px-4 py-3">{t(`role.${u.role}`)}</td>
                <td className="px-4 py-3 text-slate-600">{formatDate(u.createdAt, lang)}</td>
                <td className="px-4 py-3">{u.disabledAt ? t("accounts.disabled") : t("accounts.active")}</td>
                <td className="px-4 py-3 text-right">
                  {u.id === selfId ? null : !u.disabledAt ? (
                    <Form method="get" action="/admin/comptes">
                      <input type="hidden" name="desactiver" value={u.id} />
                      <button type="submit" className="btn-secondary" aria-label={`${t("accounts.disable")} ${u.email}`}>
                        {t("accounts.disable")}
                      </button>
                    </Form>
                  ) : (
                    <Form method="post">
                      <CsrfInput />
                      <input type="hidden" name="userId" value={u.id} />
                      <button
                        type="submit"
                        name="intent"
                        value={u.disabledAt ? "enable" : "disable"}
                        className="btn-secondary"
                        aria-label={`${u.disabledAt ? t("accounts.enable") : t("accounts.disable")} ${u.email}`}
                      >
                        {u.disabledAt ? t("accounts.enable") : t("accounts.disable")}
                      </button>
                    </Form>
                  )}
                  {u.id === selfId ? null : (
                    <details className="mt-2 text-left">
                      <summary className="cursor-pointer text-sm text-sky-800 underline">{t("accounts.manage")}</summary>
                      <Form method="post" className="mt-2 space-y-2">
                        <CsrfInput />
                        <input type="hidden" name="userId" value={u.id} />
                        <label className="block text-sm">
                          {t("accounts.name")}
                          <input name="name" defaultValue={u.name} className="input mt-1" required />
                        </label>
                        <label className="block text-sm">
                          {t("accounts.role")}
                          <select name="role" defaultValue={u.role} className="input mt-1">
                            {HUMAN_ROLES.map((r) => (
                              <option key={r} value={r}>{t(`role.${r}`)}</option>
                            ))}
                          </select>
                        </label>
                        <label className="block text-sm">
                          {t("accounts.oidcSubject")}
                          <input name="oidcSubject" defaultValue={u.oidcSubject ?? ""} className="input mt-1" autoComplete="off" />
                        </label>
                        <button type="submit" name="intent" value="update" className="btn-secondary">{t("accounts.save")}</button>
                      </Form>
                      <Form method="post" className="mt-2">
                        <CsrfInput />
                        <input type="hidden" name="userId" value={u.id} />
                        <input type="hidden" name="email" value={u.email} />
                        <button type="submit" name="intent" value="reset" className="btn-secondary">{t("accounts.reset")}</button>
                      </Form>
                    </details>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </ScrollRegion>

      <section className="card max-w-xl" aria-labelledby="create-title">
        <h2 id="create-title" className="text-lg font-semibold">{t("accounts.create")}</h2>
        {result?.message === "created" ? <div className="mt-3"><Alert kind="success">{t("accounts.created")}</Alert></div> : null}
        {Object.keys(errors).length > 0 ? <div className="mt-3"><Alert kind="error">{t("form.errors")}</Alert></div> : null}
        <Form method="post" className="mt-4 space-y-4" noValidate>
          <CsrfInput />
          <Field label={t("accounts.name")} name="name" required error={errors.name} />
          <Field label={t("accounts.email")} name="email" type="email" required autoComplete="off" error={errors.email} />
          <div>
            <label htmlFor="field-role" className="block text-sm font-medium text-slate-800">{t("accounts.role")}</label>
            <select id="field-role" name="role" className="input mt-1" defaultValue="doctor">
              {HUMAN_ROLES.map((r) => (
                <option key={r} value={r}>{t(`role.${r}`)}</option>
              ))}
            </select>
            {errors.role ? <p className="mt-1 text-sm text-red-700">{fieldMessage(errors.role, lang)}</p> : null}
          </div>
          <Field label={t("accounts.password")} name="password" type="password" required minLength={12} autoComplete="new-password" error={errors.password} />
          <button type="submit" name="intent" value="create" className="btn" disabled={busy}>
            {t("accounts.create")}
          </button>
        </Form>
      </section>
    </div>
  );
}
