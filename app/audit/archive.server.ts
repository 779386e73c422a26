/**
 * Archiving a closed period of the audit trail: export, seal, then prune — never the other way round.
 *
 * 1. The whole chain is verified; a broken chain is never archived.
 * 2. The period's events (every event up to the last one recorded before the cutoff, after the previous archive)
 *    are written in id order to `audit-<first>-<last>.ndjson`, one JSON object per event with every column and both
 *    hashes, re-verified link by link while writing, fsynced, then renamed into place; the seal
 *    (`….seal.json`: count, first/last id, first prev_hash, last hash, SHA-256 of the file) is written next to it.
 * 3. `nexus_audit_seal_and_prune()` (drizzle/0004_audit_grants.sql), under the writers' chain lock, checks the
 *    period against the table, records the seal in `audit_archives` and deletes exactly the sealed rows — the only
 *    DELETE the append-only trigger lets through.
 * 4. The archive is recorded as an audit event of its own (`audit.archive`).
 *
 * The chain left in the table starts from the seal's last hash; `verifyChain()` checks it, and the seals' links
 * to one another. An archive file can be checked on its own at any time (`verifyArchiveFile`).
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { and, asc, desc, gt, lte, sql } from "drizzle-orm";
import { db } from "../db/db.server";
import { makeDirectoryDurably, renameDurably, syncPath, writeFileDurably } from "../durable-fs.server";
import { auditEvents } from "../db/schema";
import { auditArchives, type AuditArchive } from "./archive-table.server";
import { record, rowsOf, verifyChain, type AuditEventRow, type RequestInfo } from "./audit.server";
import { chainHash } from "./chain.server";

export const ARCHIVE_FORMAT = "nexus-audit-archive/1";

export class ArchiveError extends Error {}

export interface ArchivePlan {
  firstId: number;
  lastId: number;
  count: number;
  firstAt: Date;
  lastAt: Date;
  firstPrevHash: string;
  before: Date;
}

export interface ArchiveSeal {
  format: typeof ARCHIVE_FORMAT;
  file: string;
  sha256: string;
  count: number;
  firstId: number;
  lastId: number;
  firstAt: string;
  lastAt: string;
  firstPrevHash: string;
  lastHash: string;
  periodEnd: string;
  createdAt: string;
  createdBy: string;
}

export function listArchives(): Promise<AuditArchive[]> {
  return db.select().from(auditArchives).orderBy(desc(auditArchives.lastId));
}

async function latestArchive(): Promise<AuditArchive | null> {
  const [row] = await db.select().from(auditArchives).orderBy(desc(auditArchives.lastId)).limit(1);
  return row ?? null;
}

/** What archiving the events recorded before `before` would take; null when there is nothing to archive. */
export async function planArchive(before: Date): Promise<ArchivePlan | null> {
  const previous = await latestArchive();
  const floor = previous?.lastId ?? 0;
  // `at` grows with `id` (record()), so "recorded before the cutoff" is an id prefix of the table.
  const [last] = rowsOf<{ id: string | number | null }>(
    await db.execute(
      sql`select max(id) as id from audit_events where at = (select max(at) from audit_events where at < ${before})`,
    ),
  );
  const lastId = last?.id == null ? null : Number(last.id);
  if (lastId === null || lastId <= floor) return null;
  const [span] = rowsOf<{ count: string | number; first_id: string | number }>(
    await db.execute(sql`select count(*) as count, min(id) as first_id from audit_events where id > ${floor} and id <= ${lastId}`),
  );
  const firstId = Number(span!.first_id);
  const [first] = await db.select().from(auditEvents).where(sql`${auditEvents.id} = ${firstId}`);
  const [lastRow] = await db.select().from(auditEvents).where(sql`${auditEvents.id} = ${lastId}`);
  return {
    firstId,
    lastId,
    count: Number(span!.count),
    firstAt: first!.at,
    lastAt: lastRow!.at,
    firstPrevHash: first!.prevHash,
    before,
  };
}

/** One archived event: every column, dates in ISO 8601 (the same names as the API's events). */
export function archiveLine(row: AuditEventRow): string {
  return `${JSON.stringify({ ...row, at: row.at.toISOString() })}\n`;
}

function fileBase(plan: Pick<ArchivePlan, "firstId" | "lastId">) {
  const pad = (n: number) => String(n).padStart(12, "0");
  return `audit-${pad(plan.firstId)}-${pad(plan.lastId)}`;
}

