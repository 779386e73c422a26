import type { LoaderFunctionArgs } from "@remix-run/node";
import { forCareTeam, forPatient, listExams } from "../exams/exams.server";
import { methodNotAllowed } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { authorize } from "../policy/policy.server";

/**
 * GET /api/v1/patients/:patientId/exams — `{exams:[{id, date, status, views, result?}]}`. The care team gets each
 * view's image id and the completeness; the patient gets her exams' status and views only: no AI field at all.
 */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const patientId = idParam(ctx, args.params.patientId);
  const resource = { type: "patient", id: patientId } as const;
  const list = await perform(ctx, "exam.list", resource, async () => {
    const careTeam = (await authorize(ctx.actor, "exam.read", { type: "exam", patientId })).allowed;
    const exams = await listExams(patientId);
    return careTeam ? exams.map(forCareTeam) : exams.map(forPatient);
  });
  return Response.json({ exams: list });
}

export function action() {
  return methodNotAllowed("GET");
}
