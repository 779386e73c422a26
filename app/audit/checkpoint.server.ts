/**
 * Signed checkpoints of the audit chain's head, kept outside the database (issue 11.6).
 *
 * The hash chain shows a row changed or removed *inside* the chain, but not its tail: someone who can write the
 * database can delete the last rows, or rewrite one row and recompute every later hash, and the chain still links.
 * So, every AUDIT_CHECKPOINT_SECONDS, each server writes the head it sees — last id and hash — signed with
 * HMAC-SHA256 under a key the database does not hold (AUDIT_CHECKPOINT_KEY, or a key generated once into DATA_DIR
 * on the embedded default, like the session secret), to the object store (`audit-checkpoints/<id>.json`, the last
 * KEEP of them) and to the operational log. Verification reads the newest valid checkpoint and requires the chain
 * to still hold that row with that hash (or a sealed archive to end on it): a deleted tail or a recomputed chain
 * no longer does.
 *
 * What this does not see: a change to events written after the newest checkpoint (at most one interval's worth),
 * and an attacker holding both the database and the checkpoint key.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { Readable } from "node:stream";
import { sql } from "drizzle-orm";
import { persistentSecret } from "../accounts/secrets.server";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { log } from "../log.server";
import { storeFromEnv } from "../vault/s3-store.server";
import { NotFoundError, type ObjectStore } from "../vault/store.server";
import { rowsOf, verifyChain, type ChainReport } from "./audit.server";

export const CHECKPOINT_PREFIX = "audit-checkpoints/";
/** Checkpoints kept in the store: older ones are superseded by any newer valid one. */
const KEEP = 100;

export interface Checkpoint {
  version: 1;
  lastId: number;
  hash: string;
  /** When it was taken (ISO 8601). */
  at: string;
  /** HMAC-SHA256 over the fields above, hex. */
  mac: string;
}

export interface CheckpointCheck {
  /** The checkpoint checked (the newest with a valid signature), or null when there is none yet. */
  checkpoint: { lastId: number; at: string } | null;
  ok: boolean;
  /** Why it failed: the certified row is missing, or no longer has the certified hash. */
  problem?: "missing" | "rewritten";
  /** Checkpoints found whose signature is wrong (forged or written with another key): reported, never trusted. */
  invalid: number;
}

let key: string | undefined;
function checkpointKey(): string {
  key ??= persistentSecret(config.AUDIT_CHECKPOINT_KEY, config.DATA_DIR, "audit-checkpoint-key");
  return key;
}

let store: ObjectStore | undefined;
/** The object store of the vault's configuration (S3 or DATA_DIR/objects), without the vault's keys. */
export function checkpointStore(): ObjectStore {
  store ??= storeFromEnv(process.env, config.DATA_DIR);
  return store;
}

const objectKey = (lastId: number) => `${CHECKPOINT_PREFIX}${String(lastId).padStart(20, "0")}.json`;

function mac(lastId: number, hash: string, at: string): string {
  return createHmac("sha256", checkpointKey()).update(`nexus-audit-checkpoint:v1:${lastId}:${hash}:${at}`).digest("hex");
}

