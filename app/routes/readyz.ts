import { connection } from "../db/db.server";

/** Readiness: the database answers (object storage joins with the vault). 503 otherwise. */
export async function loader() {
  const checks: Record<string, "ok" | "down"> = {};
  try {
    await connection.ping();
    checks.database = "ok";
  } catch {
    checks.database = "down";
  }
  const ready = Object.values(checks).every((v) => v === "ok");
  return Response.json({ status: ready ? "ready" : "unavailable", checks }, { status: ready ? 200 : 503, headers: { "Cache-Control": "no-store" } });
}
