/**
 * The one audit writer. Every decision of the policy, allowed or denied, and every security event goes through
 * `record()`. Rows are append-only (database triggers and grants) and hash-chained; appends are serialised with a
 * transaction-scoped advisory lock so concurrent writers never fork the chain.
 *
 * What an event holds: identifiers (actor, resource, patient, request), the actor's role and name at the time, the
 * action, outcome, reason, purpose of use, client address and user agent. Never medical content (no image, no
 * diagnosis, no AI reading): callers pass ids, and the admin pages show nothing else.
 */
import { and, asc, desc, eq, gte, lt, lte, sql, type SQL } from "drizzle-orm";
import { z } from "zod";
import { connection, db } from "../db/db.server";
import { CONTROL_MESSAGE, hasControlCharacter } from "../http/validation.server";
import { auditEvents, OUTCOMES, type Outcome } from "../db/schema";
import type { Actor } from "../accounts/actor";
import { auditArchives } from "./archive-table.server";
import { GENESIS_HASH, chainHash, type ChainedFields } from "./chain.server";
import { addTiming, type Timing } from "../http/timing.server";
import { purposeOf } from "./purpose";

/** Where a request came from; filled in by app/http/context.server.ts. */
export interface RequestInfo {
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
  /** Stage timings (NEXUS_TIMING=1 only; never recorded): record() adds its wait to "audit". */
  timing?: Timing;
}

export interface AuditInput {
  actor: Pick<Actor, "id" | "role" | "name"> | null;
  action: string;
  outcome: Outcome;
  resource?: { type: string; id?: string | null };
  patientId?: string | null;
  reason?: string | null;
  /** v3-ActReason code; derived from the action and the actor's role when absent (app/audit/purpose.ts). */
  purpose?: string | null;
  info: RequestInfo;
}

export type AuditEventRow = typeof auditEvents.$inferSelect;

/** Any 64-bit constant naming the chain's lock; it only has to be the same for every writer (and the archiver). */
export const CHAIN_LOCK_KEY = 7_202_611_231;

/** Rows of a raw query, whichever driver (node-postgres or PGlite) ran it. */
export function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

/** At most `max` UTF-16 units, never ending on half of a surrogate pair. */
function clip(value: string | null | undefined, max: number): string | null {
  if (value == null) return null;
  if (value.length <= max) return value;
  const cut = value.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

/** What one event sends to `nexus_audit_append_many()`: the hashed fields but the id and time, which the database assigns. */
type AppendRow = Omit<ChainedFields, "id" | "at">;

/**
 * A string as the database stores it: PostgreSQL holds UTF-8, where a lone UTF-16 surrogate becomes U+FFFD (what
 * node-postgres did when the fields travelled as text parameters; jsonb would refuse it instead).
 */
function wellFormed(value: string | null): string | null {
  return value === null ? null : (value as string & { toWellFormed(): string }).toWellFormed();
}

function appendRow(event: AuditInput): AppendRow {
  return {
    actorId: event.actor?.id ?? null,
    actorRole: event.actor?.role ?? null,
    actorName: wellFormed(clip(event.actor?.name, 200)),
    action: wellFormed(event.action)!,
    resourceType: wellFormed(event.resource?.type ?? null),
    resourceId: wellFormed(clip(event.resource?.id, 500)),
    patientId: event.patientId ?? null,
    outcome: event.outcome,
    reason: wellFormed(clip(event.reason, 1000)),
    purpose: wellFormed(event.purpose ?? purposeOf(event.action, event.actor?.role)),
    requestId: wellFormed(clip(event.info.requestId, 100)),
    ip: wellFormed(clip(event.info.ip, 64)),
    userAgent: wellFormed(clip(event.info.userAgent, 512)),
  };
}

/** Most events one append statement carries (a bound on its size; the queue behind it waits for the next one). */
const MAX_BATCH = 256;

interface Waiting {
  row: AppendRow;
  resolve(id: number): void;
  reject(error: unknown): void;
}

/** Events waiting for the next append statement of this process, and whether one is in flight. */
const queue: Waiting[] = [];
let flushing = false;

/** Appends rows in one statement (one transaction, one round trip); their ids, in order. */
async function appendMany(rows: AppendRow[]): Promise<number[]> {
  // A named prepared statement: PostgreSQL parses and plans it once per connection, not once per batch.
  const [result] = await connection.prepared<{ ids: (string | number)[] | string }>(
    "nexus_audit_append_many",
    "select nexus_audit_append_many($1::jsonb) as ids",
    [JSON.stringify(rows)],
  );
  const ids = result!.ids;
  // node-postgres parses bigint[] into strings; PGlite may hand back the array literal.
  const list = Array.isArray(ids) ? ids : ids.replace(/[{}]/g, "").split(",");
  return list.map(Number);
}

/** A failure caused by one event's data (SQLSTATE class 22 or 23), not by the database or the chain lock. */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown; cause?: { code?: unknown } }).cause?.code ?? (error as { code?: unknown }).code;
  return typeof code === "string" && (code.startsWith("22") || code.startsWith("23"));
}

