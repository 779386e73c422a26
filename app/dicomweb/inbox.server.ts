/**
 * The reconciliation queue: instances that arrived for a patient Nexus does not know (see ingest.server.ts). A
 * doctor reads the header's identity (decrypted on demand, never stored in clear), then attaches the instance to a
 * patient of their care team — the upload path runs again, identity check included — or rejects it (its data key
 * is deleted first, then the object: crypto-shredding).
 */
import { and, count, desc, eq, isNull, sql } from "drizzle-orm";
import type { Actor } from "../accounts/actor";
import { db } from "../db/db.server";
import { dicomInbox, patients } from "../db/schema";
import type { DicomHeaders } from "../exams/dicom-header.server";
import { HttpError } from "../http/errors.server";
import { vault } from "../vault/instance.server";
import { storeForPatient, type IdentityOverride } from "./ingest.server";

type Entry = typeof dicomInbox.$inferSelect;

const gone = () => new HttpError(404, "not_found", "Entrée de la file de rapprochement inconnue ou déjà traitée.");

async function pendingEntry(id: string): Promise<Entry> {
  const [row] = await db.select().from(dicomInbox).where(and(eq(dicomInbox.id, id), eq(dicomInbox.status, "pending")));
  if (!row || !row.wrappedKey || !row.keyId) throw gone();
  return row;
}

function identityOf(row: Entry): DicomHeaders["identity"] {
  if (!row.encryptedIdentity || !row.keyId || !row.wrappedKey) return {};
  return JSON.parse(vault.openSealedText(row.id, row.keyId, row.wrappedKey, row.encryptedIdentity)) as DicomHeaders["identity"];
}

/** Read on every doctor's page (the navigation's badge): a prepared statement. */
const pendingRows = db.select({ n: count() }).from(dicomInbox).where(eq(dicomInbox.status, sql.placeholder("status"))).prepare("nexus_inbox_pending_count");

/** How many instances wait in the queue (the doctors' navigation badge: a number, no identity). */
export async function pendingCount(): Promise<number> {
  const [row] = await pendingRows.execute({ status: "pending" });
  return row?.n ?? 0;
}

export async function listInbox() {
  const rows = await db.select().from(dicomInbox).where(eq(dicomInbox.status, "pending")).orderBy(desc(dicomInbox.receivedAt)).limit(200);
  return rows.map((r) => ({
      id: r.id,
      receivedAt: r.receivedAt.toISOString(),
      source: r.source,
      callingAe: r.callingAe,
      studyInstanceUid: r.studyInstanceUid,
      sopInstanceUid: r.sopInstanceUid,
      modality: r.modality,
      studyDate: r.studyDate,
      size: r.size,
    identity: identityOf(r),
  }));
}

/** The object of a resolved entry, once its wrapped key is gone from the row (from then on it is unreadable). */
async function shred(storageKey: string) {
  await vault.deleteSealed(storageKey);
}

export async function rejectEntry(id: string, doctorId: string): Promise<void> {
  const [row] = await db
    .update(dicomInbox)
    .set({ status: "rejected", wrappedKey: null, keyId: null, encryptedIdentity: null, resolvedBy: doctorId, resolvedAt: new Date() })
    .where(and(eq(dicomInbox.id, id), eq(dicomInbox.status, "pending")))
    .returning({ storageKey: dicomInbox.storageKey });
  if (!row) throw gone();
  await shred(row.storageKey);
}

/**
 * Attaches an entry to a patient: the same path as an upload (identity check, vault, exam). A mismatch is a 409
 * `identity_mismatch` naming the fields (the entry stays queued), unless the browser form's `override` carries the
 * doctor's reason (the API offers none).
 */
export async function attachEntry(id: string, patientId: string, doctor: Actor, override?: IdentityOverride): Promise<{ imageId: string }> {
  const doctorId = doctor.id;
  const row = await pendingEntry(id);
  const [patient] = await db.select().from(patients).where(and(eq(patients.id, patientId), isNull(patients.erasedAt)));
  if (!patient) throw new HttpError(404, "patient_not_found", "Patient inconnu.");
  const { body, text } = await vault.openSealedStream(row.storageKey, row.id, row.keyId!, row.wrappedKey!, row.encryptedIdentity);
  const headers: DicomHeaders = {
    identity: text ? JSON.parse(text) : {},
    exam: {
      studyInstanceUid: row.studyInstanceUid ?? undefined,
      seriesInstanceUid: row.seriesInstanceUid ?? undefined,
      sopInstanceUid: row.sopInstanceUid ?? undefined,
      sopClassUid: row.sopClassUid ?? undefined,
      modality: row.modality ?? undefined,
      studyDate: row.studyDate ?? undefined,
    },
  };
  // Laterality, view and the rest of the exam attributes are read again from the header by the filing step.
  const { readDicomHeaders } = await import("../exams/dicom-header.server");
  const chunks: Uint8Array[] = [];
  let length = 0;
  const iterator = body[Symbol.asyncIterator]();
  while (length < 1024 * 1024) {
    const next = await iterator.next();
    if (next.done) break;
    chunks.push(next.value);
    length += next.value.length;
  }
  const head = Buffer.concat(chunks);
  headers.exam = { ...headers.exam, ...readDicomHeaders(head).exam };
  const all = (async function* () {
    yield head;
    for (let n = await iterator.next(); !n.done; n = await iterator.next()) yield n.value;
  })();
  const image = await storeForPatient(doctor, patient, headers, all, override);
  await db
    .update(dicomInbox)
    .set({ status: "attached", patientId, imageId: image.id, wrappedKey: null, keyId: null, encryptedIdentity: null, resolvedBy: doctorId, resolvedAt: new Date() })
    .where(eq(dicomInbox.id, id));
  await shred(row.storageKey);
  return { imageId: image.id };
}
