import type { ActionFunctionArgs } from "@remix-run/node";
import { config } from "../config.server";
import { methodNotAllowed, readJson } from "../http/api.server";
import { apiContext, apiError, perform } from "../http/context.server";
import { idParam } from "../http/params.server";
import { parseReading } from "../reading/reading-schema";
import { examRef, recordReading } from "../reading/readings.server";

/**
 * POST /api/v1/exams/:examId/readings — a first reading, work-up conclusion, second reading or arbitration (the
 * exam's state decides which). 400 with field errors, 409 same_reader / wrong_state / not_first_reader.
 */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("POST");
  const ctx = await apiContext(args);
  const examId = idParam(ctx, args.params.examId);
  const exam = await examRef(examId);
  const recorded = await perform(
    ctx,
    "reading.create",
    { type: "exam", id: examId, patientId: exam?.patientId },
    async () => {
      const parsed = parseReading(await readJson(args.request));
      if (!parsed.ok) {
        const message = Object.entries(parsed.errors).map(([k, v]) => `${k}: ${v}`).join("; ");
        throw Response.json({ error: { code: "invalid", message, fields: parsed.errors } }, { status: 400 });
      }
      return recordReading(examId, ctx.actor!, parsed.data, config.READING_DISAGREEMENT);
    },
    { describe: (r) => ({ resourceType: "reading", resourceId: r.id }) },
  );
  return Response.json(recorded, { status: 201 });
}

export function loader() {
  return apiError(405, "method_not_allowed", "Méthode non autorisée (autorisées : POST).", { Allow: "POST" });
}