/**
 * Group commit: sends every waiting event in one append statement while none is in flight, and keeps doing so until
 * the queue is empty. An idle writer's event therefore leaves at once; events that arrive while a statement is in
 * flight (or as its writers are answered) ride together on the next one. A batch refused because of one event's
 * data is retried one event at a time, so a bad event fails alone.
 */
async function flush(): Promise<void> {
  flushing = true;
  try {
    while (queue.length > 0) {
      const batch = queue.splice(0, MAX_BATCH);
      try {
        const ids = await appendMany(batch.map((w) => w.row));
        batch.forEach((w, i) => w.resolve(ids[i]!));
      } catch (error) {
        if (batch.length === 1 || !isDataError(error)) {
          for (const w of batch) w.reject(error);
        } else {
          for (const w of batch) {
            try {
              w.resolve((await appendMany([w.row]))[0]!);
            } catch (alone) {
              w.reject(alone);
            }
          }
        }
      }
      // The next batch is cut once the event loop has turned: the code just answered, and whatever it records next,
      // runs first. Cut at once, it left with the one event already waiting and every writer answered now waited for
      // that statement too (batches of 15 and 1 in turn under 16 writers: two statements per event's wait).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    flushing = false;
  }
}

/**
 * Appends one event. `nexus_audit_append_many()` (drizzle/0009_audit_group_commit.sql) takes the chain lock, reads
 * the head of the chain (the last row, or the last archive's seal once every row was archived), takes the next ids
 * and inserts the rows hashed exactly as chain.server.ts defines it, so ids, links and times follow one order. The
 * time comes from the database clock and never goes back: a clock stepping back cannot make the trail go back in
 * time, and date filters can rely on `at` growing with `id` (searchEvents).
 *
 * Concurrent events of this process share one append statement (group commit, see `flush()`), and the promise
 * resolves only once the statement that carried this event has returned — its transaction committed, the event
 * durable. Failing to record rejects: a request that cannot be audited fails (a held chain lock ends with the
 * database's lock timeout, answered 503 by perform()).
 */
export function record(event: AuditInput): Promise<number> {
  let row: AppendRow;
  try {
    row = appendRow(event);
  } catch (error) {
    return Promise.reject(error);
  }
  const appended = new Promise<number>((resolve, reject) => {
    queue.push({ row, resolve, reject });
    if (!flushing) void flush();
  });
  const timing = event.info.timing;
  if (!timing) return appended;
  const t0 = performance.now();
  return appended.finally(() => addTiming(timing, "audit", performance.now() - t0));
}

// ---- verification ------------------------------------------------------------------------------------------------

export interface ChainReport {
  ok: boolean;
  checked: number;
  firstBrokenId?: number;
  /** Sealed archives the table's chain continues from (present when there are any). */
  archives?: number;
  /** An archive seal that does not link to the previous one (its first event id is `firstBrokenId`). */
  brokenArchiveId?: number;
}

/**
 * Re-computes the whole chain in id order, in pages. A row whose hash does not match its content, or whose
 * prev_hash is not the previous row's hash (a row deleted or inserted before it), breaks the chain at that row.
 * After archiving, the first row left must link to the latest archive's last hash, and every archive seal to the
 * previous one (the first to the genesis hash); a row at or below an archived id breaks the chain too.
 */
export async function verifyChain(pageSize = 10_000): Promise<ChainReport> {
  const archives = await db.select().from(auditArchives).orderBy(asc(auditArchives.lastId));
  const extra = archives.length > 0 ? { archives: archives.length } : {};
  let prevHash = GENESIS_HASH;
  let floor = 0;
  for (const a of archives) {
    if (a.firstPrevHash !== prevHash || a.firstId <= floor || a.lastId < a.firstId) {
      return { ok: false, checked: 0, firstBrokenId: a.firstId, brokenArchiveId: a.id, ...extra };
    }
    prevHash = a.lastHash;
    floor = a.lastId;
  }
  let lastId = 0;
  let checked = 0;
  for (;;) {
    // Raw rows with the time already in its canonical ISO form: no Date parsing for a million rows.
    const rows = rowsOf<RawChainRow>(
      await db.execute(sql`
        select id, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at, actor_id, actor_role,
               actor_name, action, resource_type, resource_id, patient_id, outcome, reason, purpose, request_id, ip,
               user_agent, prev_hash, hash
        from audit_events where id > ${lastId} order by id limit ${pageSize}`),
    );
    for (const raw of rows) {
      const row = chainedOf(raw);
      if (row.id <= floor || raw.prev_hash !== prevHash || raw.hash !== chainHash(prevHash, row)) {
        return { ok: false, checked, firstBrokenId: row.id, ...extra };
      }
      prevHash = raw.hash;
      lastId = row.id;
      checked++;
    }
    if (rows.length < pageSize) return { ok: true, checked, ...extra };
  }
}

interface RawChainRow {
  id: string | number;
  at: string;
  actor_id: string | null;
  actor_role: string | null;
  actor_name: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  patient_id: string | null;
  outcome: Outcome;
  reason: string | null;
  purpose: string | null;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  prev_hash: string;
  hash: string;
}

function chainedOf(r: RawChainRow): ChainedFields {
  return {
    id: Number(r.id),
    at: r.at,
    actorId: r.actor_id,
    actorRole: r.actor_role,
    actorName: r.actor_name,
    action: r.action,
    resourceType: r.resource_type,
    resourceId: r.resource_id,
    patientId: r.patient_id,
    outcome: r.outcome,
    reason: r.reason,
    purpose: r.purpose,
    requestId: r.request_id,
    ip: r.ip,
    userAgent: r.user_agent,
  };
}

/**
 * A quick look at the newest `count` events: each hash matches its row and each row links to the one before.
 * Cheap enough for every admin page view; the full verification stays `verifyChain()`.
 */
export async function verifyTail(count = 200): Promise<{ ok: boolean; checked: number; firstBrokenId?: number }> {
  const rows = (await db.select().from(auditEvents).orderBy(desc(auditEvents.id)).limit(count)).reverse();
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const linked = i === 0 || row.prevHash === rows[i - 1]!.hash;
    if (!linked || row.hash !== chainHash(row.prevHash, row)) return { ok: false, checked: i, firstBrokenId: row.id };
  }
  return { ok: true, checked: rows.length };
}

