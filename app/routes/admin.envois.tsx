import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation, useRouteLoaderData } from "@remix-run/react";
import { z } from "zod";
import { HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { readIntent } from "../http/intent.server";
import type { StringKey } from "../i18n/strings";
import { listOutbox, outboxEntry, pushConfiguration, retryEntry } from "../results/outbox.server";
import type { loader as rootLoader } from "../root";
import { formatDate } from "../ui/format";
import { OUTBOX_STATUSES, type OutboxStatus } from "../vocabulary";
import { Alert, CsrfInput } from "../ui/forms";
import { pageTitle } from "../ui/meta";
import { useT } from "../ui/shell";

export const meta = pageTitle("nav.outbox");

const PATH = "/admin/envois";

type Status = OutboxStatus;
const isStatus = (value: string | null): value is Status => value !== null && (OUTBOX_STATUSES as readonly string[]).includes(value);

/**
 * The PACS push outbox for operations (admins, `outbox.list`, the API's policy): delivery state and identifiers only
 * — no patient name, no reading, no score. `?etat=` filters by status; an unknown one is a 400 with the filters.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const etat = new URL(args.request.url).searchParams.get("etat");
  try {
    const entries = await perform(ctx, "outbox.list", { type: "app" }, async () => {
      if (etat !== null && !isStatus(etat)) {
        throw new HttpError(400, "invalid", `etat : valeur inconnue (attendu : ${OUTBOX_STATUSES.join(", ")}).`);
      }
      return listOutbox(etat);
    });
    return { entries, status: etat as Status | null, invalid: false, push: pushConfiguration() };
  } catch (err) {
    if (!(err instanceof HttpError) || err.status !== 400) throw err;
    return data({ entries: [], status: null, invalid: true, push: pushConfiguration() }, { status: 400 });
  }
}

const outboxIntent = z.object({ intent: z.literal("retry"), entryId: z.uuid() });

type Result = { kind: "retried" } | { kind: "failed"; code: string };

/** intent=retry: a failed report goes back in the queue — the API's domain call, policy and audit event. */
export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const intent = await readIntent(ctx, outboxIntent);
  await readMutation(ctx, "outbox.retry");
  const entry = await outboxEntry(intent.entryId);
  try {
    await perform(
      ctx,
      "outbox.retry",
      { type: "outbox", id: intent.entryId },
      async () => {
        if (!entry) throw new HttpError(404, "not_found", "Envoi introuvable.");
        return retryEntry(intent.entryId);
      },
      { patientId: entry?.patientId ?? null },
    );
    return data<Result>({ kind: "retried" });
  } catch (err) {
    // A refusal found while running (no such entry, not failed any more) stays on the page, translated.
    if (!(err instanceof HttpError) || err.status >= 500 || err.status === 401 || err.status === 403) throw err;
    return data<Result>({ kind: "failed", code: err.code }, { status: err.status });
  }
}

type Entry = Awaited<ReturnType<typeof listOutbox>>[number];

const STATUS_STYLE: Record<string, string> = {
  pending: "bg-sky-50 text-sky-900 ring-sky-200",
  sent: "bg-emerald-50 text-emerald-900 ring-emerald-200",
  failed: "bg-red-50 text-red-900 ring-red-200",
  cancelled: "bg-slate-100 text-slate-800 ring-slate-300",
};

function statusLabel(t: ReturnType<typeof useT>, status: string): string {
  return isStatus(status) ? t(`outbox.status.${status}` as StringKey) : status;
}

