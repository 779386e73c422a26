/**
 * The audit writer against a real database (PostgreSQL with DATABASE_URL, PGlite otherwise): append-only triggers,
 * the hash chain under concurrent writers, and tamper detection. Tampering needs to get past the triggers, so it
 * runs with `session_replication_role = replica` (superuser only) — exactly what an attacker with database
 * superuser rights could do, and what the chain must reveal.
 */
import { randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { db } from "../db/db.server";
import { auditEvents } from "../db/schema";
import { getEvent, record, searchEvents, verifyChain, verifyTail } from "./audit.server";
import { canonicalJson, chainHash } from "./chain.server";

const info = { requestId: "test", ip: "127.0.0.1", userAgent: "vitest" };
const actor = { id: randomUUID(), role: "doctor" as const, name: "Dr Test" };

/** Runs statements with the append-only triggers bypassed, then restores them. */
async function asSuperuser(fn: (tx: Parameters<Parameters<typeof db.transaction>[0]>[0]) => Promise<void>) {
  await db.transaction(async (tx) => {
    await tx.execute(sql`set local session_replication_role = replica`);
    await fn(tx);
  });
}

async function someEvents(n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    ids.push(await record({ actor, action: "patient.read", outcome: "allowed", resource: { type: "patient", id: randomUUID() }, info }));
  }
  return ids;
}

beforeAll(async () => {
  await someEvents(3);
});

