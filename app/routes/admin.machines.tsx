import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation, useRouteLoaderData, useSearchParams } from "@remix-run/react";
import { z } from "zod";
import {
  createMachine,
  dimseAcceptance,
  listMachines,
  newMachineSchema,
  newMachineToken,
  revokeMachineToken,
  setMachineDisabled,
} from "../accounts/machines.server";
import { HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { readIntent } from "../http/intent.server";
import { formFields, parseWith } from "../http/validation.server";
import { fieldMessage } from "../i18n/fields";
import { authorize, type Action } from "../policy/policy.server";
import type { loader as rootLoader } from "../root";
import { MACHINE_SCOPES } from "../vocabulary";
import { formatDate } from "../ui/format";
import { Alert, CsrfInput, Field } from "../ui/forms";
import { ConfirmStep } from "../ui/confirm";
import { pageTitle } from "../ui/meta";
import { useT } from "../ui/shell";

export const meta = pageTitle("nav.machines");

const PATH = "/admin/machines";

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const machines = await perform(ctx, "machine.list", { type: "machine" }, () => listMachines());
  const now = Date.now();
  return {
    machines: machines.map((m) => ({
      ...m,
      dimse: dimseAcceptance(m.aeTitle),
      tokens: m.tokens.map((tok) => ({ ...tok, expired: tok.expiresAt.getTime() <= now })),
    })),
  };
}

/**
 * The page's intents. Revoking a token and disabling an account are destructive: without the confirmation step's
 * field they only show that step (a GET, so it works without JavaScript).
 */
const machineIntent = z.discriminatedUnion("intent", [
  z.object({ intent: z.literal("create") }),
  z.object({ intent: z.literal("token"), machineId: z.uuid() }),
  z.object({ intent: z.literal("revoke"), machineId: z.uuid(), tokenId: z.uuid(), confirm: z.literal("1").optional() }),
  z.object({ intent: z.literal("disable"), machineId: z.uuid(), confirm: z.literal("1").optional() }),
  z.object({ intent: z.literal("enable"), machineId: z.uuid() }),
]);

type Result =
  | { kind: "created" | "token"; id: string; name: string; token: string; expiresAt: Date }
  | { kind: "revoked" | "disabled" | "enabled" }
  | { kind: "invalid"; errors: Record<string, string> }
  | { kind: "failed"; code: string };

const notFound = () => new HttpError(404, "not_found", "Compte machine ou jeton introuvable.");