function EntryCard({ e, action }: { e: Entry; action: string }) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const kind = e.kind === "reading_sr" || e.kind === "cad_sr" ? t(`outbox.kind.${e.kind}`) : e.kind;
  const headingId = `envoi-${e.id}`;
  const outcome = e.status === "sent" ? t("outbox.outcome.sent") : e.status === "cancelled" ? t("outbox.outcome.cancelled") : e.lastError;
  return (
    <li className="card min-w-0 space-y-3" data-entry={e.id} data-status={e.status}>
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h3 id={headingId} className="min-w-0 font-semibold break-words">
          {kind}
        </h3>
        <span className={`rounded-full px-2 py-0.5 text-sm font-medium ring-1 ${STATUS_STYLE[e.status] ?? STATUS_STYLE.cancelled}`}>
          {statusLabel(t, e.status)}
        </span>
      </div>
      <dl className="grid gap-x-4 gap-y-1 text-sm sm:grid-cols-[max-content_1fr]">
        <dt className="text-slate-600">{t("outbox.exam")}</dt>
        <dd className="min-w-0 font-mono break-all">{e.examId}</dd>
        <dt className="text-slate-600">{t("outbox.destination")}</dt>
        <dd className="min-w-0 font-mono break-all">{e.destination}</dd>
        <dt className="text-slate-600">{t("outbox.queuedAt")}</dt>
        <dd>{formatDate(e.createdAt, lang)}</dd>
        <dt className="text-slate-600">{t("outbox.attempts")}</dt>
        <dd>{e.attempts}</dd>
        <dt className="text-slate-600">{t("outbox.lastAttempt")}</dt>
        <dd>{e.lastAttemptAt ? formatDate(e.lastAttemptAt, lang) : t("outbox.none")}</dd>
        <dt className="text-slate-600">{t("outbox.outcome")}</dt>
        <dd className="min-w-0 break-words" data-testid="outbox-outcome">
          {outcome ?? t("outbox.none")}
        </dd>
        {e.status === "sent" && e.sentAt ? (
          <>
            <dt className="text-slate-600">{t("outbox.sentAt")}</dt>
            <dd>{formatDate(e.sentAt, lang)}</dd>
          </>
        ) : null}
        {e.status === "pending" ? (
          <>
            <dt className="text-slate-600">{t("outbox.nextAttempt")}</dt>
            <dd>{e.nextAttemptAt ? formatDate(e.nextAttemptAt, lang) : t("outbox.none")}</dd>
          </>
        ) : null}
        {e.sopInstanceUid ? (
          <>
            <dt className="text-slate-600">SOP Instance UID</dt>
            <dd className="min-w-0 font-mono break-all">{e.sopInstanceUid}</dd>
          </>
        ) : null}
      </dl>
      {e.status === "failed" ? (
        <Form method="post" action={action}>
          <CsrfInput />
          <input type="hidden" name="entryId" value={e.id} />
          <button type="submit" name="intent" value="retry" className="btn-secondary" aria-label={`${t("outbox.retry")} — ${kind}, ${t("outbox.exam")} ${e.examId}`}>
            {t("outbox.retry")}
          </button>
        </Form>
      ) : null}
    </li>
  );
}

export default function Outbox() {
  const t = useT();
  const { entries, status, invalid, push } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const here = status ? `${PATH}?etat=${status}` : PATH;
  const filters: { value: Status | null; label: string }[] = [
    { value: null, label: t("outbox.filter.all") },
    ...OUTBOX_STATUSES.map((s) => ({ value: s, label: statusLabel(t, s) })),
  ];
  return (
    <div className="space-y-6">
      <h1 className="text-2xl font-bold">{t("outbox.title")}</h1>
      <p className="max-w-3xl text-sm text-slate-700">{t("outbox.intro")}</p>
      {push ? (
        <Alert kind="info">
          <span data-testid="pacs-push">
            {t("outbox.configured")} <span className="font-mono break-all">{push.destination}</span> ({t("outbox.callingAe")}{" "}
            <span className="font-mono">{push.callingAe}</span>)
          </span>
        </Alert>
      ) : (
        <Alert kind="info">
          <span data-testid="pacs-push-unset" className="break-words">
            {t("outbox.notConfigured")}
          </span>
        </Alert>
      )}
      {result?.kind === "retried" ? <Alert kind="success">{t("outbox.retried")}</Alert> : null}
      {result?.kind === "failed" ? <Alert kind="error">{result.code === "wrong_state" ? t("outbox.wrongState") : t("outbox.notFound")}</Alert> : null}
      <nav aria-label={t("outbox.filter")}>
        <ul className="flex flex-wrap gap-2 text-sm">
          {filters.map((f) => {
            const current = f.value === status && !invalid;
            return (
              <li key={f.value ?? "all"}>
                <Link
                  to={f.value ? `${PATH}?etat=${f.value}` : PATH}
                  aria-current={current ? "page" : undefined}
                  className={
                    current
                      ? "inline-block rounded-full bg-brand-700 px-3 py-1 font-semibold text-white"
                      : "inline-block rounded-full px-3 py-1 text-brand-700 underline ring-1 ring-slate-300 hover:bg-slate-50"
                  }
                >
                  {f.label}
                </Link>
              </li>
            );
          })}
        </ul>
      </nav>
      {invalid ? <Alert kind="error">{t("outbox.invalidFilter")}</Alert> : null}
      <section aria-labelledby="outbox-list" aria-busy={busy || undefined}>
        <h2 id="outbox-list" className="text-lg font-semibold">
          {t("outbox.list")}
          {status ? ` — ${statusLabel(t, status)}` : ""} ({entries.length})
        </h2>
        {entries.length === 0 && !invalid ? <p className="mt-2 text-slate-600">{status ? t("outbox.emptyFiltered") : t("outbox.empty")}</p> : null}
        {entries.length > 0 ? (
          <ul className="mt-3 grid gap-4 lg:grid-cols-2" aria-labelledby="outbox-list">
            {entries.map((e) => (
              <EntryCard key={e.id} e={e} action={here} />
            ))}
          </ul>
        ) : null}
      </section>
    </div>
  );
}
