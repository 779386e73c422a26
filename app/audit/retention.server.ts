/**
 * Retention of the audit trail, read and validated once (like app/config.server.ts, whose DATA_DIR it reuses).
 *
 * AUDIT_RETENTION_DAYS (default 3650, about ten years): events stay in the database, searchable on the admin
 * page, at least this long. Only a period that ended before `now − AUDIT_RETENTION_DAYS` may be archived, and only
 * by the archive command, which exports and seals the period before pruning it (app/audit/archive.server.ts).
 * AUDIT_ARCHIVE_DIR (default DATA_DIR/audit-archives): where the command writes the archive files and their seals.
 */
import path from "node:path";
import { z } from "zod";
import { config } from "../config.server";

const schema = z.object({
  AUDIT_RETENTION_DAYS: z.coerce
    .number({ message: "AUDIT_RETENTION_DAYS must be a whole number of days" })
    .int("AUDIT_RETENTION_DAYS must be a whole number of days")
    .min(1, "AUDIT_RETENTION_DAYS must be at least 1")
    .max(36_500, "AUDIT_RETENTION_DAYS must be at most 36500 (100 years)")
    .default(3650),
  AUDIT_ARCHIVE_DIR: z.string().min(1).optional(),
});

export interface RetentionConfig {
  retentionDays: number;
  archiveDir: string;
}

export function readRetention(env: NodeJS.ProcessEnv = process.env): RetentionConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  - ${i.path.join(".")}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join("\n")}`);
  }
  return {
    retentionDays: parsed.data.AUDIT_RETENTION_DAYS,
    archiveDir: path.resolve(parsed.data.AUDIT_ARCHIVE_DIR ?? path.join(config.DATA_DIR, "audit-archives")),
  };
}

export const retention = readRetention();

/** Events recorded before this instant may be archived. */
export function retentionCutoff(now = new Date(), days = retention.retentionDays): Date {
  return new Date(now.getTime() - days * 86_400_000);
}