/** A refusal found while running (unknown machine, disabled account, taken AE title) stays on the page, translated. */
function refused(err: unknown) {
  if (!(err instanceof HttpError) || err.status >= 500 || err.status === 401 || err.status === 403) throw err;
  if (err.fields && Object.keys(err.fields).length) return data<Result>({ kind: "invalid", errors: err.fields }, { status: err.status });
  return data<Result>({ kind: "failed", code: err.code }, { status: err.status });
}

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const intent = await readIntent(ctx, machineIntent);
  const actions: Record<typeof intent.intent, Action> = {
    create: "machine.create",
    token: "machine.token",
    revoke: "machine.revoke",
    disable: "machine.disable",
    enable: "machine.enable",
  };
  const action = actions[intent.intent];
  const form = await readMutation(ctx, action);
  try {
    switch (intent.intent) {
      case "create": {
        const parsed = parseWith(newMachineSchema, { ...formFields(form, ["name", "aeTitle"]), scopes: form.getAll("scopes") });
        const created = await perform(
          ctx,
          action,
          { type: "machine" },
          () => {
            if (!parsed.ok) throw new HttpError(400, "invalid", "Formulaire invalide.", parsed.errors);
            return createMachine(parsed.data);
          },
          { describe: (r) => ({ resourceId: r.id }) },
        );
        // The token is in this answer only: Nexus keeps its SHA-256, never the token.
        return data<Result>({ kind: "created", id: created.id, name: parsed.ok ? parsed.data.name : "", token: created.token, expiresAt: created.expiresAt }, { status: 201 });
      }
      case "token": {
        const resource = { type: "machine", id: intent.machineId } as const;
        const issued = await perform(ctx, action, resource, () => newMachineToken(intent.machineId));
        return data<Result>({ kind: "token", id: intent.machineId, ...issued }, { status: 201 });
      }
      case "revoke":
      case "disable": {
        const resource = { type: "machine", id: intent.machineId } as const;
        // Without the confirmation step's field, show that step (only to whoever may do it: anyone else goes on to
        // perform(), which refuses and audits the refusal).
        if (intent.confirm !== "1" && (await authorize(ctx.actor, action, resource)).allowed) {
          const query = intent.intent === "revoke" ? `revoquer=${intent.tokenId}&machine=${intent.machineId}` : `desactiver=${intent.machineId}`;
          return redirect(`${PATH}?${query}#confirmation`, 303);
        }
        await perform(ctx, action, resource, async () => {
          const done = intent.intent === "revoke" ? await revokeMachineToken(intent.machineId, intent.tokenId) : await setMachineDisabled(intent.machineId, true);
          if (!done) throw notFound();
        });
        return data<Result>({ kind: intent.intent === "revoke" ? "revoked" : "disabled" });
      }
      case "enable": {
        await perform(ctx, action, { type: "machine", id: intent.machineId }, async () => {
          if (!(await setMachineDisabled(intent.machineId, false))) throw notFound();
        });
        return data<Result>({ kind: "enabled" });
      }
    }
  } catch (err) {
    return refused(err);
  }
}

type Machine = Awaited<ReturnType<typeof loader>>["machines"][number];

/** A new token, shown once: a read-only field to select and copy, and what to do with it. */
function NewToken({ name, token, expiresAt }: { name: string; token: string; expiresAt: Date | string }) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  return (
    <div className="rounded-md bg-emerald-50 p-4 text-sm text-emerald-900 ring-1 ring-emerald-200" role="status" data-testid="new-token">
      <h2 className="font-semibold">
        {t("machines.tokenFor")} {name}
      </h2>
      <p className="mt-1">{t("machines.tokenOnce")}</p>
      <label htmlFor="new-token" className="mt-3 block font-medium">
        {t("machines.tokenLabel")}
      </label>
      <input
        id="new-token"
        readOnly
        value={token}
        className="input mt-1 font-mono text-xs"
        onFocus={(e) => e.currentTarget.select()}
        aria-describedby="new-token-how"
        data-testid="machine-token"
        spellCheck={false}
        autoComplete="off"
      />
      <p id="new-token-how" className="mt-2">
        {t("machines.tokenHow")}
      </p>
      <p className="mt-1">
        {t("machines.tokenValidUntil")} {formatDate(expiresAt, lang)}.
      </p>
    </div>
  );
}