/** How a verification is written in its own audit event (resource `audit_chain`): `ok:<checked>` or `broken:<id>`. */
export function chainCheckResource(report: ChainReport): { resourceType: string; resourceId: string } {
  return {
    resourceType: "audit_chain",
    resourceId: report.ok ? `ok:${report.checked}` : `broken:${report.firstBrokenId}`,
  };
}

export interface ChainCheck {
  eventId: number;
  at: Date;
  actorName: string | null;
  ok: boolean;
  checked: number | null;
  firstBrokenId: number | null;
}

/** The last full verification run from the admin page or the API (read back from its audit event). */
export async function latestChainCheck(): Promise<ChainCheck | null> {
  const [row] = await db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.resourceType, "audit_chain"), eq(auditEvents.outcome, "allowed")))
    .orderBy(desc(auditEvents.id))
    .limit(1);
  if (!row?.resourceId) return null;
  const [state, n] = row.resourceId.split(":");
  const value = Number(n);
  return {
    eventId: row.id,
    at: row.at,
    actorName: row.actorName,
    ok: state === "ok",
    checked: state === "ok" ? value : null,
    firstBrokenId: state === "broken" ? value : null,
  };
}

// ---- search ------------------------------------------------------------------------------------------------------

const dateParam = () => z.coerce.date({ message: "date ISO 8601 attendue (ex. 2026-11-23 ou 2026-11-23T10:00:00Z)." });

