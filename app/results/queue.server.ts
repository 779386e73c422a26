/**
 * Queuing a final exam's reports for the PACS (PACS_PUSH), inside the transaction that made it final
 * (app/reading/readings.server.ts): the outbox row commits with the result or not at all. Sending is
 * ./outbox.server.ts's worker. Kept apart from it so that the reading module imports nothing of the SR builders.
 */
import { and, eq, isNull, sql } from "drizzle-orm";
import { config } from "../config.server";
import type { db } from "../db/db.server";
import { images, predictions, resultOutbox } from "../db/schema";

export type ResultKind = "reading_sr" | "cad_sr";

type Tx = Parameters<Parameters<typeof db.transaction>[0]>[0];

/**
 * Called inside the transaction that made `examId` final: queues its reports for PACS_PUSH (nothing when unset).
 * The CAD SR is queued when the exam AI has read at least one DICOM view of the exam.
 */
export async function queueResults(tx: Tx, examId: string, patientId: string): Promise<ResultKind[]> {
  if (!config.PACS_PUSH) return [];
  const [ai] = await tx
    .select({ id: predictions.id })
    .from(predictions)
    .innerJoin(images, eq(images.id, predictions.imageId))
    .where(and(eq(images.examId, examId), isNull(predictions.erasedAt), isNull(images.erasedAt), sql`${images.sopInstanceUid} is not null`))
    .limit(1);
  const kinds: ResultKind[] = ai ? ["reading_sr", "cad_sr"] : ["reading_sr"];
  await tx
    .insert(resultOutbox)
    .values(kinds.map((kind) => ({ examId, patientId, kind, destination: config.PACS_PUSH! })))
    .onConflictDoNothing();
  return kinds;
}