function validMac(cp: Checkpoint): boolean {
  const expected = Buffer.from(mac(cp.lastId, cp.hash, cp.at), "hex");
  const given = Buffer.from(typeof cp.mac === "string" ? cp.mac : "", "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The chain's head as the database has it now: the last row, else the last archive seal; null when empty. */
async function head(): Promise<{ lastId: number; hash: string } | null> {
  const [row] = rowsOf<{ id: string | number; hash: string }>(
    await db.execute(sql`
      (select id, hash from audit_events order by id desc limit 1)
      union all
      (select last_id as id, last_hash as hash from audit_archives order by last_id desc limit 1)
      order by id desc limit 1`),
  );
  return row ? { lastId: Number(row.id), hash: row.hash } : null;
}

let lastWritten = 0;

/** Writes a checkpoint of the current head, unless this process already certified it. Returns it, or null. */
export async function writeCheckpoint(target: ObjectStore = checkpointStore()): Promise<Checkpoint | null> {
  const current = await head();
  if (!current || current.lastId <= lastWritten) return null;
  const at = new Date().toISOString();
  const checkpoint: Checkpoint = { version: 1, lastId: current.lastId, hash: current.hash, at, mac: mac(current.lastId, current.hash, at) };
  await target.put(objectKey(checkpoint.lastId), Readable.from([Buffer.from(JSON.stringify(checkpoint))]));
  lastWritten = checkpoint.lastId;
  log.info({ auditCheckpoint: checkpoint }, "audit checkpoint");
  const keys = await checkpointKeys(target);
  for (const old of keys.slice(0, Math.max(0, keys.length - KEEP))) await target.delete(old);
  return checkpoint;
}

async function checkpointKeys(target: ObjectStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const k of target.list(CHECKPOINT_PREFIX)) if (k.endsWith(".json")) keys.push(k);
  return keys.sort();
}

async function readCheckpoint(target: ObjectStore, k: string): Promise<Checkpoint | null> {
  try {
    const chunks: Uint8Array[] = [];
    for await (const c of await target.get(k)) chunks.push(c);
    const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Checkpoint;
    return Number.isSafeInteger(parsed.lastId) && typeof parsed.hash === "string" && typeof parsed.at === "string" ? parsed : null;
  } catch (err) {
    if (err instanceof NotFoundError || err instanceof SyntaxError) return null;
    throw err;
  }
}

/** The newest checkpoint with a valid signature, and how many newer ones had a wrong one. */
export async function latestCheckpoint(target: ObjectStore = checkpointStore()): Promise<{ checkpoint: Checkpoint | null; invalid: number }> {
  const keys = await checkpointKeys(target);
  let invalid = 0;
  for (let i = keys.length - 1; i >= 0; i--) {
    const cp = await readCheckpoint(target, keys[i]!);
    if (cp && validMac(cp)) return { checkpoint: cp, invalid };
    invalid++;
  }
  return { checkpoint: null, invalid };
}

/** Checks the database's chain against the newest signed checkpoint. */
export async function checkAgainstCheckpoint(target: ObjectStore = checkpointStore()): Promise<CheckpointCheck> {
  const { checkpoint, invalid } = await latestCheckpoint(target);
  if (!checkpoint) return { checkpoint: null, ok: invalid === 0, invalid };
  const summary = { lastId: checkpoint.lastId, at: checkpoint.at };
  const [row] = rowsOf<{ hash: string }>(
    await db.execute(sql`
      (select hash from audit_events where id = ${checkpoint.lastId})
      union all
      (select last_hash as hash from audit_archives where last_id = ${checkpoint.lastId})
      limit 1`),
  );
  if (row) {
    const ok = row.hash === checkpoint.hash;
    return { checkpoint: summary, ok: ok && invalid === 0, invalid, ...(ok ? {} : { problem: "rewritten" as const }) };
  }
  // Archived and pruned inside a sealed period (the seal was checked against the chain when it was made).
  const [sealed] = rowsOf<{ n: number | string }>(
    await db.execute(sql`select count(*) as n from audit_archives where first_id <= ${checkpoint.lastId} and last_id >= ${checkpoint.lastId}`),
  );
  if (Number(sealed!.n) > 0) return { checkpoint: summary, ok: invalid === 0, invalid };
  return { checkpoint: summary, ok: false, invalid, problem: "missing" };
}

export type AnchoredReport = ChainReport & { checkpoint: CheckpointCheck };

/**
 * The full verification: the hash chain (verifyChain), then its head against the newest signed checkpoint. A chain
 * that links but lost its certified tail, or was recomputed, is broken at the checkpoint's id.
 */
export async function verifyAnchoredChain(target: ObjectStore = checkpointStore()): Promise<AnchoredReport> {
  const report = await verifyChain();
  const checkpoint = await checkAgainstCheckpoint(target);
  if (report.ok && !checkpoint.ok) {
    return { ...report, ok: false, firstBrokenId: checkpoint.checkpoint?.lastId, checkpoint };
  }
  return { ...report, checkpoint };
}

let timer: NodeJS.Timeout | undefined;

/** Starts the periodic checkpoints (and writes one now). Failures are logged, never fatal. */
export function startCheckpoints(seconds = config.AUDIT_CHECKPOINT_SECONDS): void {
  if (timer) return;
  const tick = () =>
    void writeCheckpoint().catch((err: Error) => log.warn({ err: err.message }, "audit checkpoint not written"));
  tick();
  timer = setInterval(tick, seconds * 1000);
  timer.unref();
}
