/**
 * The one audit writer. Every decision of the policy, allowed or denied, and every security event goes through
 * `record()`. Rows are append-only (database triggers) and hash-chained; appends are serialised with a
 * transaction-scoped advisory lock so concurrent writers never fork the chain.
 */
import { and, asc, desc, eq, gt, gte, lt, lte, sql } from "drizzle-orm";
import { z } from "zod";
import { db } from "../db/db.server";
import { auditEvents, OUTCOMES, type Outcome } from "../db/schema";
import type { Actor } from "../accounts/actor";
import { GENESIS_HASH, chainHash, type ChainedFields } from "./chain.server";

/** Where a request came from; filled in by app/http/context.server.ts. */
export interface RequestInfo {
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
}

export interface AuditInput {
  actor: Pick<Actor, "id" | "role" | "name"> | null;
  action: string;
  outcome: Outcome;
  resource?: { type: string; id?: string | null };
  patientId?: string | null;
  reason?: string | null;
  purpose?: string | null;
  info: RequestInfo;
}

/** Any 64-bit constant naming the chain's lock; it only has to be the same for every writer. */
const CHAIN_LOCK_KEY = 7_202_611_231;

export async function record(event: AuditInput): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`);
    const [last] = await tx
      .select({ id: auditEvents.id, hash: auditEvents.hash })
      .from(auditEvents)
      .orderBy(desc(auditEvents.id))
      .limit(1);
    const [{ id }] = (await tx.execute<{ id: string }>(sql`select nextval(pg_get_serial_sequence('audit_events', 'id')) as id`)).rows as [{ id: string }];
    const fields: ChainedFields = {
      id: Number(id),
      at: new Date(),
      actorId: event.actor?.id ?? null,
      actorRole: event.actor?.role ?? null,
      actorName: event.actor?.name ?? null,
      action: event.action,
      resourceType: event.resource?.type ?? null,
      resourceId: event.resource?.id ?? null,
      patientId: event.patientId ?? null,
      outcome: event.outcome,
      reason: event.reason ?? null,
      purpose: event.purpose ?? null,
      requestId: event.info.requestId,
      ip: event.info.ip,
      userAgent: event.info.userAgent?.slice(0, 512) ?? null,
    };
    const prevHash = last?.hash ?? GENESIS_HASH;
    await tx.insert(auditEvents).values({ ...fields, prevHash, hash: chainHash(prevHash, fields) });
    return fields.id;
  });
}

export interface ChainReport {
  ok: boolean;
  checked: number;
  firstBrokenId?: number;
}

/**
 * Re-computes the whole chain in id order, in pages. A row whose hash does not match its content, or whose
 * prev_hash is not the previous row's hash (a row deleted or inserted before it), breaks the chain at that row.
 */
export async function verifyChain(pageSize = 5000): Promise<ChainReport> {
  let prevHash = GENESIS_HASH;
  let lastId = 0;
  let checked = 0;
  for (;;) {
    const rows = await db
      .select()
      .from(auditEvents)
      .where(gt(auditEvents.id, lastId))
      .orderBy(asc(auditEvents.id))
      .limit(pageSize);
    for (const row of rows) {
      if (row.prevHash !== prevHash || row.hash !== chainHash(prevHash, row)) {
        return { ok: false, checked, firstBrokenId: row.id };
      }
      prevHash = row.hash;
      lastId = row.id;
      checked++;
    }
    if (rows.length < pageSize) return { ok: true, checked };
  }
}

export const auditQuerySchema = z.object({
  actor: z.uuid().optional(),
  patient: z.uuid().optional(),
  action: z.string().max(100).optional(),
  outcome: z.enum(OUTCOMES).optional(),
  requestId: z.string().max(100).optional(),
  from: z.coerce.date().optional(),
  to: z.coerce.date().optional(),
  /** The id of the last event of the previous page (pages go from newest to oldest). */
  cursor: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
export type AuditQuery = z.infer<typeof auditQuerySchema>;

/** Events matching the filters, newest first, paged by id cursor (keyset paging: no OFFSET). */
export async function searchEvents(q: AuditQuery) {
  const conditions = [
    q.actor ? eq(auditEvents.actorId, q.actor) : undefined,
    q.patient ? eq(auditEvents.patientId, q.patient) : undefined,
    q.action ? eq(auditEvents.action, q.action) : undefined,
    q.outcome ? eq(auditEvents.outcome, q.outcome) : undefined,
    q.requestId ? eq(auditEvents.requestId, q.requestId) : undefined,
    q.from ? gte(auditEvents.at, q.from) : undefined,
    q.to ? lte(auditEvents.at, q.to) : undefined,
    q.cursor ? lt(auditEvents.id, q.cursor) : undefined,
  ].filter((c) => c !== undefined);
  const rows = await db
    .select()
    .from(auditEvents)
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(desc(auditEvents.id))
    .limit(q.limit + 1);
  const page = rows.slice(0, q.limit);
  return { events: page, nextCursor: rows.length > q.limit ? page[page.length - 1]!.id : null };
}

/** A patient's own access log: who touched their data, when, and with what outcome (newest first). */
export async function accessLogOf(patientId: string, limit = 200) {
  return db
    .select({
      at: auditEvents.at,
      actorRole: auditEvents.actorRole,
      actorName: auditEvents.actorName,
      action: auditEvents.action,
      outcome: auditEvents.outcome,
    })
    .from(auditEvents)
    .where(eq(auditEvents.patientId, patientId))
    .orderBy(desc(auditEvents.id))
    .limit(limit);
}
