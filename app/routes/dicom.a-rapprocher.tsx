import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useRouteLoaderData, useSearchParams } from "@remix-run/react";
import { z } from "zod";
import { attachEntry, listInbox, rejectEntry } from "../dicomweb/inbox.server";
import { IDENTITY_FIELDS, normaliseDate, type IdentityField } from "../exams/identity.server";
import { HttpError, pageContext, perform, readMutation } from "../http/context.server";
import { readIntent } from "../http/intent.server";
import { fieldMessage } from "../i18n/fields";
import { listPatients } from "../patients/patients.server";
import { authorize, listScope } from "../policy/policy.server";
import type { loader as rootLoader } from "../root";
import { formatBirthDate, formatDate, formatDicomDate } from "../ui/format";
import { Alert, CsrfInput } from "../ui/forms";
import { ConfirmStep } from "../ui/confirm";
import { pageTitle } from "../ui/meta";
import { useT } from "../ui/shell";
import { ScrollRegion } from "../ui/table";

export const meta = pageTitle("inbox.title");

const PATH = "/dicom/a-rapprocher";
const SHOWN_CANDIDATES = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The queue (reading it decrypts each header's identity: the one audited `inbox.list`), and, for the entry being
 * attached, the doctor's care-team patients to choose from (a search, audited as `patient.list`; without a search,
 * those born on the header's birth date).
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const url = new URL(args.request.url);
  const entries = await perform(ctx, "inbox.list", { type: "inbox" }, () => listInbox());
  const selected = entries.find((e) => e.id === url.searchParams.get("entree")) ?? null;
  let candidates = null;
  if (selected) {
    const q = (url.searchParams.get("q") ?? "").trim().slice(0, 100);
    const birthDate = normaliseDate(selected.identity.patientBirthDate);
    const found = await perform(ctx, "patient.list", { type: "patient" }, () =>
      listPatients(listScope(ctx.actor!, "patient.list"), { q: q || birthDate || undefined, limit: SHOWN_CANDIDATES }),
    );
    candidates = {
      q,
      suggested: !q && Boolean(birthDate),
      more: found.nextCursor !== null,
      patients: found.patients.map((p) => ({ id: p.id, displayName: p.displayName, ipp: p.ipp, ins: p.ins, birthDate: p.birthDate, sex: p.sex })),
    };
  }
  const attached = url.searchParams.get("rattachee");
  return {
    entries,
    selected: selected?.id ?? null,
    candidates,
    attachedImage: attached && UUID.test(attached) ? attached : null,
    rejected: url.searchParams.has("rejetee"),
  };
}

const inboxIntent = z.discriminatedUnion("intent", [
  z.object({
    intent: z.literal("attach"),
    entryId: z.uuid(),
    patientId: z.uuid(),
    /** Present once the page offered the override (after a mismatch); the domain decides whether it suffices. */
    identityOverride: z.string().max(500).optional(),
    /** The fields of the mismatch being overridden, to show them again if the reason is refused (display only). */
    mismatch: z.string().max(200).optional(),
  }),
  z.object({ intent: z.literal("reject"), entryId: z.uuid(), confirm: z.literal("1").optional() }),
]);

type Result =
  | { kind: "mismatch"; entryId: string; patientId: string; fields: IdentityField[]; reasonError: string | null }
  | { kind: "gone" | "patientGone" };

