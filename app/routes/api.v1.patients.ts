import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { invalid, methodNotAllowed, readJson } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { parseWith } from "../http/validation.server";
import { createPatient, identityOf, listPatients, newPatientSchema } from "../patients/patients.server";
import { listScope } from "../policy/policy.server";

/**
 * GET /api/v1/patients[?q=] — a doctor's care team; the directory for admins (identity only, no medical data).
 * `q` searches by name, IPP, INS or birth date.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const q = new URL(args.request.url).searchParams.get("q") ?? undefined;
  const patients = await perform(ctx, "patient.list", { type: "patient" }, () => listPatients(listScope(ctx.actor!, "patient.list"), q));
  return Response.json({ patients: patients.map(identityOf) });
}

/** POST /api/v1/patients — a doctor creates a patient (optionally with an account and intake consents). */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("GET, POST");
  const ctx = await apiContext(args);
  const created = await perform(
    ctx,
    "patient.create",
    { type: "patient" },
    async () => {
      const parsed = parseWith(newPatientSchema, await readJson(args.request));
      if (!parsed.ok) throw invalid(parsed.errors);
      return createPatient(ctx.actor!, parsed.data);
    },
    { describe: (r) => ({ resourceId: r.id, patientId: r.id }) },
  );
  return Response.json(created, { status: 201 });
}
