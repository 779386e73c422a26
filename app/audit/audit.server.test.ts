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
import { record, searchEvents, verifyChain } from "./audit.server";
import { canonicalJson } from "./chain.server";

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
    expect(after).toEqual({ ok: true, checked: before.checked + 40 });
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

  const columns = ["at", "actor_id", "actor_name", "action", "resource_id", "outcome", "reason", "ip", "hash", "prev_hash"] as const;
  for (const column of columns) {
    it(`reports the first broken row when ${column} is tampered with`, async () => {
      const [, target] = await someEvents(3);
      const [row] = await db.select().from(auditEvents).where(eq(auditEvents.id, target!));
      const forged: Record<string, unknown> = {
        at: sql`at + interval '1 second'`,
        actor_id: sql`${randomUUID()}::uuid`,
        actor_name: "Someone Else",
        action: "patient.list",
        resource_id: "forged",
        outcome: sql`'denied'::audit_outcome`,
        reason: "rewritten",
        ip: "10.0.0.1",
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

describe("canonical JSON", () => {
  it("sorts keys at every depth and writes dates in ISO 8601", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: null }], c: new Date(0) } })).toBe(
      '{"a":{"c":"1970-01-01T00:00:00.000Z","d":[2,{"y":null,"z":1}]},"b":1}',
    );
  });
});
