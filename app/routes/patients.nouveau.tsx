import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useActionData, useNavigation } from "@remix-run/react";
import { PURPOSES } from "../vocabulary";
import { HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { formFields, parseWith } from "../http/validation.server";
import { createPatient, newPatientSchema } from "../patients/patients.server";
import { Alert, CsrfInput, Field } from "../ui/forms";
import { useT } from "../ui/shell";
import { pageTitle } from "../ui/meta";

export const meta = pageTitle("newPatient.title");

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  await perform(ctx, "patient.create", { type: "patient" }, async () => null);
  return null;
}

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const form = await readMutation(ctx, "patient.create");
  const fields = formFields(form, ["displayName", "email", "ipp", "ins", "birthDate", "sex"]);
  // Unchecked boxes are "not recorded at intake", never an implicit refusal.
  const consents = Object.fromEntries(PURPOSES.filter((p) => form.get(`consent_${p}`) === "on").map((p) => [p, true]));
  const parsed = parseWith(newPatientSchema, { ...fields, consents });
  try {
    const created = await perform(
      ctx,
      "patient.create",
      { type: "patient" },
      async () => {
        if (!parsed.ok) throw new HttpError(400, "invalid", "Formulaire invalide.", parsed.errors);
        return createPatient(ctx.actor!, parsed.data);
      },
      { describe: (r) => ({ resourceId: r.id, patientId: r.id }) },
    );
    return data({ created, errors: {} as Record<string, string> }, { status: 201 });
  } catch (err) {
    if (err instanceof HttpError) return data({ created: null, errors: err.fields ?? {} }, { status: err.status });
    throw err;
  }
}

export default function NewPatient() {
  const t = useT();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const errors: Record<string, string | undefined> = result?.errors ?? {};
  const created = result?.created;
  return (
    <div className="mx-auto max-w-2xl space-y-6">
      <h1 className="text-2xl font-bold">{t("newPatient.title")}</h1>
      {created ? (
        <Alert kind="success">
          <p>
            {t("newPatient.created")}{" "}
            <Link className="underline" to={`/patients/${created.id}`}>
              {t("patients.open")}
            </Link>
          </p>
          {created.account ? (
            <p className="mt-2">
              {t("newPatient.accountCreated")} <strong>{created.account.email}</strong> —{" "}
              <code className="rounded bg-white px-1 font-mono" data-testid="temporary-password">
                {created.account.temporaryPassword}
              </code>
            </p>
          ) : null}
        </Alert>
      ) : null}
      {Object.keys(errors).length > 0 ? <Alert kind="error">{t("form.errors")}</Alert> : null}
      {/* A new key after each creation remounts the form empty: no accidental second patient with the same data. */}
      <Form key={created?.id ?? "new"} method="post" className="card space-y-5" noValidate>
        <CsrfInput />
        <Field label={t("newPatient.displayName")} name="displayName" required maxLength={200} error={errors.displayName} />
        <Field label={t("newPatient.email")} name="email" type="email" autoComplete="off" error={errors.email} />
        <div className="grid gap-4 sm:grid-cols-2">
          <Field label={t("identity.ipp")} name="ipp" maxLength={64} autoComplete="off" error={errors.ipp} hint={t("newPatient.ippHint")} />
          <Field label={t("identity.ins")} name="ins" maxLength={21} autoComplete="off" inputMode="numeric" error={errors.ins} hint={t("newPatient.insHint")} />
          <Field label={t("identity.birthDate")} name="birthDate" type="date" error={errors.birthDate} />
          <div>
            <label htmlFor="field-sex" className="block text-sm font-medium text-slate-800">
              {t("identity.sex")}
            </label>
            <select id="field-sex" name="sex" className="input mt-1" defaultValue="F" aria-invalid={errors.sex ? true : undefined}>
              <option value="F">{t("identity.sex.F")}</option>
              <option value="M">{t("identity.sex.M")}</option>
              <option value="U">{t("identity.sex.U")}</option>
            </select>
            {errors.sex ? <p className="mt-1 text-sm text-red-700">{errors.sex}</p> : null}
          </div>
        </div>
        <fieldset>
          <legend className="text-sm font-medium text-slate-800">{t("newPatient.consents")}</legend>
          <div className="mt-2 space-y-2">
            {PURPOSES.map((p) => (
              <label key={p} className="flex items-start gap-2 text-sm">
                <input type="checkbox" name={`consent_${p}`} className="mt-1" />
                <span>{t(`purpose.${p}`)}</span>
              </label>
            ))}
          </div>
        </fieldset>
        <button type="submit" className="btn" disabled={busy}>
          {t("newPatient.submit")}
        </button>
      </Form>
    </div>
  );
}
