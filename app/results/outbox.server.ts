/**
 * Pushing results to the PACS (issue 17.4, PACS_PUSH): a durable outbox. When a reading makes an exam final, the
 * same transaction queues its reading SR (and, when the exam AI has read DICOM views, its CAD SR) in `result_outbox`
 * — identifiers only. A worker (started by app/boot.server.ts) claims due rows, rebuilds each SR from the database,
 * sends it by C-STORE (app/dimse/scu.server.ts) and records every attempt in the audit trail (`result.push`, with
 * its outcome). A failure is retried with exponential back-off; after PACS_PUSH_ATTEMPTS the row is `failed`.
 * Claiming takes a lease (`next_attempt_at` moved ahead under `FOR UPDATE SKIP LOCKED`), so replicas never send the
 * same row at once, and a process killed mid-send leaves the row to be retried once the lease ends.
 */
import { and, asc, desc, eq, inArray, lte } from "drizzle-orm";
import { record } from "../audit/audit.server";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { resultOutbox } from "../db/schema";
import { parseDestination, storeOnce, type PacsDestination } from "../dimse/scu.server";
import { HttpError } from "../http/errors.server";
import { OUTBOX_STATUSES } from "../vocabulary";
import { buildCadSr, buildReadingSr, finalResult } from "./results.server";

/** How long a claimed row is reserved for its sender (one association's timeouts, with room to spare). */
const LEASE_MS = 5 * 60_000;
/** Longest wait between two attempts. */
const MAX_BACKOFF_MS = 60 * 60_000;

export function destination(): PacsDestination | null {
  return config.PACS_PUSH ? parseDestination(config.PACS_PUSH, config.DICOM_AE_TITLE) : null;
}

/** What the operations page says about PACS_PUSH: where reports go (and as which AE), or null when unset. */
export function pushConfiguration(): { destination: string; callingAe: string } | null {
  const to = destination();
  return to ? { destination: `${to.calledAe}@${to.host}:${to.port}`, callingAe: to.callingAe } : null;
}

export type OutboxRow = typeof resultOutbox.$inferSelect;

/** Claims up to `limit` due rows (a lease of LEASE_MS): the rows this sender now owns. */
async function claimDue(limit: number): Promise<OutboxRow[]> {
  return db.transaction(async (tx) => {
    const due = await tx
      .select({ id: resultOutbox.id })
      .from(resultOutbox)
      .where(and(eq(resultOutbox.status, "pending"), lte(resultOutbox.nextAttemptAt, new Date())))
      .orderBy(asc(resultOutbox.nextAttemptAt))
      .limit(limit)
      .for("update", { skipLocked: true });
    if (due.length === 0) return [];
    return tx
      .update(resultOutbox)
      .set({ nextAttemptAt: new Date(Date.now() + LEASE_MS), updatedAt: new Date() })
      .where(inArray(resultOutbox.id, due.map((d) => d.id)))
      .returning();
  });
}

const backoff = (attempts: number) => Math.min(config.PACS_PUSH_BACKOFF_MS * 2 ** (attempts - 1), MAX_BACKOFF_MS);

/** Rebuilds the row's SR from the database; null when there is nothing to send any more (erased, AI gone). */
async function build(row: OutboxRow) {
  try {
    const result = await finalResult(row.examId);
    if (result.patient.erased) return null;
    return row.kind === "cad_sr" ? await buildCadSr(result) : buildReadingSr(result);
  } catch (err) {
    if (err instanceof HttpError && err.status < 500) return null;
    throw err;
  }
}

/** One attempt for one claimed row: build, send, audit, then record the outcome on the row. */
async function attempt(row: OutboxRow, to: PacsDestination): Promise<void> {
  const number = row.attempts + 1;
  const target = `${to.calledAe}@${to.host}:${to.port}`;
  const audit = (outcome: "allowed" | "denied" | "error", reason: string) =>
    record({
      actor: null,
      action: "result.push",
      outcome,
      resource: { type: "exam", id: row.examId },
      patientId: row.patientId,
      reason,
      purpose: "TREAT",
      info: { requestId: row.id, ip: null, userAgent: null },
    });
  let sr: Awaited<ReturnType<typeof build>> | undefined;
  let outcome: { ok: boolean; detail: string };
  try {
    sr = await build(row);
  } catch (err) {
    sr = undefined;
    outcome = { ok: false, detail: `build: ${(err as Error).message}` };
  }
  if (sr === null) {
    await audit("denied", `${row.kind} → ${target} : plus rien à envoyer (résultat effacé ou non définitif), envoi annulé`);
    await db.update(resultOutbox).set({ status: "cancelled", updatedAt: new Date() }).where(eq(resultOutbox.id, row.id));
    return;
  }
  if (sr) {
    outcome = await storeOnce(sr.bytes, to);
    sr.bytes.fill(0);
  }
  const { ok, detail } = outcome!;
  const sopInstanceUid = sr?.sopInstanceUid ?? row.sopInstanceUid;
  const giveUp = !ok && number >= config.PACS_PUSH_ATTEMPTS;
  const status = ok ? "sent" : giveUp ? "failed" : "pending";
  const then = ok ? "" : giveUp ? ", abandon" : `, nouvel essai dans ${Math.round(backoff(number) / 1000)} s`;
  await audit(
    ok ? "allowed" : "error",
    `${row.kind} ${sopInstanceUid ?? "?"} → ${target}, tentative ${number}/${config.PACS_PUSH_ATTEMPTS} : ${detail}${then}`,
  );
  await db
    .update(resultOutbox)
    .set({
      status,
      attempts: number,
      sopInstanceUid,
      lastError: ok ? null : detail.slice(0, 500),
      nextAttemptAt: status === "pending" ? new Date(Date.now() + backoff(number)) : new Date(),
      updatedAt: new Date(),
      ...(ok ? { sentAt: new Date() } : {}),
    })
    .where(eq(resultOutbox.id, row.id));
}