const identityFields = (list: string | undefined): IdentityField[] =>
  (list ?? "").split(",").filter((f): f is IdentityField => (IDENTITY_FIELDS as readonly string[]).includes(f));

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const intent = await readIntent(ctx, inboxIntent);
  await readMutation(ctx, "inbox.resolve");
  try {
    if (intent.intent === "reject") {
      const resource = { type: "inbox", id: intent.entryId } as const;
      // Rejecting destroys the instance: without the confirmation step's field, show that step (works without
      // JavaScript; only to whoever may reject — anyone else goes on to perform(), which refuses and audits it).
      if (intent.confirm !== "1" && (await authorize(ctx.actor, "inbox.resolve", resource)).allowed) {
        return redirect(`${PATH}?rejeter=${intent.entryId}#confirmation`, 303);
      }
      await perform(ctx, "inbox.resolve", resource, () => rejectEntry(intent.entryId, ctx.actor!.id));
      return redirect(`${PATH}?rejetee=1`, 303);
    }
    // Attaching files the instance for that patient: the care-team rule applies to her, then the upload path runs
    // (identity check, vault, exam) — the same domain call as POST /api/v1/dicom-inbox/:id, plus the browser's override.
    const overrides: { fields: IdentityField[]; reason: string }[] = [];
    const override =
      intent.identityOverride === undefined ? undefined : { reason: intent.identityOverride, onOverride: (fields: IdentityField[], reason: string) => void overrides.push({ fields, reason }) };
    const { imageId } = await perform(
      ctx,
      "inbox.resolve",
      { type: "patient", id: intent.patientId },
      () => attachEntry(intent.entryId, intent.patientId, ctx.actor!, override),
      {
        describe: (r) => ({
          resourceType: "image",
          resourceId: r.imageId,
          reason: overrides.length ? overrides.map((x) => `identity override (${x.fields.join(", ")}): ${x.reason}`).join(" | ") : null,
        }),
      },
    );
    return redirect(`${PATH}?rattachee=${imageId}`, 303);
  } catch (err) {
    if (!(err instanceof HttpError) || err.status === 401 || err.status === 403 || err.status >= 500) throw err;
    if (err.code === "not_found") return data<Result>({ kind: "gone" }, { status: 404 });
    if (err.code === "patient_not_found") return data<Result>({ kind: "patientGone" }, { status: 404 });
    if (intent.intent === "attach" && (err.code === "identity_mismatch" || err.fields?.identityOverride)) {
      const mismatch: Result = {
        kind: "mismatch",
        entryId: intent.entryId,
        patientId: intent.patientId,
        fields: identityFields(err.fields?.identity ?? intent.mismatch),
        // A reason was sent and refused: too short (the domain's message), or empty (the mismatch stands).
        reasonError: err.fields?.identityOverride ?? (intent.identityOverride !== undefined ? "field.required" : null),
      };
      return data<Result>(mismatch, { status: err.status });
    }
    throw err;
  }
}

type Entry = Awaited<ReturnType<typeof loader>>["entries"][number];
type Candidates = NonNullable<Awaited<ReturnType<typeof loader>>["candidates"]>;
type Candidate = Candidates["patients"][number];

/** A DICOM person name (`FAMILY^Given^Middle^^`) in words. */
const personName = (value: string | undefined) => (value ?? "").split("=", 1)[0]!.replace(/\^+/g, " ").trim() || "—";

function useSex() {
  const t = useT();
  return (value: string | null | undefined) => {
    const v = (value ?? "").trim().toUpperCase();
    return v === "F" || v === "M" ? t(`identity.sex.${v}`) : v || "—";
  };
}

/** The header's value of an identity field, and the record's. */
function fieldValues(field: IdentityField, entry: Entry, patient: Candidate | undefined, lang: "fr" | "en", sex: (v: string | null | undefined) => string) {
  const id = entry.identity;
  switch (field) {
    case "PatientID":
      return [id.patientId ?? "—", patient ? [patient.ipp, patient.ins].filter(Boolean).join(" / ") || "—" : "—"];
    case "PatientName":
      return [personName(id.patientName), patient?.displayName ?? "—"];
    case "PatientBirthDate":
      // Both in words, the same way (the record's date is YYYY-MM-DD, the header's a DICOM DA).
      return [formatDicomDate(id.patientBirthDate, lang), patient?.birthDate ? formatDicomDate(patient.birthDate.replace(/-/g, ""), lang) : "—"];
    case "PatientSex":
      return [sex(id.patientSex), patient ? sex(patient.sex) : "—"];
  }
}

