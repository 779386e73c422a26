import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation, useRouteLoaderData } from "@remix-run/react";
import { newAccountSchema } from "../accounts/account-forms";
import { z } from "zod";
import { createUser, EmailTakenError, getUser, listUsers, setUserDisabled } from "../accounts/users.server";
import { HttpError, failure, pageContext, perform, readMutation } from "../http/context.server";
import { readIntent } from "../http/intent.server";
import { formFields, parseWith } from "../http/validation.server";
import type { loader as rootLoader } from "../root";
import { ROLES } from "../vocabulary";
import { formatDate } from "../ui/format";
import { Alert, CsrfInput, Field } from "../ui/forms";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Comptes — Nexus" }];

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const users = await perform(ctx, "account.list", { type: "account" }, () => listUsers());
  return { users, selfId: ctx.actor!.id };
}

type Result = { ok: boolean; message: string | null; errors: Record<string, string> };

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const { intent } = await readIntent(ctx, accountIntent);
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
    // An unknown account is a 404 before the policy is asked (never an "allowed" event for nothing).
    const exists = Boolean(await getUser(userId));
    const found = await perform(ctx, action, { type: "account", id: userId }, () => setUserDisabled(userId, intent === "disable"), {
      exists,
    });
    if (!found) throw failure(ctx, 404, "not_found", "Compte introuvable.");
    return data<Result>({ ok: true, message: intent, errors: {} });
  }
  throw failure(ctx, 400, "invalid", "Action inconnue.");
}

/** The page's intents (see app/http/intent.server.ts). */
const accountIntent = z.discriminatedUnion("intent", [
  z.object({ intent: z.literal("create") }),
  z.object({ intent: z.literal("disable"), userId: z.uuid() }),
  z.object({ intent: z.literal("enable"), userId: z.uuid() }),
]);

export default function Accounts() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { users, selfId } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const errors: Record<string, string | undefined> = result?.errors ?? {};
  return (
    <div className="space-y-8">
      <h1 className="text-2xl font-bold">{t("accounts.title")}</h1>
      <div className="card overflow-x-auto p-0">
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
                  {u.id === selfId ? null : (
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
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

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
              {ROLES.map((r) => (
                <option key={r} value={r}>{t(`role.${r}`)}</option>
              ))}
            </select>
            {errors.role ? <p className="mt-1 text-sm text-red-700">{errors.role}</p> : null}
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
