/** npm run audit:verify — re-computes the audit hash chain; exits 1 and names the first broken row if any. */
import { verifyChain } from "../app/audit/audit.server";
import { connection } from "../app/db/db.server";

const report = await verifyChain();
await connection.close();
if (report.ok) {
  console.log(`Audit chain intact: ${report.checked} events verified.`);
} else {
  console.error(`Audit chain BROKEN at event #${report.firstBrokenId} (${report.checked} events verified before it).`);
  process.exitCode = 1;
}