describe("audit writer", () => {
  it("keeps one unbroken chain under many concurrent writers", async () => {
    const before = await verifyChain();
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        record({ actor, action: "concurrency.test", outcome: i % 3 === 0 ? "denied" : "allowed", reason: `w${i}`, info }),
      ),
    );
    const after = await verifyChain();
    expect(after).toMatchObject({ ok: true, checked: before.checked + 40 });
  });

  it("gathers writers that record one event after another into whole batches", async () => {
    // 16 writers, 10 events each, each waiting for its last: one statement (one transaction) per round once started.
    // Cutting the next batch before the writers just answered had recorded again gave batches of 15 and 1 in turn.
    const action = `rounds.${randomUUID()}`;
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (let i = 0; i < 10; i++) await record({ actor, action, outcome: "allowed", reason: `w${w}.${i}`, info });
      }),
    );
    const { rows } = await db.execute(sql`select count(distinct xmin::text)::int as txs, count(*)::int as n from audit_events where action = ${action}`);
    const { txs, n } = (rows as { txs: number; n: number }[])[0]!;
    expect(n).toBe(160);
    expect(txs, "about one statement per round of 16 events").toBeLessThanOrEqual(12);
    expect((await verifyChain()).ok).toBe(true);
  });

  it("refuses UPDATE, DELETE and TRUNCATE through the database triggers", async () => {
    const [id] = await someEvents(1);
    // drizzle wraps the database error: the trigger's message is in `cause`.
    const refused = (e: unknown) => /append-only/.test(String((e as { cause?: Error }).cause?.message ?? e));
    await expect(db.update(auditEvents).set({ reason: "edited" }).where(eq(auditEvents.id, id!))).rejects.toSatisfy(refused);
    await expect(db.delete(auditEvents).where(eq(auditEvents.id, id!))).rejects.toSatisfy(refused);
    await expect(db.execute(sql`truncate audit_events`)).rejects.toSatisfy(refused);
    expect((await verifyChain()).ok).toBe(true);
  });

  // Every column of the table (the id is covered by its own case below).
  const columns = [
    "at",
    "actor_id",
    "actor_role",
    "actor_name",
    "action",
    "resource_type",
    "resource_id",
    "patient_id",
    "outcome",
    "reason",
    "purpose",
    "request_id",
    "ip",
    "user_agent",
    "hash",
    "prev_hash",
  ] as const;
  for (const column of columns) {
    it(`reports the first broken row when ${column} is tampered with`, async () => {
      const [, target] = await someEvents(3);
      const [row] = await db.select().from(auditEvents).where(eq(auditEvents.id, target!));
      const forged: Record<string, unknown> = {
        at: sql`at + interval '1 second'`,
        actor_id: sql`${randomUUID()}::uuid`,
        actor_role: "admin",
        actor_name: "Someone Else",
        action: "patient.list",
        resource_type: "image",
        resource_id: "forged",
        patient_id: sql`${randomUUID()}::uuid`,
        outcome: sql`'denied'::audit_outcome`,
        reason: "rewritten",
        purpose: "HRESCH",
        request_id: "forged-request",
        ip: "10.0.0.1",
        user_agent: "curl/8",
        hash: "f".repeat(64),
        prev_hash: "e".repeat(64),
      };
      await asSuperuser((tx) => tx.execute(sql`update audit_events set ${sql.identifier(column)} = ${forged[column]} where id = ${target}`).then(() => undefined));
      expect(await verifyChain()).toMatchObject({ ok: false, firstBrokenId: target });
      // Put the row back so the chain verifies again for the next case.
      await asSuperuser(async (tx) => {
        await tx.delete(auditEvents).where(eq(auditEvents.id, target!));
        await tx.insert(auditEvents).values(row!);
      });
      expect((await verifyChain()).ok).toBe(true);
    });
  }

  it("reports the row after one whose id was changed (the row left its place in the chain)", async () => {
    const [, moved, next] = await someEvents(3);
    const [row] = await db.select().from(auditEvents).where(eq(auditEvents.id, moved!));
    await asSuperuser((tx) => tx.execute(sql`update audit_events set id = id + 1000000000 where id = ${moved}`).then(() => undefined));
    expect(await verifyChain()).toMatchObject({ ok: false, firstBrokenId: next });
    await asSuperuser(async (tx) => {
      await tx.execute(sql`delete from audit_events where id = ${moved! + 1_000_000_000}`);
      await tx.insert(auditEvents).values(row!);
    });
    expect((await verifyChain()).ok).toBe(true);
  });

  it("reports a deleted row and a row inserted in the middle", async () => {
    const [, middle, next] = await someEvents(3);
    const [row] = await db.select().from(auditEvents).where(eq(auditEvents.id, middle!));
    await asSuperuser((tx) => tx.delete(auditEvents).where(eq(auditEvents.id, middle!)).then(() => undefined));
    expect(await verifyChain()).toMatchObject({ ok: false, firstBrokenId: next });
    // A forged row in the gap, even with a plausible prev_hash, cannot carry a hash that links to the next row.
    await asSuperuser((tx) => tx.insert(auditEvents).values({ ...row!, reason: "inserted later" }).then(() => undefined));
    expect(await verifyChain()).toMatchObject({ ok: false, firstBrokenId: middle });
    await asSuperuser(async (tx) => {
      await tx.delete(auditEvents).where(eq(auditEvents.id, middle!));
      await tx.insert(auditEvents).values(row!);
    });
    expect((await verifyChain()).ok).toBe(true);
  });

  it("finds events by filter, newest first, with a cursor", async () => {
    const action = `search.${randomUUID()}`;
    for (let i = 0; i < 5; i++) await record({ actor, action, outcome: "allowed", info });
    const first = await searchEvents({ action, limit: 2 });
    expect(first.events).toHaveLength(2);
    expect(first.events[0]!.id).toBeGreaterThan(first.events[1]!.id);
    const second = await searchEvents({ action, limit: 2, cursor: first.nextCursor! });
    const third = await searchEvents({ action, limit: 2, cursor: second.nextCursor! });
    expect(third.events).toHaveLength(1);
    expect(third.nextCursor).toBeNull();
  });
});

