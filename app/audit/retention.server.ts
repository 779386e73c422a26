/**
 * Retention of the audit trail (the variables are validated with the rest in app/config.server.ts).
 *
 * AUDIT_RETENTION_DAYS (default 3650, about ten years): events stay in the database, searchable on the admin
 * page, at least this long. Only a period that ended before `now − AUDIT_RETENTION_DAYS` may be archived, and only
 * by the archive command, which exports and seals the period before pruning it (app/audit/archive.server.ts).
 * AUDIT_ARCHIVE_DIR (default DATA_DIR/audit-archives): where the command writes the archive files and their seals.
 */
import path from "node:path";
import { config } from "../config.server";

export const retention = {
  retentionDays: config.AUDIT_RETENTION_DAYS,
  archiveDir: path.resolve(config.AUDIT_ARCHIVE_DIR ?? path.join(config.DATA_DIR, "audit-archives")),
};

/** Events recorded before this instant may be archived. */
export function retentionCutoff(now = new Date(), days = retention.retentionDays): Date {
  return new Date(now.getTime() - days * 86_400_000);
}
