import { connection } from "../db/db.server";
import { vault } from "../vault/instance.server";

/** Readiness: the database and the object store answer; 503 otherwise. */
export async function loader() {
  const checks: Record<string, "ok" | "down"> = {};
  try {
    await connection.ping();
    checks.database = "ok";
  } catch {
    checks.database = "down";
  }
  try {
    await vault.store.ping();
    checks.storage = "ok";
  } catch {
    checks.storage = "down";
  }
  const ready = Object.values(checks).every((v) => v === "ok");
  return Response.json({ status: ready ? "ready" : "unavailable", checks }, { status: ready ? 200 : 503, headers: { "Cache-Control": "no-store" } });
}
