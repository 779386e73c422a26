import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { invalid, methodNotAllowed, readJson } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { parseWith } from "../http/validation.server";
import { createPatient, identityOf, listPatients, newPatientSchema, patientListQuerySchema } from "../patients/patients.server";
import { listScope } from "../policy/policy.server";

/**
 * GET /api/v1/patients[?q=&cursor=&limit=] — a doctor's care team; the directory for admins (identity only, no
 * medical data), newest first. `q` searches by name, IPP, INS or birth date; `limit` (1–500, 500 by default) patients
 * at a time, `nextCursor` (null on the last page) given back as `cursor` for the next ones.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const params = Object.fromEntries(new URL(args.request.url).searchParams);
  const page = await perform(ctx, "patient.list", { type: "patient" }, async () => {
    const parsed = parseWith(patientListQuerySchema, params);
    if (!parsed.ok) throw invalid(parsed.errors);
    return listPatients(listScope(ctx.actor!, "patient.list"), parsed.data);
  });
  return Response.json({ patients: page.patients.map(identityOf), nextCursor: page.nextCursor });
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
