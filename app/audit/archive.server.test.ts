/**
 * Archiving a period: export → seal → prune, never the other way round; the chain left in the table still verifies
 * from the seal; nothing unsealed can be deleted; a tampered archive file or seal is detected.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { db } from "../db/db.server";
import { auditEvents } from "../db/schema";
import { auditArchives } from "./archive-table.server";
import { ArchiveError, archivePeriod, listArchives, planArchive, verifyArchiveFile } from "./archive.server";
import { getEvent, record, searchEvents, verifyChain } from "./audit.server";

const info = { requestId: "archive-test", ip: "127.0.0.1", userAgent: "vitest" };
const actor = { id: randomUUID(), role: "doctor" as const, name: "Dr Archive" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(path.join(tmpdir(), "nexus-archive-"));
const cause = (e: unknown) => String((e as { cause?: Error }).cause?.message ?? (e as Error).message);

async function events(n: number, action = "archive.test"): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(await record({ actor, action, outcome: "allowed", resource: { type: "patient", id: randomUUID() }, info }));
  return ids;
}

describe("audit archive", () => {
  let before: Date;
  let kept: number[];
  let file: string;

  it("exports, seals and only then prunes a closed period; the rest of the chain still verifies", async () => {
    const old = await events(5);
    await sleep(5);
    before = new Date();
    await sleep(5);
    kept = await events(2);

    const plan = (await planArchive(before))!;
    expect(plan.lastId).toBe(old[4]);
    expect(plan.count).toBeGreaterThanOrEqual(5);

    const result = (await archivePeriod({ before, dir, createdBy: "vitest", info }))!;
    file = result.file;
    expect(result.seal).toMatchObject({ lastId: old[4], count: plan.count, firstId: plan.firstId });
    expect(await verifyArchiveFile(file)).toMatchObject({ ok: true, count: plan.count });
    const lines = readFileSync(file, "utf8").trim().split("\n");
    expect(lines).toHaveLength(plan.count);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ id: old[4], action: "archive.test", hash: result.seal.lastHash });

    for (const id of old) expect(await getEvent(id)).toBeNull();
    for (const id of kept) expect(await getEvent(id)).not.toBeNull();
    const [seal] = await db.select().from(auditArchives).where(eq(auditArchives.id, result.archiveId));
    expect(seal).toMatchObject({ lastId: old[4], lastHash: result.seal.lastHash, fileSha256: result.seal.sha256, count: plan.count });

    const report = await verifyChain();
    expect(report).toMatchObject({ ok: true });
    expect(report.archives).toBeGreaterThanOrEqual(1);

    // The archive itself is an audit event.
    const logged = await searchEvents({ action: "audit.archive", limit: 1 });
    expect(logged.events[0]).toMatchObject({ outcome: "allowed", resourceType: "audit_archive", resourceId: String(result.archiveId) });
  });

  it("has nothing more to archive for the same cutoff", async () => {
    expect(await planArchive(before)).toBeNull();
    expect(await archivePeriod({ before, dir, createdBy: "vitest", info })).toBeNull();
  });

  it("never deletes an unsealed row, even with the prune variable set by hand", async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.execute(sql`select set_config('nexus.audit_prune_upto', '999999999999', true)`);
        await tx.delete(auditEvents).where(eq(auditEvents.id, kept[0]!));
      }),
    ).rejects.toSatisfy((e) => /append-only/.test(cause(e)));
    expect(await getEvent(kept[0]!)).not.toBeNull();
  });

  it("refuses a seal that does not match the table (count, last hash, period already archived)", async () => {
    const [latest] = await listArchives();
    const call = (lastId: number, count: number, firstPrev: string, lastHash: string) =>
      db.execute(sql`select nexus_audit_seal_and_prune(${lastId}::bigint, ${count}::bigint, ${firstPrev}, ${lastHash}, now(), 'f', 's', 'vitest')`);
    const last = await getEvent(kept[1]!);
    await expect(call(kept[1]!, 999, latest!.lastHash, last!.hash)).rejects.toSatisfy((e) => /events in the period/.test(cause(e)));
    await expect(call(latest!.lastId, 1, latest!.lastHash, latest!.lastHash)).rejects.toSatisfy((e) => /already archived/.test(cause(e)));
    expect((await verifyChain()).ok).toBe(true);
  });

  it("detects a tampered archive file", async () => {
    const copy = `${file}.copy`;
    const text = readFileSync(file, "utf8").replace('"archive.test"', '"archive.tampered"');
    writeFileSync(copy, text);
    writeFileSync(`${copy}.seal.json`, readFileSync(`${file}.seal.json`));
    expect(await verifyArchiveFile(copy)).toMatchObject({ ok: false });
  });

  it("detects a tampered seal in the database", async () => {
    const [latest] = await listArchives();
    await db.transaction(async (tx) => {
      await tx.execute(sql`set local session_replication_role = replica`);
      await tx.execute(sql`update audit_archives set first_prev_hash = ${"e".repeat(64)} where id = ${latest!.id}`);
    });
    expect(await verifyChain()).toMatchObject({ ok: false, brokenArchiveId: latest!.id });
    await db.transaction(async (tx) => {
      await tx.execute(sql`set local session_replication_role = replica`);
      await tx.execute(sql`update audit_archives set first_prev_hash = ${latest!.firstPrevHash} where id = ${latest!.id}`);
    });
    expect((await verifyChain()).ok).toBe(true);
  });

  it("refuses to archive a broken chain (nothing is pruned)", async () => {
    const [target] = await events(1);
    await sleep(5);
    const cutoff = new Date();
    await db.transaction(async (tx) => {
      await tx.execute(sql`set local session_replication_role = replica`);
      await tx.execute(sql`update audit_events set reason = 'forged' where id = ${target}`);
    });
    await expect(archivePeriod({ before: cutoff, dir, createdBy: "vitest", info })).rejects.toBeInstanceOf(ArchiveError);
    expect(await getEvent(kept[0]!)).not.toBeNull();
    await db.transaction(async (tx) => {
      await tx.execute(sql`set local session_replication_role = replica`);
      await tx.execute(sql`update audit_events set reason = null where id = ${target}`);
    });
    expect((await verifyChain()).ok).toBe(true);
  });

  it("chains new events from the seal once every row is archived", async () => {
    await sleep(5);
    const all = new Date();
    await sleep(5);
    const result = (await archivePeriod({ before: all, dir, createdBy: "vitest", info }))!;
    expect(result.seal.lastId).toBeGreaterThanOrEqual(kept[1]!);
    // The archive's own event was recorded after the prune: it is the first row of the table and links to the seal.
    const [first] = await db.select().from(auditEvents).orderBy(auditEvents.id).limit(1);
    expect(first!.prevHash).toBe(result.seal.lastHash);
    await events(2, "after.archive");
    expect(await verifyChain()).toMatchObject({ ok: true });
    expect(await verifyArchiveFile(result.file)).toMatchObject({ ok: true });
  });
});