describe("what every event carries", () => {
  it("a purpose of use derived from the action and the role when the caller gave none", async () => {
    const patient = { id: randomUUID(), role: "patient" as const, name: "P" };
    const cases = [
      { actor, action: "image.read", purpose: "TREAT" },
      { actor: patient, action: "consent.update", purpose: "PATRQT" },
      { actor: { ...actor, role: "researcher" as const }, action: "research.image", purpose: "HRESCH" },
      { actor: { ...actor, role: "admin" as const }, action: "account.create", purpose: "HOPERAT" },
      { actor: { ...actor, role: "admin" as const }, action: "patient.erase", purpose: "HOPERAT" },
      { actor: null, action: "auth.login", purpose: "HOPERAT" },
    ];
    for (const c of cases) {
      const id = await record({ actor: c.actor, action: c.action, outcome: "allowed", info });
      expect((await getEvent(id))!.purpose, c.action).toBe(c.purpose);
    }
    const given = await record({ actor, action: "image.read", outcome: "allowed", purpose: "HRESCH", info });
    expect((await getEvent(given))!.purpose).toBe("HRESCH");
  });

  it("a time that never goes back: an event after one stamped ahead of the clock shares its time", async () => {
    // A correctly chained row stamped 300 ms ahead (as a writer with a fast clock would have left it).
    const [head] = await db.select().from(auditEvents).orderBy(sql`id desc`).limit(1);
    const [{ id: nextId }] = (await db.execute<{ id: string }>(sql`select nextval(pg_get_serial_sequence('audit_events', 'id')) as id`)).rows as [{ id: string }];
    const fields = {
      id: Number(nextId),
      at: new Date(Date.now() + 300),
      actorId: actor.id,
      actorRole: actor.role,
      actorName: actor.name,
      action: "clock.ahead",
      resourceType: null,
      resourceId: null,
      patientId: null,
      outcome: "allowed" as const,
      reason: null,
      purpose: "TREAT",
      requestId: null,
      ip: null,
      userAgent: null,
    };
    await db.insert(auditEvents).values({ ...fields, prevHash: head!.hash, hash: chainHash(head!.hash, fields) });
    const after = await getEvent(await record({ actor, action: "clock.behind", outcome: "allowed", info }));
    expect(after!.at.getTime()).toBe(fields.at.getTime());
    expect(after!.id).toBeGreaterThan(fields.id);
    expect((await verifyChain()).ok).toBe(true);
  });

  it("hashes awkward text the same way in the database and in JavaScript", async () => {
    const odd = 'Zoé « \u2028 » "q" \\ back\nslash\t\u0001\u001f\u007f 😀 \u{10FFFF} ﬀ';
    const id = await record({
      actor: { ...actor, name: odd },
      action: "unicode.test",
      outcome: "denied",
      reason: odd.repeat(3),
      resource: { type: "image", id: odd },
      info: { requestId: odd, ip: "::1", userAgent: `${"a".repeat(511)}😀` },
    });
    const row = await getEvent(id);
    expect(row!.actorName).toBe(odd);
    expect(row!.userAgent).toBe("a".repeat(511));
    expect(row!.hash).toBe(chainHash(row!.prevHash, row!));
    expect((await verifyChain()).ok).toBe(true);
  });

  it("long texts clipped to their column's budget", async () => {
    const id = await record({ actor, action: "clip.test", outcome: "error", reason: "x".repeat(5000), info: { ...info, userAgent: "u".repeat(2000) } });
    const row = await getEvent(id);
    expect(row!.reason).toHaveLength(1000);
    expect(row!.userAgent).toHaveLength(512);
  });
});

