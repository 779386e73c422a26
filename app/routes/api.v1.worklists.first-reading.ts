import type { LoaderFunctionArgs } from "@remix-run/node";
import { apiContext, perform } from "../http/context.server";
import { firstReadingWorklist } from "../reading/readings.server";
import { worklistJson } from "../reading/worklist-json";

/** GET /api/v1/worklists/first-reading — exams of the caller's care teams awaiting L1 (and her work-ups), oldest first. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const list = await perform(ctx, "worklist.read", { type: "app" }, () => firstReadingWorklist(ctx.actor!.id));
  return Response.json(worklistJson(list));
}
