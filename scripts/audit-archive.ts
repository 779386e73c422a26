/**
 * npm run audit:archive — archive a closed period of the audit trail: export, seal, then prune.
 *
 *   npm run audit:archive                        dry run: what is older than AUDIT_RETENTION_DAYS (nothing changes)
 *   npm run audit:archive -- --apply             export to AUDIT_ARCHIVE_DIR, seal, prune, record an audit event
 *   npm run audit:archive -- --before 2017-01-01 [--apply]   an earlier cutoff (never a later one than retention)
 *   npm run audit:archive -- --out /mnt/worm     another directory for the files
 *   npm run audit:archive -- --by "J. Martin"    who runs it (kept in the seal and the event; default: OS user)
 *   npm run audit:archive -- --list              the sealed archives
 *   npm run audit:archive -- --verify FILE       check an archive file against its seal (hashes, count, SHA-256)
 *
 * Nothing is pruned without --apply, nothing younger than the retention period, nothing before its file is written,
 * fsynced and sealed. With the embedded database, run it while the server is stopped.
 */
import { randomUUID } from "node:crypto";
import { userInfo } from "node:os";
import { parseArgs } from "node:util";
import { ArchiveError, archivePeriod, listArchives, planArchive, verifyArchiveFile } from "../app/audit/archive.server";
import { retention, retentionCutoff } from "../app/audit/retention.server";
import { connection } from "../app/db/db.server";
import { log } from "../app/log.server";

const { values } = parseArgs({
  options: {
    apply: { type: "boolean", default: false },
    before: { type: "string" },
    out: { type: "string" },
    by: { type: "string" },
    list: { type: "boolean", default: false },
    verify: { type: "string" },
  },
});

async function main(): Promise<number> {
  if (values.verify) {
    const report = await verifyArchiveFile(values.verify);
    if (report.ok) console.log(`Archive intact: ${report.count} events #${report.seal!.firstId}–#${report.seal!.lastId}, SHA-256 ${report.seal!.sha256}.`);
    else console.error(`Archive NOT intact: ${report.problem} (${report.count} events read).`);
    return report.ok ? 0 : 1;
  }
  if (values.list) {
    const archives = await listArchives();
    if (archives.length === 0) console.log("No sealed archive: every audit event is in the database.");
    for (const a of archives.toReversed()) {
      console.log(
        `#${a.id}  events ${a.firstId}–${a.lastId} (${a.count}), ${a.firstAt?.toISOString() ?? "?"} → ${a.lastAt?.toISOString() ?? "?"}, ` +
          `sealed ${a.createdAt.toISOString()} by ${a.createdBy ?? "?"}: ${a.fileName} sha256 ${a.fileSha256}`,
      );
    }
    return 0;
  }
  const cutoff = retentionCutoff();
  let before = cutoff;
  if (values.before) {
    before = new Date(values.before);
    if (Number.isNaN(before.getTime())) throw new ArchiveError(`--before: not a date: ${values.before}`);
    if (before > cutoff) {
      throw new ArchiveError(
        `--before ${before.toISOString()} is later than the retention cutoff ${cutoff.toISOString()} ` +
          `(AUDIT_RETENTION_DAYS=${retention.retentionDays}): events younger than that are never archived.`,
      );
    }
  }
  const plan = await planArchive(before);
  if (!plan) {
    console.log(`Nothing to archive: no event recorded before ${before.toISOString()} (AUDIT_RETENTION_DAYS=${retention.retentionDays}).`);
    return 0;
  }
  console.log(
    `Period: ${plan.count} events #${plan.firstId}–#${plan.lastId}, ${plan.firstAt.toISOString()} → ${plan.lastAt.toISOString()} ` +
      `(recorded before ${before.toISOString()}).`,
  );
  if (!values.apply) {
    console.log("Dry run: nothing written, nothing pruned. Add --apply to export, seal and prune this period.");
    return 0;
  }
  const dir = values.out ?? retention.archiveDir;
  const by = values.by ?? userInfo().username;
  const result = await archivePeriod({
    before,
    dir,
    createdBy: by,
    info: { requestId: `cli-${randomUUID()}`, ip: null, userAgent: "nexus audit:archive" },
  });
  if (!result) {
    console.log("Nothing to archive any more (another archive ran meanwhile).");
    return 0;
  }
  log.info({ archiveId: result.archiveId, count: result.seal.count, firstId: result.seal.firstId, lastId: result.seal.lastId }, "audit period archived");
  console.log(`Archived and pruned ${result.seal.count} events #${result.seal.firstId}–#${result.seal.lastId}.`);
  console.log(`  file: ${result.file}`);
  console.log(`  seal: ${result.file}.seal.json (SHA-256 ${result.seal.sha256}, last hash ${result.seal.lastHash})`);
  console.log("Keep both files on write-once storage: the database now holds only the seal (audit_archives).");
  return 0;
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(err instanceof ArchiveError ? `Not archived: ${err.message}` : err);
  process.exitCode = 1;
} finally {
  await connection.close();
}