describe("search", () => {
  it("filters by a date range exactly (the range becomes an id range)", async () => {
    const action = `range.${randomUUID()}`;
    // Events recorded while an earlier one is ahead of the clock share its time: start once the clock has passed it.
    const newest = (await searchEvents({ limit: 1 })).events[0];
    if (newest) await new Promise((r) => setTimeout(r, Math.max(0, newest.at.getTime() - Date.now() + 5)));
    const ids: number[] = [];
    const times: Date[] = [];
    for (let i = 0; i < 6; i++) {
      ids.push(await record({ actor, action, outcome: "allowed", info }));
      times.push((await getEvent(ids[i]!))!.at);
      await new Promise((r) => setTimeout(r, 3));
    }
    const found = async (from?: Date, to?: Date) => (await searchEvents({ action, from, to, limit: 50 })).events.map((e) => e.id);
    expect(await found(times[1], times[3])).toEqual([ids[3], ids[2], ids[1]]);
    expect(await found(times[4])).toEqual([ids[5], ids[4]]);
    expect(await found(undefined, times[0])).toEqual([ids[0]]);
    expect(await found(new Date(times[5]!.getTime() + 60_000))).toEqual([]);
    expect(await found(new Date(0), new Date(1000))).toEqual([]);
    // Paging inside a range.
    const first = await searchEvents({ action, from: times[0], to: times[5], limit: 4 });
    const second = await searchEvents({ action, from: times[0], to: times[5], limit: 4, cursor: first.nextCursor! });
    expect([...first.events, ...second.events].map((e) => e.id)).toEqual([...ids].reverse());
    expect(second.nextCursor).toBeNull();
  });

  it("checks the newest events quickly (verifyTail)", async () => {
    await someEvents(3);
    expect(await verifyTail(50)).toMatchObject({ ok: true });
  });
});

const pgUrl = process.env.DATABASE_URL;
if (!pgUrl) console.log("skipped: audit group commit under a held chain lock needs PostgreSQL (set DATABASE_URL)");