/** Writes the period's events to `dir` and returns the seal (nothing is pruned here). */
export async function writeArchiveFile(plan: ArchivePlan, dir: string, createdBy: string): Promise<{ path: string; seal: ArchiveSeal }> {
  await makeDirectoryDurably(dir);
  const base = fileBase(plan);
  const file = path.join(dir, `${base}.ndjson`);
  const partial = `${file}.partial`;
  const out = createWriteStream(partial, { mode: 0o600 });
  const digest = createHash("sha256");
  const write = async (text: string) => {
    digest.update(text);
    if (!out.write(text)) await once(out, "drain");
  };
  let prevHash = plan.firstPrevHash;
  let count = 0;
  let cursor = plan.firstId - 1;
  let lastHash = plan.firstPrevHash;
  try {
    for (;;) {
      const rows = await db
        .select()
        .from(auditEvents)
        .where(and(gt(auditEvents.id, cursor), lte(auditEvents.id, plan.lastId)))
        .orderBy(asc(auditEvents.id))
        .limit(5000);
      for (const row of rows) {
        if (row.prevHash !== prevHash || row.hash !== chainHash(prevHash, row)) {
          throw new ArchiveError(`Chaîne rompue à l'événement #${row.id} : rien n'est archivé.`);
        }
        await write(archiveLine(row));
        prevHash = lastHash = row.hash;
        cursor = row.id;
        count++;
      }
      if (rows.length < 5000) break;
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    out.destroy();
    throw err;
  }
  if (count !== plan.count || cursor !== plan.lastId) {
    throw new ArchiveError(`La période a changé pendant l'export (${count} événements lus, ${plan.count} attendus) : relancez.`);
  }
  await syncPath(partial);
  await renameDurably(partial, file);
  const seal: ArchiveSeal = {
    format: ARCHIVE_FORMAT,
    file: path.basename(file),
    sha256: digest.digest("hex"),
    count,
    firstId: plan.firstId,
    lastId: plan.lastId,
    firstAt: plan.firstAt.toISOString(),
    lastAt: plan.lastAt.toISOString(),
    firstPrevHash: plan.firstPrevHash,
    lastHash,
    periodEnd: plan.before.toISOString(),
    createdAt: new Date().toISOString(),
    createdBy,
  };
  // Both durable before the caller deletes the archived events from the database.
  await writeFileDurably(`${file}.seal.json`, `${JSON.stringify(seal, null, 2)}\n`);
  return { path: file, seal };
}

export interface ArchiveResult {
  archiveId: number;
  file: string;
  seal: ArchiveSeal;
}

/**
 * Archives every event recorded before `before` (and after the previous archive): verify, export, seal, prune,
 * record. Throws ArchiveError (nothing pruned) when the chain is broken or the period changed underneath.
 */
export async function archivePeriod(options: { before: Date; dir: string; createdBy: string; info: RequestInfo }): Promise<ArchiveResult | null> {
  const plan = await planArchive(options.before);
  if (!plan) return null;
  try {
    const report = await verifyChain();
    if (!report.ok) throw new ArchiveError(`Chaîne rompue à l'événement #${report.firstBrokenId} : rien n'est archivé.`);
    const { path: file, seal } = await writeArchiveFile(plan, options.dir, options.createdBy);
    const [row] = rowsOf<{ id: string | number }>(
      await db.execute(sql`select nexus_audit_seal_and_prune(
        ${seal.lastId}::bigint, ${seal.count}::bigint, ${seal.firstPrevHash}, ${seal.lastHash},
        ${plan.before}::timestamptz, ${seal.file}, ${seal.sha256}, ${options.createdBy}) as id`),
    );
    const archiveId = Number(row!.id);
    await record({
      actor: null,
      action: "audit.archive",
      outcome: "allowed",
      resource: { type: "audit_archive", id: String(archiveId) },
      reason: `${seal.count} événements #${seal.firstId}–#${seal.lastId} archivés par ${options.createdBy} dans ${seal.file} (SHA-256 ${seal.sha256})`,
      info: options.info,
    });
    return { archiveId, file, seal };
  } catch (err) {
    const message = (err as { cause?: Error }).cause?.message ?? (err as Error).message;
    await record({
      actor: null,
      action: "audit.archive",
      outcome: "error",
      resource: { type: "audit_archive" },
      reason: `archivage refusé (${options.createdBy}) : ${message}`.slice(0, 1000),
      info: options.info,
    }).catch(() => undefined);
    if (err instanceof ArchiveError) throw err;
    throw new ArchiveError(message);
  }
}

export interface ArchiveFileReport {
  ok: boolean;
  count: number;
  problem?: string;
  seal?: ArchiveSeal;
}

/** Checks an archive file on its own: its seal, its SHA-256, its count and the hash chain inside it. */
export async function verifyArchiveFile(file: string): Promise<ArchiveFileReport> {
  let seal: ArchiveSeal;
  try {
    seal = JSON.parse(await readFile(`${file}.seal.json`, "utf8")) as ArchiveSeal;
  } catch {
    return { ok: false, count: 0, problem: `sceau illisible : ${file}.seal.json` };
  }
  const digest = createHash("sha256");
  const stream = createReadStream(file);
  stream.on("data", (chunk) => digest.update(chunk));
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let prevHash = seal.firstPrevHash;
  let count = 0;
  let lastId = 0;
  for await (const line of lines) {
    if (!line) continue;
    const raw = JSON.parse(line) as AuditEventRow & { at: string };
    const row = { ...raw, at: new Date(raw.at) };
    if (row.prevHash !== prevHash || row.hash !== chainHash(prevHash, row)) {
      return { ok: false, count, problem: `chaîne rompue à l'événement #${row.id}`, seal };
    }
    prevHash = row.hash;
    lastId = row.id;
    count++;
  }
  const sha256 = digest.digest("hex");
  if (sha256 !== seal.sha256) return { ok: false, count, problem: "empreinte SHA-256 différente du sceau", seal };
  if (count !== seal.count || lastId !== seal.lastId || prevHash !== seal.lastHash) {
    return { ok: false, count, problem: "nombre d'événements ou dernière empreinte différents du sceau", seal };
  }
  return { ok: true, count, seal };
}

