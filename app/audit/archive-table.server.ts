/**
 * The seals of archived audit periods (drizzle/0004_audit_grants.sql creates the table, append-only like the trail).
 * Declared here rather than in app/db/schema.ts: it belongs to the audit domain and only its code reads it.
 */
import { bigint, bigserial, pgTable, text, timestamp } from "drizzle-orm/pg-core";

export const auditArchives = pgTable("audit_archives", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  /** Who ran the archive command (operator name or the database user). */
  createdBy: text("created_by"),
  /** Events recorded before this instant were due for archiving. */
  periodEnd: timestamp("period_end", { withTimezone: true }).notNull(),
  firstId: bigint("first_id", { mode: "number" }).notNull(),
  lastId: bigint("last_id", { mode: "number" }).notNull(),
  count: bigint("count", { mode: "number" }).notNull(),
  firstAt: timestamp("first_at", { withTimezone: true }),
  lastAt: timestamp("last_at", { withTimezone: true }),
  /** The first archived row's prev_hash: the previous archive's last hash (or the genesis hash). */
  firstPrevHash: text("first_prev_hash").notNull(),
  /** The last archived row's hash: the chain left in the table starts from it. */
  lastHash: text("last_hash").notNull(),
  fileName: text("file_name").notNull(),
  fileSha256: text("file_sha256").notNull(),
});

export type AuditArchive = typeof auditArchives.$inferSelect;
