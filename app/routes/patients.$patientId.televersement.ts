import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { CSRF_FIELD, CsrfError, verifyCsrf } from "../accounts/csrf.server";
import { HttpError, pageContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { vault } from "../vault/instance.server";
import { missingFile } from "../vault/serve.server";
import { receiveUploads } from "../vault/upload.server";
import { collectUploadField, examAdmission, type UploadFields } from "../exams/exams.server";
import type { IdentityField } from "../exams/identity.server";

/**
 * The browser's upload (multipart, several files). The CSRF field precedes the files and is checked before any
 * file is read. With `Accept: application/json` (the progress-bar path) the answer is JSON per file; a plain form
 * post is redirected back to the patient page with a summary.
 */
export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const wantsJson = (args.request.headers.get("Accept") ?? "").includes("application/json");
  const back = `/patients/${patientId}`;
  const overrides: { fields: IdentityField[]; reason: string }[] = [];
  try {
    const outcomes = await perform(
      ctx,
      "image.upload",
      { type: "patient", id: patientId },
      async () => {
        let csrfChecked = false;
        const fields: UploadFields = {};
        // A doctor may file a DICOM despite an identity mismatch with a typed reason; it goes into the audit event.
        const admit = examAdmission({
          patientId,
          actor: ctx.actor!,
          fields,
          allowOverride: true,
          onOverride: (fields, reason) => overrides.push({ fields, reason }),
        });
        const outcomes = await receiveUploads(args.request, {
          onField: async (name, value) => {
            if (collectUploadField(fields, name, value)) return;
            if (name !== CSRF_FIELD) return;
            await verifyCsrf(args.request, value);
            csrfChecked = true;
          },
          store: (file) => {
            if (!csrfChecked) throw new CsrfError();
            return vault.storeImage({ patientId, uploadedBy: ctx.actor!.id, ...file, admit, timing: ctx.info.timing });
          },
          discard: (ids) => vault.discardImages(ids),
        });
        if (!csrfChecked) throw new CsrfError();
        if (outcomes.length === 0) throw missingFile();
        // Nothing stored and a file refused as a denial (another woman's DICOM): the request is audited as denied.
        const denial = outcomes.find((o) => !o.ok && o.error.denial);
        if (denial && !denial.ok && outcomes.every((o) => !o.ok)) throw denial.error;
        return outcomes;
      },
      {
        describe: (o) => ({
          resourceType: "image",
          resourceId: o.filter((x) => x.ok).map((x) => x.ok && x.image.id).join(","),
          reason: overrides.length
            ? overrides.map((x) => `identity override (${x.fields.join(", ")}): ${x.reason}`).join(" | ")
            : null,
        }),
      },
    );
    const results = outcomes.map((o) =>
      o.ok ? { fileName: o.fileName, ok: true, id: o.image.id } : { fileName: o.fileName, ok: false, error: o.error.message, code: o.error.code },
    );
    if (wantsJson) return Response.json({ results }, { status: results.every((r) => r.ok) ? 201 : 200 });
    const refused = results.flatMap((r) => ("code" in r && r.code ? [r.code] : []));
    const query = new URLSearchParams({ envoyes: String(results.filter((r) => r.ok).length) });
    if (refused.length) query.set("refus", refused.join(","));
    const mismatch = outcomes.find((o) => !o.ok && o.error.code === "identity_mismatch");
    if (mismatch && !mismatch.ok) query.set("champs", mismatch.error.fields?.identity ?? "");
    return redirect(`${back}?${query}`, 303);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    const headers = err.headers ?? {};
    if (wantsJson) return Response.json({ error: { code: err.code, message: err.message } }, { status: err.status, headers });
    if (err.status === 403 || err.status >= 500) throw new Response(err.message, { status: err.status, headers });
    const query = new URLSearchParams({ envoyes: "0", refus: err.code });
    if (err.code === "identity_mismatch") query.set("champs", err.fields?.identity ?? "");
    else if (err.status === 400 || err.status === 404) query.set("detail", err.message.slice(0, 300));
    return redirect(`${back}?${query}`, { status: 303, headers });
  }
}

export function loader() {
  return redirect("/");
}
