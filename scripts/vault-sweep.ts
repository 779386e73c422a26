/**
 * npm run vault:sweep [-- --dry-run] [--grace-seconds 10]
 * Lists objects in the store that no live image row points to (an upload whose row failed after a crash, an
 * erasure whose object deletion failed) and removes them. A candidate is removed only if it is still an orphan
 * after the grace period, so an upload that is completing right now is never touched.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { record } from "../app/audit/audit.server";
import { connection } from "../app/db/db.server";
import { vault } from "../app/vault/instance.server";

const { values } = parseArgs({
  options: { "dry-run": { type: "boolean", default: false }, "grace-seconds": { type: "string", default: "10" } },
});

try {
  const first = await vault.findOrphans();
  console.log(`${first.length} orphan object(s) found in ${vault.store.location}.`);
  if (first.length > 0) {
    await sleep(Number(values["grace-seconds"]) * 1000);
    const still = new Set(await vault.findOrphans());
    const confirmed = first.filter((k) => still.has(k));
    for (const key of confirmed) console.log(`  ${key}`);
    if (values["dry-run"]) {
      console.log("Dry run: nothing removed.");
    } else {
      const removed = await vault.removeOrphans(confirmed);
      console.log(`Removed ${removed} orphan object(s).`);
      await record({
        actor: null,
        action: "vault.sweep",
        outcome: "allowed",
        reason: `removed ${removed} orphan object(s)`,
        info: { requestId: null, ip: null, userAgent: "cli" },
      });
    }
  }
} finally {
  await connection.close();
}
