import type { LoaderFunctionArgs } from "@remix-run/node";
import { apiContext, perform } from "../http/context.server";
import { secondReadingWorklist } from "../reading/readings.server";
import { worklistJson } from "../reading/worklist-json";

/** GET /api/v1/worklists/second-reading — exams awaiting L2 (or arbitration) the caller has not read; no reading, no AI. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const list = await perform(ctx, "worklist.read", { type: "app" }, () => secondReadingWorklist(ctx.actor!.id));
  return Response.json(worklistJson(list));
}
