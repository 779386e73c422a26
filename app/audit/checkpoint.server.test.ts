/**
 * Signed checkpoints of the chain's head (issue 11.6): deleting the last events, or rewriting one and recomputing
 * every later hash, keeps the chain linked — and is caught by the checkpoint. Tampering runs as the database
 * superuser with the append-only triggers bypassed (what an attacker holding the database could do); every case
 * puts the rows back. The store is this file's own local directory.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { asc, gt, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { db } from "../db/db.server";
import { auditEvents } from "../db/schema";
import { LocalStore } from "../vault/local-store.server";
import { record, verifyChain } from "./audit.server";
import { chainHash } from "./chain.server";
import { CHECKPOINT_PREFIX, verifyAnchoredChain, writeCheckpoint } from "./checkpoint.server";

const dir = mkdtempSync(path.join(tmpdir(), "nexus-checkpoints-"));
const store = new LocalStore(dir);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const info = { requestId: "checkpoint-test", ip: "127.0.0.1", userAgent: "vitest" };
const actor = { id: randomUUID(), role: "doctor" as const, name: "Dr Checkpoint" };
const events = async (n: number) => {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(await record({ actor, action: "checkpoint.test", outcome: "allowed", info }));
  return ids;
};

async function asSuperuser(fn: (tx: Parameters<Parameters<typeof db.transaction>[0]>[0]) => Promise<unknown>) {
  await db.transaction(async (tx) => {
    await tx.execute(sql`set local session_replication_role = replica`);
    await fn(tx);
  });
}

describe("audit checkpoints", () => {
  it("certify the head; later events still verify against it", async () => {
    await store.ensureReady();
    await events(3);
    const cp = await writeCheckpoint(store);
    expect(cp).not.toBeNull();
    await events(2);
    const report = await verifyAnchoredChain(store);
    expect(report.ok).toBe(true);
    expect(report.checkpoint).toMatchObject({ ok: true, invalid: 0, checkpoint: { lastId: cp!.lastId } });
  });

  it("catch the deletion of the last events, which the chain alone does not", async () => {
    const ids = await events(3);
    const cp = await writeCheckpoint(store);
    expect(cp!.lastId).toBe(ids[2]);
    const tail = await db.select().from(auditEvents).where(gt(auditEvents.id, ids[0]!)).orderBy(asc(auditEvents.id));
    await asSuperuser((tx) => tx.delete(auditEvents).where(gt(auditEvents.id, ids[0]!)));
    try {
      expect((await verifyChain()).ok, "the chain alone still links").toBe(true);
      const report = await verifyAnchoredChain(store);
      expect(report).toMatchObject({ ok: false, firstBrokenId: ids[2], checkpoint: { ok: false, problem: "missing" } });
    } finally {
      await asSuperuser((tx) => tx.insert(auditEvents).values(tail));
    }
    expect((await verifyAnchoredChain(store)).ok).toBe(true);
  });

  it("catch a rewritten event whose later hashes were all recomputed", async () => {
    const ids = await events(3);
    await writeCheckpoint(store);
    const rows = await db.select().from(auditEvents).where(gt(auditEvents.id, ids[0]! - 1)).orderBy(asc(auditEvents.id));
    // Rewrite the first of them and re-chain every later row, as an attacker with the hashing code would.
    const forged = rows.map((r) => ({ ...r }));
    forged[0]!.reason = "rewritten";
    for (let i = 0; i < forged.length; i++) {
      if (i > 0) forged[i]!.prevHash = forged[i - 1]!.hash;
      forged[i]!.hash = chainHash(forged[i]!.prevHash, forged[i]!);
    }
    const replace = async (values: typeof rows) =>
      asSuperuser(async (tx) => {
        await tx.delete(auditEvents).where(gt(auditEvents.id, ids[0]! - 1));
        await tx.insert(auditEvents).values(values);
      });
    await replace(forged);
    try {
      expect((await verifyChain()).ok, "the recomputed chain links").toBe(true);
      const report = await verifyAnchoredChain(store);
      expect(report).toMatchObject({ ok: false, checkpoint: { ok: false, problem: "rewritten" } });
    } finally {
      await replace(rows);
    }
    expect((await verifyAnchoredChain(store)).ok).toBe(true);
  });

  it("never trust a checkpoint without the key's signature", async () => {
    const ids = await events(1);
    const fake = { version: 1, lastId: ids[0]! + 1000, hash: "0".repeat(64), at: new Date().toISOString(), mac: "ab".repeat(32) };
    const key = `${CHECKPOINT_PREFIX}${String(fake.lastId).padStart(20, "0")}.json`;
    await store.put(key, Readable.from([Buffer.from(JSON.stringify(fake))]));
    try {
      const report = await verifyAnchoredChain(store);
      expect(report.ok).toBe(false);
      expect(report.checkpoint.invalid).toBe(1);
      expect(report.checkpoint.checkpoint!.lastId, "the newest valid one is checked instead").toBeLessThan(fake.lastId);
    } finally {
      await store.delete(key);
    }
  });
});
