/**
 * npm run audit:verify — re-computes the audit hash chain and checks its head against the newest signed checkpoint
 * (object store; app/audit/checkpoint.server.ts); exits 1 and names the first broken row if any.
 */
import { verifyAnchoredChain } from "../app/audit/checkpoint.server";
import { connection } from "../app/db/db.server";

const report = await verifyAnchoredChain();
await connection.close();
const sealed = report.archives ? ` (continuing from ${report.archives} sealed archive${report.archives > 1 ? "s" : ""})` : "";
const cp = report.checkpoint;
const anchor = cp.checkpoint ? `checkpoint #${cp.checkpoint.lastId} of ${cp.checkpoint.at}` : "no checkpoint yet";
if (cp.invalid > 0) console.error(`${cp.invalid} checkpoint(s) with a wrong signature (forged, or written with another AUDIT_CHECKPOINT_KEY).`);
if (report.ok) {
  console.log(`Audit chain intact: ${report.checked} events verified${sealed}; head matches ${anchor}.`);
} else if (report.brokenArchiveId !== undefined) {
  console.error(`Audit chain BROKEN: archive seal #${report.brokenArchiveId} does not link to the previous one (events from #${report.firstBrokenId}).`);
  process.exitCode = 1;
} else if (cp.problem) {
  const what = cp.problem === "missing" ? "is missing (the tail was deleted)" : "no longer has the certified hash (the chain was rewritten)";
  console.error(`Audit chain BROKEN: event #${cp.checkpoint!.lastId}, certified by the ${anchor}, ${what}; ${report.checked} events link.`);
  process.exitCode = 1;
} else if (!cp.ok) {
  console.error(`Audit chain NOT VERIFIED: no checkpoint with a valid signature.`);
  process.exitCode = 1;
} else {
  console.error(`Audit chain BROKEN at event #${report.firstBrokenId} (${report.checked} events verified before it)${sealed}.`);
  process.exitCode = 1;
}
