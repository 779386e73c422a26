/** npm run audit:verify — re-computes the audit hash chain; exits 1 and names the first broken row if any. */
import { verifyChain } from "../app/audit/audit.server";
import { connection } from "../app/db/db.server";

const report = await verifyChain();
await connection.close();
const sealed = report.archives ? ` (continuing from ${report.archives} sealed archive${report.archives > 1 ? "s" : ""})` : "";
if (report.ok) {
  console.log(`Audit chain intact: ${report.checked} events verified${sealed}.`);
} else if (report.brokenArchiveId !== undefined) {
  console.error(`Audit chain BROKEN: archive seal #${report.brokenArchiveId} does not link to the previous one (events from #${report.firstBrokenId}).`);
  process.exitCode = 1;
} else {
  console.error(`Audit chain BROKEN at event #${report.firstBrokenId} (${report.checked} events verified before it)${sealed}.`);
  process.exitCode = 1;
}
