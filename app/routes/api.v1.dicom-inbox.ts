import type { LoaderFunctionArgs } from "@remix-run/node";
import { listInbox } from "../dicomweb/inbox.server";
import { apiContext, perform } from "../http/context.server";

/** GET /api/v1/dicom-inbox — DICOM instances held for an unknown patient, with their header's identity (doctors). */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const entries = await perform(ctx, "inbox.list", { type: "inbox" }, () => listInbox());
  return Response.json({ entries });
}