export const auditQuerySchema = z
  .object({
    actor: z.uuid({ message: "identifiant de compte (UUID) attendu." }).optional(),
    patient: z.uuid({ message: "identifiant de patient (UUID) attendu." }).optional(),
    action: z.string().trim().min(1).max(100, "100 caractères au plus.").refine((v) => !hasControlCharacter(v), CONTROL_MESSAGE).optional(),
    outcome: z.enum(OUTCOMES, { message: `${OUTCOMES.join(", ")} attendu.` }).optional(),
    requestId: z.string().trim().min(1).max(100, "100 caractères au plus.").refine((v) => !hasControlCharacter(v), CONTROL_MESSAGE).optional(),
    from: dateParam().optional(),
    to: dateParam().optional(),
    /** The id of the last event of the previous page (pages go from newest to oldest). */
    cursor: z.coerce.number({ message: "entier positif attendu." }).int().positive().optional(),
    limit: z.coerce.number({ message: "entier de 1 à 500 attendu." }).int().min(1).max(500).default(50),
  })
  .refine((q) => !q.from || !q.to || q.from <= q.to, { path: ["to"], message: "doit être postérieur au début de la période." });
export type AuditQuery = z.infer<typeof auditQuerySchema>;
/** The filters of a query, without paging. */
export type AuditFilters = Omit<AuditQuery, "cursor" | "limit">;

/**
 * A date range as an id range. `record()` never lets `at` go back, so the events of [from, to] are exactly those
 * between the first event at or after `from` and the last at or before `to`: two index lookups, after which
 * every filtered page is a keyset scan on (column, id) — fast at any depth, even for old periods. The `at`
 * conditions stay in the query too, so a page never shows an event outside the range.
 */
async function idRange(from: Date | undefined, to: Date | undefined): Promise<{ lo: number | null; hi: number | null; empty: boolean }> {
  if (!from && !to) return { lo: null, hi: null, empty: false };
  const lower = from
    ? sql`(select min(id) from audit_events where at = (select min(at) from audit_events where at >= ${from}))`
    : sql`null::bigint`;
  const upper = to
    ? sql`(select max(id) from audit_events where at = (select max(at) from audit_events where at <= ${to}))`
    : sql`null::bigint`;
  const [row] = rowsOf<{ lo: string | number | null; hi: string | number | null }>(
    await db.execute(sql`select ${lower} as lo, ${upper} as hi`),
  );
  const lo = row?.lo == null ? null : Number(row.lo);
  const hi = row?.hi == null ? null : Number(row.hi);
  return { lo, hi, empty: (from !== undefined && lo === null) || (to !== undefined && hi === null) };
}

