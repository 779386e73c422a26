/** The patient's own access log, in keyset pages (newest first): any depth costs one index range scan. */
import { and, desc, eq, lt } from "drizzle-orm";
import { db } from "../db/db.server";
import { auditEvents } from "../db/schema";

export const ACCESS_LOG_PAGE = 20;

export interface AccessLogPage {
  events: { id: number; at: Date; actorRole: string | null; actorName: string | null; action: string; outcome: string }[];
  /** The cursor of the next (older) page, or null on the last one. */
  older: number | null;
}

/** One page of the events that name `patientId`, older than the event `before` when given. */
export async function accessLogPage(patientId: string, before?: number, limit = ACCESS_LOG_PAGE): Promise<AccessLogPage> {
  const rows = await db
    .select({
      id: auditEvents.id,
      at: auditEvents.at,
      actorRole: auditEvents.actorRole,
      actorName: auditEvents.actorName,
      action: auditEvents.action,
      outcome: auditEvents.outcome,
    })
    .from(auditEvents)
    .where(before === undefined ? eq(auditEvents.patientId, patientId) : and(eq(auditEvents.patientId, patientId), lt(auditEvents.id, before)))
    .orderBy(desc(auditEvents.id))
    .limit(limit + 1);
  const events = rows.slice(0, limit).map((r) => ({ ...r, id: Number(r.id) }));
  return { events, older: rows.length > limit ? events[events.length - 1]!.id : null };
}

/** A cursor from the query string: a positive integer, or undefined (the first page) for anything else. */
export function accessLogCursor(value: string | null): number | undefined {
  if (!value || !/^\d{1,15}$/.test(value)) return undefined;
  const n = Number(value);
  return n > 0 ? n : undefined;
}