/** The identity mismatch: which fields differ (header against record), and the override with a reason. */
function Mismatch({ entry, result, patient, back }: { entry: Entry; result: Extract<Result, { kind: "mismatch" }>; patient: Candidate | undefined; back: string }) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const sex = useSex();
  const reasonError = fieldMessage(result.reasonError, lang);
  const inputId = `override-${entry.id}`;
  return (
    <div id="discordance" className="space-y-3 rounded-md bg-amber-50 p-4 text-sm ring-1 ring-amber-200" data-testid="identity-mismatch">
      <p role="alert" className="font-medium text-amber-950">
        {t("inbox.mismatch")}
      </p>
      <ScrollRegion label={t("inbox.mismatch")}>
        <table className="min-w-full text-left">
          <thead>
            <tr>
              <th scope="col" className="py-1 pr-4 font-medium">{t("inbox.field")}</th>
              <th scope="col" className="py-1 pr-4 font-medium">{t("inbox.inHeader")}</th>
              <th scope="col" className="py-1 font-medium">{t("inbox.inRecord")}</th>
            </tr>
          </thead>
          <tbody>
            {result.fields.map((field) => {
              const [header, record] = fieldValues(field, entry, patient, lang, sex);
              return (
                <tr key={field} data-field={field}>
                  <th scope="row" className="py-1 pr-4 font-normal">{t(`inbox.field.${field}`)}</th>
                  <td className="py-1 pr-4 break-words">{header}</td>
                  <td className="py-1 break-words">{record}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </ScrollRegion>
      <Form method="post" action={back} className="space-y-2">
        <CsrfInput />
        <input type="hidden" name="entryId" value={entry.id} />
        <input type="hidden" name="patientId" value={result.patientId} />
        <input type="hidden" name="mismatch" value={result.fields.join(",")} />
        <h4 className="font-semibold text-amber-950">{t("inbox.overrideTitle")}</h4>
        <label htmlFor={inputId} className="block text-slate-800">
          {t("inbox.overrideReason")}
        </label>
        <input
          id={inputId}
          name="identityOverride"
          maxLength={500}
          required
          className="input"
          autoComplete="off"
          aria-invalid={reasonError ? true : undefined}
          aria-describedby={`${inputId}-hint${reasonError ? ` ${inputId}-error` : ""}`}
        />
        <p id={`${inputId}-hint`} className="text-xs text-slate-700">
          {t("inbox.overrideHint")}
        </p>
        {reasonError ? (
          <p id={`${inputId}-error`} className="text-red-700">
            {reasonError}
          </p>
        ) : null}
        <button type="submit" name="intent" value="attach" className="btn bg-amber-800 hover:bg-amber-900">
          {t("inbox.overrideSubmit")}
        </button>
      </Form>
    </div>
  );
}

/** Choosing the patient: a search (GET) among the care team, then one button per patient (POST). */
function AttachPanel({ entry, candidates, result }: { entry: Entry; candidates: Candidates; result: Result | undefined }) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const back = `${PATH}?${new URLSearchParams({ entree: entry.id, ...(candidates.q ? { q: candidates.q } : {}) })}`;
  const mismatch = result?.kind === "mismatch" && result.entryId === entry.id ? result : null;
  const searchId = `search-${entry.id}`;
  return (
    <section id="rapprocher" className="space-y-3 border-t border-slate-200 pt-3" aria-labelledby={`attach-${entry.id}`}>
      <h3 id={`attach-${entry.id}`} className="font-semibold">
        {t("inbox.attachTitle")}
      </h3>
      {mismatch ? <Mismatch entry={entry} result={mismatch} patient={candidates.patients.find((p) => p.id === mismatch.patientId)} back={back} /> : null}
      <Form method="get" action={`${PATH}#rapprocher`} role="search" className="flex flex-wrap items-end gap-2">
        <input type="hidden" name="entree" value={entry.id} />
        <div className="flex min-w-0 flex-1 flex-col gap-1 text-sm">
          <label htmlFor={searchId} className="font-medium">
            {t("inbox.search")}
          </label>
          <input id={searchId} type="search" name="q" defaultValue={candidates.q} maxLength={100} className="input w-full" />
        </div>
        <button type="submit" className="btn-secondary">
          {t("inbox.searchButton")}
        </button>
      </Form>
      {candidates.patients.length === 0 ? (
        <p className="text-sm text-slate-700">{t("inbox.noMatch")}</p>
      ) : (
        <>
          <p className="text-sm text-slate-700">{candidates.suggested ? t("inbox.suggested") : t("inbox.results")}</p>
          <ul className="divide-y divide-slate-100 text-sm" data-testid="inbox-candidates">
            {candidates.patients.map((p) => (
              <li key={p.id} className="flex flex-wrap items-center justify-between gap-2 py-2">
                <span className="min-w-0 break-words">
                  <strong>{p.displayName}</strong> · {formatBirthDate(p.birthDate, lang)} · {t("identity.ipp")} {p.ipp ?? "—"}
                </span>
                <Form method="post" action={back}>
                  <CsrfInput />
                  <input type="hidden" name="entryId" value={entry.id} />
                  <input type="hidden" name="patientId" value={p.id} />
                  <button type="submit" name="intent" value="attach" className="btn-secondary max-w-full text-left">
                    {t("inbox.attachTo")} {p.displayName}
                  </button>
                </Form>
              </li>
            ))}
          </ul>
          {candidates.more ? <p className="text-xs text-slate-600">{t("inbox.more")}</p> : null}
        </>
      )}
    </section>
  );
}

function EntryCard({ entry, candidates, result, open }: { entry: Entry; candidates: Candidates | null; result: Result | undefined; open: boolean }) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const sex = useSex();
  const id = entry.identity;
  const title = `${t("inbox.entry")} ${formatDate(entry.receivedAt, lang)}`;
  const who = personName(id.patientName);
  const facts: [string, string][] = [
    [t("inbox.patientId"), id.patientId ?? "—"],
    [t("inbox.patientName"), who],
    [t("inbox.birthDate"), formatDicomDate(id.patientBirthDate, lang)],
    [t("inbox.sex"), sex(id.patientSex)],
    [t("dicom.studyDate"), formatDicomDate(entry.studyDate, lang)],
    [t("dicom.modality"), entry.modality ?? "—"],
    [t("inbox.source"), `${entry.source === "dimse" ? t("inbox.source.dimse") : t("inbox.source.stow")}${entry.callingAe ? ` · ${t("inbox.callingAe")} ${entry.callingAe}` : ""}`],
    [t("inbox.study"), entry.studyInstanceUid ?? "—"],
  ];
  return (
    <li className="card min-w-0 space-y-3" data-entry={entry.id}>
      <h2 id={`entry-${entry.id}`} className="text-lg font-semibold">
        {title}
      </h2>
      <p className="text-xs text-slate-600">{t("inbox.header")}</p>
      <dl className="grid gap-x-4 gap-y-1 text-sm sm:grid-cols-[max-content_1fr]">
        {facts.map(([label, value]) => (
          <div key={label} className="contents">
            <dt className="text-slate-600">{label}</dt>
            <dd className="min-w-0 break-all">{value}</dd>
          </div>
        ))}
      </dl>
      <div className="flex flex-wrap gap-2">
        {open ? null : (
          <Link to={`${PATH}?entree=${entry.id}#rapprocher`} className="btn" aria-label={`${t("inbox.attach")} — ${who}, ${title}`}>
            {t("inbox.attach")}
          </Link>
        )}
        <Form method="get" action={`${PATH}#confirmation`}>
          <input type="hidden" name="rejeter" value={entry.id} />
          <button type="submit" className="btn-secondary" aria-label={`${t("inbox.reject")} — ${who}, ${title}`}>
            {t("inbox.reject")}
          </button>
        </Form>
      </div>
      {open && candidates ? <AttachPanel entry={entry} candidates={candidates} result={result} /> : null}
    </li>
  );
}

export default function Reconciliation() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { entries, selected, candidates, attachedImage, rejected } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const [params] = useSearchParams();
  const toReject = result ? null : entries.find((e) => e.id === params.get("rejeter"));
  return (
    <div className="space-y-6">
      <h1 className="text-2xl font-bold">{t("inbox.title")}</h1>
      <p className="max-w-3xl text-sm text-slate-700">{t("inbox.intro")}</p>
      {attachedImage ? (
        <Alert kind="success">
          {t("inbox.attached")}{" "}
          <Link to={`/images/${attachedImage}`} className="underline">
            {t("inbox.openImage")}
          </Link>
        </Alert>
      ) : null}
      {rejected ? <Alert kind="success">{t("inbox.rejected")}</Alert> : null}
      {result?.kind === "gone" ? <Alert kind="error">{t("inbox.gone")}</Alert> : null}
      {result?.kind === "patientGone" ? <Alert kind="error">{t("inbox.patientGone")}</Alert> : null}
      {toReject ? (
        <ConfirmStep
          testId="reject-confirm"
          title={`${t("inbox.rejectTitle")} (${personName(toReject.identity.patientName)}, ${formatDate(toReject.receivedAt, lang)})`}
          action={PATH}
          fields={{ intent: "reject", entryId: toReject.id }}
          confirmLabel={t("inbox.rejectConfirm")}
          cancelTo={PATH}
        >
          <p>{t("inbox.rejectConsequences")}</p>
        </ConfirmStep>
      ) : null}
      {entries.length === 0 ? (
        <p className="text-slate-600">{t("inbox.empty")}</p>
      ) : (
        <ol className="space-y-4" aria-label={t("inbox.title")}>
          {entries.map((e) => (
            <EntryCard key={e.id} entry={e} candidates={e.id === selected ? candidates : null} result={result} open={e.id === selected} />
          ))}
        </ol>
      )}
    </div>
  );
}