function MachineCard({ m }: { m: Machine }) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const headingId = `machine-${m.id}`;
  return (
    <li className="card min-w-0 space-y-3" data-machine={m.id}>
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h2 id={headingId} className="min-w-0 text-lg font-semibold break-words">
          {m.name}
        </h2>
        <span className={m.disabledAt ? "text-sm font-medium text-red-800" : "text-sm font-medium text-emerald-800"}>
          {m.disabledAt ? t("machines.disabled") : t("machines.active")}
        </span>
      </div>
      <dl className="grid gap-x-4 gap-y-1 text-sm sm:grid-cols-[max-content_1fr]">
        <dt className="text-slate-600">{t("machines.aeTitle")}</dt>
        <dd className="font-mono break-all">{m.aeTitle ?? "—"}</dd>
        <dt className="text-slate-600">{t("machines.scopes")}</dt>
        <dd>{(m.scopes ?? []).map((s) => (MACHINE_SCOPES as readonly string[]).includes(s) ? t(`machines.scopeShort.${s as "store" | "query"}`) : s).join(", ") || "—"}</dd>
        <dt className="text-slate-600">{t("machines.dimse")}</dt>
        <dd>{t(`machines.dimse.${m.dimse ?? "none"}`)}</dd>
        <dt className="text-slate-600">{t("machines.lastActivity")}</dt>
        <dd>{m.lastActivityAt ? formatDate(m.lastActivityAt, lang) : t("machines.never")}</dd>
      </dl>
      <section aria-labelledby={`${headingId}-tokens`}>
        <h3 id={`${headingId}-tokens`} className="text-sm font-semibold">
          {t("machines.tokens")}
        </h3>
        {m.tokens.length === 0 ? <p className="mt-1 text-sm text-slate-600">{t("machines.noTokens")}</p> : null}
        <ul className="mt-1 divide-y divide-slate-100 text-sm" data-testid="machine-tokens">
          {m.tokens.map((tok) => (
            <li key={tok.id} className="flex flex-wrap items-center justify-between gap-2 py-2">
              <span className="min-w-0">
                {t("machines.tokenIssued")} {formatDate(tok.createdAt, lang)} ·{" "}
                {tok.revokedAt
                  ? `${t("machines.tokenRevoked")} ${formatDate(tok.revokedAt, lang)}`
                  : `${tok.expired ? t("machines.tokenExpired") : t("machines.tokenExpires")} ${formatDate(tok.expiresAt, lang)}`}
              </span>
              {!tok.revokedAt && !tok.expired && !m.disabledAt ? (
                <Form method="get" action={PATH}>
                  <input type="hidden" name="revoquer" value={tok.id} />
                  <input type="hidden" name="machine" value={m.id} />
                  <button type="submit" className="btn-secondary" aria-label={`${t("machines.revoke")} — ${m.name}, ${t("machines.tokenIssued")} ${formatDate(tok.createdAt, lang)}`}>
                    {t("machines.revoke")}
                  </button>
                </Form>
              ) : null}
            </li>
          ))}
        </ul>
      </section>
      <div className="flex flex-wrap gap-2" role="group" aria-label={`${t("machines.actions")} — ${m.name}`}>
        {m.disabledAt ? (
          <Form method="post" action={PATH}>
            <CsrfInput />
            <input type="hidden" name="machineId" value={m.id} />
            <button type="submit" name="intent" value="enable" className="btn-secondary">
              {t("machines.enable")}
            </button>
          </Form>
        ) : (
          <>
            <Form method="post" action={PATH}>
              <CsrfInput />
              <input type="hidden" name="machineId" value={m.id} />
              <button type="submit" name="intent" value="token" className="btn-secondary">
                {t("machines.newToken")}
              </button>
            </Form>
            <Form method="get" action={PATH}>
              <input type="hidden" name="desactiver" value={m.id} />
              <button type="submit" className="btn-secondary">
                {t("machines.disable")}
              </button>
            </Form>
          </>
        )}
      </div>
    </li>
  );
}