/** Sends every due row once (each to the destination it was queued for); the number of rows attempted. */
export async function pushDue(limit = 8): Promise<number> {
  const rows = await claimDue(limit);
  for (const row of rows) {
    const to = parseDestination(row.destination, config.DICOM_AE_TITLE);
    if (to) await attempt(row, to);
    else await db.update(resultOutbox).set({ status: "failed", lastError: "destination illisible", updatedAt: new Date() }).where(eq(resultOutbox.id, row.id));
  }
  return rows.length;
}

/** The push worker: polls every PACS_PUSH_POLL_MS while PACS_PUSH is set; `stop()` ends it. */
export function startPushWorker(): { stop(): void } | null {
  if (!destination()) return null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const tick = async () => {
    try {
      // Keep going while rows are due (a backlog after an outage), then wait for the next poll.
      while (!stopped && (await pushDue()) > 0);
    } catch (err) {
      console.warn(`[pacs-push] ${(err as Error).message}`);
    }
    if (!stopped) timer = setTimeout(() => void tick(), config.PACS_PUSH_POLL_MS);
  };
  timer = setTimeout(() => void tick(), 0);
  timer.unref?.();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

export interface OutboxEntry {
  id: string;
  examId: string;
  patientId: string;
  kind: string;
  destination: string;
  status: string;
  attempts: number;
  nextAttemptAt: string | null;
  sopInstanceUid: string | null;
  lastError: string | null;
  /** When the last attempt ended (null before the first one, and after a retry reset the count). */
  lastAttemptAt: string | null;
  createdAt: string;
  sentAt: string | null;
}

export { OUTBOX_STATUSES };

/** The outbox for operations (identifiers and delivery state only), newest first. */
export async function listOutbox(status: (typeof OUTBOX_STATUSES)[number] | null, limit = 200): Promise<OutboxEntry[]> {
  const rows = await db
    .select()
    .from(resultOutbox)
    .where(status ? eq(resultOutbox.status, status) : undefined)
    .orderBy(desc(resultOutbox.createdAt))
    .limit(limit);
  return rows.map((r) => ({
    id: r.id,
    examId: r.examId,
    patientId: r.patientId,
    kind: r.kind,
    destination: r.destination,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.status === "pending" ? r.nextAttemptAt.toISOString() : null,
    sopInstanceUid: r.sopInstanceUid,
    lastError: r.lastError,
    // Every attempt ends by writing its outcome (updated_at); a claim in progress has not ended yet.
    lastAttemptAt: r.attempts > 0 || r.status === "cancelled" ? r.updatedAt.toISOString() : null,
    createdAt: r.createdAt.toISOString(),
    sentAt: r.sentAt?.toISOString() ?? null,
  }));
}


/** The row's id, status and exam (for the policy and the audit), or null when there is no such row. */
export async function outboxEntry(id: string): Promise<{ id: string; status: string; examId: string; patientId: string } | null> {
  const [row] = await db
    .select({ id: resultOutbox.id, status: resultOutbox.status, examId: resultOutbox.examId, patientId: resultOutbox.patientId })
    .from(resultOutbox)
    .where(eq(resultOutbox.id, id));
  return row ?? null;
}

/**
 * An admin sends a `failed` report again (the PACS was fixed): the row is pending again with a fresh count of
 * attempts, due now. 409 `wrong_state` for a row that is not `failed`.
 */
export async function retryEntry(id: string): Promise<{ id: string; status: "pending" }> {
  const updated = await db
    .update(resultOutbox)
    .set({ status: "pending", attempts: 0, nextAttemptAt: new Date(), updatedAt: new Date() })
    .where(and(eq(resultOutbox.id, id), eq(resultOutbox.status, "failed")))
    .returning({ id: resultOutbox.id });
  if (updated.length === 0) {
    throw new HttpError(409, "wrong_state", "Seul un envoi abandonné (« failed ») peut être relancé.");
  }
  return { id, status: "pending" };
}