describe.skipIf(!pgUrl)("group commit (PostgreSQL)", () => {
  const CHAIN_LOCK = 7_202_611_231;

  /** A second session that holds the chain's lock while `fn` runs, and sees only committed rows. */
  async function withChainLockHeld<T>(fn: (other: import("pg").Client) => Promise<T>): Promise<T> {
    const { default: pg } = await import("pg");
    const other = new pg.Client({ connectionString: pgUrl });
    await other.connect();
    try {
      await other.query("select pg_advisory_lock($1)", [CHAIN_LOCK]);
      try {
        return await fn(other);
      } finally {
        await other.query("select pg_advisory_unlock($1)", [CHAIN_LOCK]);
      }
    } finally {
      await other.end();
    }
  }

  const committed = async (other: import("pg").Client, action: string) =>
    Number((await other.query("select count(*) as n from audit_events where action = $1", [action])).rows[0].n);

  it("answers no writer before its event is committed, and commits concurrent writers together", async () => {
    const action = `group.${randomUUID()}`;
    const settled: number[] = [];
    let pending: Promise<number>[] = [];
    await withChainLockHeld(async (other) => {
      pending = Array.from({ length: 16 }, (_, i) => record({ actor, action, outcome: "allowed", reason: `w${i}`, info }));
      pending.forEach((p, i) => void p.then(() => settled.push(i), () => {}));
      // The first append waits on the lock; the other 15 wait in the queue behind it.
      await new Promise((r) => setTimeout(r, 300));
      expect(settled, "no writer was answered while nothing could commit").toEqual([]);
      expect(await committed(other, action)).toBe(0);
    });
    const ids = await Promise.all(pending);
    expect(new Set(ids).size).toBe(16);
    const { rows } = await db.execute(sql`select count(distinct xmin::text)::int as txs, count(*)::int as n from audit_events where action = ${action}`);
    const { txs, n } = (rows as { txs: number; n: number }[])[0]!;
    expect(n).toBe(16);
    expect(txs, "the 15 queued events shared one transaction").toBeLessThanOrEqual(2);
    expect((await verifyChain()).ok).toBe(true);
  });

  it("fails every writer of a batch whose session dies before its commit, and writes none of them", async () => {
    const action = `killed.${randomUUID()}`;
    let pending: Promise<number>[] = [];
    await withChainLockHeld(async (other) => {
      pending = Array.from({ length: 8 }, () => record({ actor, action, outcome: "allowed", info }));
      for (const p of pending) p.catch(() => {}); // settled below, after the kill
      for (let i = 0; i < 50; i++) {
        const { rows } = await other.query(
          "select pid from pg_locks where locktype = 'advisory' and not granted and objid = $1::bigint % 4294967296",
          [CHAIN_LOCK],
        );
        if (rows.length > 0) {
          await other.query("select pg_terminate_backend($1)", [rows[0].pid]);
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    const results = await Promise.allSettled(pending);
    const fulfilled = results.filter((r) => r.status === "fulfilled").length;
    const { rows } = await db.execute(sql`select count(*)::int as n from audit_events where action = ${action}`);
    // The killed statement carried the first event; the others either rode on it (and failed with it) or went in
    // the next statement on a healthy connection. Never an answer without its row, never a row without its answer.
    expect((rows as { n: number }[])[0]!.n).toBe(fulfilled);
    expect(results.some((r) => r.status === "rejected")).toBe(true);
    expect((await verifyChain()).ok).toBe(true);
  });

  it("lets one bad event fail alone when it shares a batch", async () => {
    const action = `bad.${randomUUID()}`;
    let pending: Promise<number>[] = [];
    await withChainLockHeld(async () => {
      pending = [
        record({ actor, action, outcome: "allowed", info }),
        record({ actor, action, outcome: "allowed", info }),
        record({ actor, action, outcome: "allowed", patientId: "not-a-uuid", info }),
        record({ actor, action, outcome: "allowed", info }),
      ];
      for (const p of pending) p.catch(() => {}); // settled below
      await new Promise((r) => setTimeout(r, 100));
    });
    const results = await Promise.allSettled(pending);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect((await verifyChain()).ok).toBe(true);
  });
});

describe("production grants", () => {
  /** Runs as the nexus_app role (created by the migration), in a transaction rolled back afterwards. */
  async function asAppRole(statement: ReturnType<typeof sql>): Promise<string> {
    try {
      await db.transaction(async (tx) => {
        await tx.execute(sql`set local role nexus_app`);
        await tx.execute(statement);
        throw new Error("allowed");
      });
    } catch (e) {
      return String((e as { cause?: Error }).cause?.message ?? (e as Error).message);
    }
    return "";
  }

  it("the application role may read and append, never update, delete or truncate the trail", async () => {
    const [id] = await someEvents(1);
    expect(await asAppRole(sql`select count(*) from audit_events`)).toBe("allowed");
    // Appending goes through the chain's function only (issue 11.6): a direct INSERT could forge a back-dated row.
    expect(
      await asAppRole(sql`insert into audit_events (at, action, outcome, prev_hash, hash) values (now(), 'grant.test', 'allowed', 'a', 'b')`),
    ).toMatch(/permission denied/);
    expect(await asAppRole(sql`select nexus_audit_append_many('[{"action":"grant.test","outcome":"allowed"}]'::jsonb)`)).toBe("allowed");
    expect(
      await asAppRole(sql`select nexus_audit_append(null, null, null, 'grant.test', null, null, null, 'allowed', null, null, null, null, null)`),
    ).toBe("allowed");
    expect(await asAppRole(sql`update audit_events set reason = 'x' where id = ${id}`)).toMatch(/permission denied/);
    expect(await asAppRole(sql`delete from audit_events where id = ${id}`)).toMatch(/permission denied/);
    expect(await asAppRole(sql`truncate audit_events`)).toMatch(/permission denied/);
    expect(await asAppRole(sql`delete from audit_archives`)).toMatch(/permission denied/);
    expect(await asAppRole(sql`insert into audit_archives (period_end, first_id, last_id, count, first_prev_hash, last_hash, file_name, file_sha256) values (now(), 1, 1, 1, 'a', 'b', 'c', 'd')`)).toMatch(/permission denied/);
    expect(await asAppRole(sql`select nexus_audit_seal_and_prune(1, 1, 'a', 'b', now(), 'f', 's', 'x')`)).toMatch(/permission denied/);
    expect(await asAppRole(sql`delete from consent_history`)).toMatch(/permission denied/);
  });
});

describe("canonical JSON", () => {
  it("sorts keys at every depth and writes dates in ISO 8601", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: null }], c: new Date(0) } })).toBe(
      '{"a":{"c":"1970-01-01T00:00:00.000Z","d":[2,{"y":null,"z":1}]},"b":1}',
    );
  });
});