function conditions(q: AuditFilters, range: { lo: number | null; hi: number | null }, below?: number): SQL[] {
  return [
    q.actor ? eq(auditEvents.actorId, q.actor) : undefined,
    q.patient ? eq(auditEvents.patientId, q.patient) : undefined,
    q.action ? eq(auditEvents.action, q.action) : undefined,
    q.outcome ? eq(auditEvents.outcome, q.outcome) : undefined,
    q.requestId ? eq(auditEvents.requestId, q.requestId) : undefined,
    q.from ? gte(auditEvents.at, q.from) : undefined,
    q.to ? lte(auditEvents.at, q.to) : undefined,
    range.lo !== null ? gte(auditEvents.id, range.lo) : undefined,
    range.hi !== null ? lte(auditEvents.id, range.hi) : undefined,
    below !== undefined ? lt(auditEvents.id, below) : undefined,
  ].filter((c): c is SQL => c !== undefined);
}

/**
 * A cursor over the events matching `filters`, newest first, `pageSize` at a time (keyset paging: no OFFSET).
 * `upTo` pins the newest id so a long export does not grow while it runs.
 */
export async function* eventPages(filters: AuditFilters, options: { pageSize?: number; upTo?: number } = {}) {
  const pageSize = options.pageSize ?? 1000;
  const range = await idRange(filters.from, filters.to);
  if (range.empty) return;
  let below = options.upTo !== undefined ? options.upTo + 1 : undefined;
  for (;;) {
    const rows = await db
      .select()
      .from(auditEvents)
      .where(and(...conditions(filters, range, below)))
      .orderBy(desc(auditEvents.id))
      .limit(pageSize);
    if (rows.length > 0) yield rows;
    if (rows.length < pageSize) return;
    below = rows[rows.length - 1]!.id;
  }
}

/** Events matching the filters, newest first, paged by id cursor (keyset paging: no OFFSET). */
export async function searchEvents(q: AuditQuery) {
  const range = await idRange(q.from, q.to);
  if (range.empty) return { events: [] as AuditEventRow[], nextCursor: null };
  const where = conditions(q, range, q.cursor);
  const rows = await db
    .select()
    .from(auditEvents)
    .where(where.length ? and(...where) : undefined)
    .orderBy(desc(auditEvents.id))
    .limit(q.limit + 1);
  const page = rows.slice(0, q.limit);
  return { events: page, nextCursor: rows.length > q.limit ? page[page.length - 1]!.id : null };
}

/**
 * The plan PostgreSQL chooses for a search page (`EXPLAIN`, text format): the benchmark checks that every filtered
 * page is an index scan (scripts/bench-audit.ts).
 */
export async function searchPlan(q: AuditQuery): Promise<string> {
  const range = await idRange(q.from, q.to);
  const where = conditions(q, range, q.cursor);
  const query = db
    .select()
    .from(auditEvents)
    .where(where.length ? and(...where) : undefined)
    .orderBy(desc(auditEvents.id))
    .limit(q.limit + 1);
  const { sql: text, params } = query.toSQL();
  const inline = text.replace(/\$(\d+)/g, (_m, n: string) => {
    const v = params[Number(n) - 1];
    if (typeof v === "number") return String(v);
    const s = v instanceof Date ? v.toISOString() : String(v);
    return `'${s.replace(/'/g, "''")}'`;
  });
  const rows = rowsOf<Record<string, string>>(await db.execute(sql.raw(`explain ${inline}`)));
  return rows.map((r) => Object.values(r)[0]).join("\n");
}

export async function getEvent(id: number): Promise<AuditEventRow | null> {
  const [row] = await db.select().from(auditEvents).where(eq(auditEvents.id, id));
  return row ?? null;
}

/** The newest event id (the upper bound of an export started now), 0 when the table is empty. */
export async function newestEventId(): Promise<number> {
  const [row] = await db.select({ id: auditEvents.id }).from(auditEvents).orderBy(desc(auditEvents.id)).limit(1);
  return row?.id ?? 0;
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