export default function Machines() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { machines } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const [params] = useSearchParams();
  const errors: Record<string, string | undefined> = result?.kind === "invalid" ? result.errors : {};
  // The confirmation steps (shown from the URL, so that they work without JavaScript; hidden once something was done).
  const toDisable = result ? null : machines.find((m) => m.id === params.get("desactiver") && !m.disabledAt);
  const owner = result ? null : machines.find((m) => m.id === params.get("machine"));
  const toRevoke = owner?.tokens.find((tok) => tok.id === params.get("revoquer") && !tok.revokedAt);
  const done: Partial<Record<string, string>> = {
    revoked: t("machines.revoked"),
    disabled: t("machines.disabledDone"),
    enabled: t("machines.enabledDone"),
  };
  const failure =
    result?.kind === "failed"
      ? result.code === "machine_disabled"
        ? t("machines.isDisabled")
        : t("machines.notFound")
      : null;
  return (
    <div className="space-y-6">
      <h1 className="text-2xl font-bold">{t("machines.title")}</h1>
      <p className="max-w-3xl text-sm text-slate-700">{t("machines.intro")}</p>
      {/* A new token first, where the page opens (without JavaScript the answer is a new page, read from the top). */}
      {result?.kind === "created" ? <Alert kind="success">{t("machines.created")}</Alert> : null}
      {result?.kind === "token" || result?.kind === "created" ? <NewToken name={result.name} token={result.token} expiresAt={result.expiresAt} /> : null}
      {result && done[result.kind] ? <Alert kind="success">{done[result.kind]}</Alert> : null}
      {failure ? <Alert kind="error">{failure}</Alert> : null}
      {toDisable ? (
        <ConfirmStep
          testId="machine-confirm"
          title={`${t("machines.disableTitle")} ${toDisable.name} ?`}
          action={PATH}
          fields={{ intent: "disable", machineId: toDisable.id }}
          confirmLabel={t("machines.disableConfirm")}
          cancelTo={PATH}
        >
          <p>{t("machines.disableConsequences")}</p>
        </ConfirmStep>
      ) : null}
      {owner && toRevoke ? (
        <ConfirmStep
          testId="machine-confirm"
          title={`${t("machines.revokeTitle")} ${owner.name} (${t("machines.tokenIssued")} ${formatDate(toRevoke.createdAt, lang)}) ?`}
          action={PATH}
          fields={{ intent: "revoke", machineId: owner.id, tokenId: toRevoke.id }}
          confirmLabel={t("machines.revokeConfirm")}
          cancelTo={PATH}
        >
          <p>{t("machines.revokeConsequences")}</p>
        </ConfirmStep>
      ) : null}
      {machines.length === 0 ? (
        <p className="text-slate-600">{t("machines.empty")}</p>
      ) : (
        <ul className="grid gap-4 lg:grid-cols-2" aria-label={t("machines.title")}>
          {machines.map((m) => (
            <MachineCard key={m.id} m={m} />
          ))}
        </ul>
      )}

      <section className="card max-w-xl" aria-labelledby="create-title">
        <h2 id="create-title" className="text-lg font-semibold">
          {t("machines.create")}
        </h2>
        {Object.keys(errors).length > 0 ? (
          <div className="mt-3">
            <Alert kind="error">{t("form.errors")}</Alert>
          </div>
        ) : null}
        {/* Emptied once an account is created (with JavaScript the form would otherwise keep what was typed). */}
        <Form key={result?.kind === "created" ? result.id : "new"} method="post" action={PATH} className="mt-4 space-y-4" noValidate>
          <CsrfInput />
          <Field label={t("machines.name")} name="name" required maxLength={200} autoComplete="off" hint={t("machines.nameHint")} error={errors.name} />
          <Field label={t("machines.aeTitle")} name="aeTitle" maxLength={16} autoComplete="off" spellCheck={false} hint={t("machines.aeTitleHint")} error={errors.aeTitle} />
          <fieldset aria-describedby={errors.scopes ? "field-scopes-error" : undefined}>
            <legend className="text-sm font-medium text-slate-800">{t("machines.scopes")}</legend>
            {MACHINE_SCOPES.map((scope) => (
              <label key={scope} className="mt-2 flex items-start gap-2 text-sm">
                <input type="checkbox" name="scopes" value={scope} defaultChecked={scope === "store"} className="mt-1" />
                <span>{t(`machines.scope.${scope}`)}</span>
              </label>
            ))}
            {errors.scopes ? (
              <p id="field-scopes-error" className="mt-1 text-sm text-red-700">
                {fieldMessage(errors.scopes, lang)}
              </p>
            ) : null}
          </fieldset>
          <button type="submit" name="intent" value="create" className="btn" disabled={busy}>
            {t("machines.create")}
          </button>
        </Form>
      </section>
    </div>
  );
}
