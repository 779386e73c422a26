/**
 * The vault: mammograms in, mammograms out, encrypted at rest.
 *
 * Upload: sniff the first bytes (type by content, pixel limit) → fresh data key → segmented AES-256-GCM while
 * streaming to the object store (stopping at the size limit) → metadata row with the wrapped key, in one
 * transaction; a failed row removes the object. Read: unwrap → fetch → verify and decrypt segment by segment.
 * Erasure: wrapped key deleted first (crypto-shredding), then the object, then the row marked.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from "node:crypto";
import { and, desc, eq, inArray, isNotNull, isNull, ne, notInArray, sql } from "drizzle-orm";
import { batchedReads } from "../db/batched-reads.server";
import { db } from "../db/db.server";
import { exams, images, patients, predictions, readings, users } from "../db/schema";
import { HttpError } from "../http/context.server";
import { isUuid } from "../http/params.server";
import { addTiming, type Timing } from "../http/timing.server";
import { decryptStream, encryptStream, FORMAT_VERSION, IntegrityError, segmentReads } from "./format.server";
import { generateDataKey, KeyringError, rewrapKey, unwrapKey, wrapKey, type Keyring } from "./keys.server";
import { DicomParseError, sniff, withinPixelLimit, type SniffResult } from "./sniff.server";
import { MAX_UPLOAD_BYTES, VAULT_MESSAGES, type VaultErrorCode } from "./messages";
import { NotFoundError, StorageUnavailableError, type ObjectStore } from "./store.server";

/**
 * Objects are read 48 segments (≈ 3 MiB) at a time, along the segments (no segment reassembled by a copy), into one
 * buffer per object (local store; S3 reads as the network delivers): decryptStream is told, and keeps nothing of a
 * chunk once it asks for the next. One 64 KiB read per segment cost ≈ 3× the reading time (one thread-pool round
 * trip each) and one chunk per segment through every layer downstream. Each local read is an open, a read and a close
 * handed to libuv's thread pool, and on these virtual machines every hand-over costs the main thread a few `futex`
 * calls: reads of 48 segments instead of 16 serve a 2 MiB image with 4 thread-pool operations instead of 11 (a 40 MiB
 * mammogram with 42 instead of 124), ≈ 15 % less CPU per request (docs/decisions/2026-11-30-vault-read-path.md).
 */
const READS = { ...segmentReads(48), reuse: true };

/** How far into an upload we look for the type, the dimensions and the DICOM header. */
const HEAD_BYTES = 1024 * 1024;

export type ImageRow = typeof images.$inferSelect;

export interface StoredImage {
  id: string;
  size: number;
  sha256: string;
  contentType: string;
  /** Where the image was filed, when an admission hook placed it (exam, laterality, view). */
  placement?: Placement;
}

/** Columns an admission hook adds to the image row (the exam model, app/exams/). */
export type Placement = Partial<
  Pick<
    ImageRow,
    | "examId"
    | "laterality"
    | "view"
    | "studyInstanceUid"
    | "seriesInstanceUid"
    | "sopInstanceUid"
    | "sopClassUid"
    | "modality"
    | "presentationIntent"
    | "identityNotice"
  >
>;

export type Tx = Parameters<Parameters<typeof db.transaction>[0]>[0];

/** The image row as the vault inserts it (its exam aside). */
export type NewImageRow = Omit<typeof images.$inferInsert, "examId">;

/** Inserts the image row in its exam, found or created within the same statement; the exam's id. */
export interface ExamFiling {
  insert(row: NewImageRow): Promise<string>;
}

/**
 * Where an admitted upload is filed, decided before its bytes are stored: either its placement columns with, when
 * its exam is found or created on the way (a DICOM study), the insert that does it within the row's own statement —
 * no transaction —; or a step that needs the row's transaction (e.g. a lock first) and gives the placement columns.
 */
export type Filing = { placement: Placement; exam?: ExamFiling } | ((tx: Tx) => Promise<Placement>);

/**
 * Decides, from what the upload is (sniffed) and its first bytes, whether and where it is filed — before any byte
 * is stored. It may throw an HttpError to refuse (e.g. 409 `identity_mismatch`).
 */
export type Admission = (kind: SniffResult, head: Buffer) => Promise<Filing>;

export { MAX_UPLOAD_BYTES };
const fail = (status: number, code: VaultErrorCode) => new HttpError(status, code, VAULT_MESSAGES[code]);

const storageKey = (id: string) => `images/${id}`;

// ---- small stream helpers ---------------------------------------------------------------------------------------

class TooLargeError extends Error {}

/** 413: the rest of an oversize body is not read for the app (the HTTP edge discards a bounded part, then closes). */
export const tooLarge = () => fail(413, "too_large");

/** Passes chunks through and throws as soon as more than `max` bytes went by: the rest is never read. */
async function* limitSize(source: AsyncIterable<Uint8Array>, max: number): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of source) {
    seen += chunk.length;
    if (seen > max) throw new TooLargeError();
    yield chunk;
  }
}

/** Reads up to `bytes` from an iterator; returns them and an iterable of everything (head included). */
export async function peek(source: AsyncIterable<Uint8Array>, bytes: number) {
  const iterator = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let length = 0;
  let done = false;
  while (length < bytes) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    head.push(next.value);
    length += next.value.length;
  }
  const all = async function* () {
    yield* head;
    if (!done) yield* { [Symbol.asyncIterator]: () => iterator };
  };
  return { head: Buffer.concat(head), all: all() };
}

/** File names may carry patient names: sealed under the image's data key, bound to the image id. */
function sealName(dataKey: Uint8Array, imageId: string, name: string): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", dataKey, nonce);
  cipher.setAAD(Buffer.from(`nexus-file-name-v1|${imageId}`));
  const body = Buffer.concat([cipher.update(name, "utf8"), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

function openName(dataKey: Uint8Array, imageId: string, sealed: Uint8Array): string {
  const buf = Buffer.from(sealed);
  const decipher = createDecipheriv("aes-256-gcm", dataKey, buf.subarray(0, 12));
  decipher.setAAD(Buffer.from(`nexus-file-name-v1|${imageId}`));
  decipher.setAuthTag(buf.subarray(buf.length - 16));
  return Buffer.concat([decipher.update(buf.subarray(12, buf.length - 16)), decipher.final()]).toString("utf8");
}

function dimensionsOf(kind: SniffResult): { width?: number; height?: number } {
  return { width: kind.width, height: kind.height };
}

function asStorageError(err: unknown): never {
  if (err instanceof StorageUnavailableError) throw fail(503, "storage_unavailable");
  throw err;
}

// ---- the vault --------------------------------------------------------------------------------------------------

export class Vault {
  constructor(
    readonly store: ObjectStore,
    private keyring: Keyring,
  ) {}

  /** Replaces the keyring (after `keys:rotate` in the same process, or in tests). */
  useKeyring(keyring: Keyring): void {
    this.keyring = keyring;
  }

  /**
   * Encrypts and stores one upload. Throws HttpError 413 (over the limit: reading stops there), 415 (not JPEG, PNG
   * or DICOM by content), 400 (empty), 422 (pixel limit, unreadable header), 503 (storage down). On any failure
   * nothing is left behind: no object, no row.
   */
  async storeImage(input: {
    patientId: string;
    uploadedBy: string;
    fileName: string | null;
    data: AsyncIterable<Uint8Array>;
    /** Checks and places the upload before it is stored (see {@link Admission}). */
    admit?: Admission;
    /** The request's stage timings (NEXUS_TIMING=1): the object's encryption and durable write go to "store". */
    timing?: Timing;
  }): Promise<StoredImage> {
    const { head, all } = await peek(limitSize(input.data, MAX_UPLOAD_BYTES), HEAD_BYTES).catch((err) => {
      if (err instanceof TooLargeError) throw tooLarge();
      throw err;
    });
    if (head.length === 0) throw fail(400, "empty");
    let kind: SniffResult | null;
    try {
      kind = sniff(head);
    } catch (err) {
      if (err instanceof DicomParseError) throw fail(422, "bad_dicom");
      throw err;
    }
    if (!kind) throw fail(415, "unsupported_type");
    const { width, height } = dimensionsOf(kind);
    // A readable DICOM data set without Rows and Columns is not an image (an SR, an RT plan, a DICOMDIR…), not a
    // damaged one.
    if (width === undefined || height === undefined) throw fail(422, kind.contentType === "application/dicom" ? "dicom_without_image" : "no_dimensions");
    if (!withinPixelLimit(width, height)) throw fail(422, "too_many_pixels");
    const place = input.admit ? await input.admit(kind, head) : null;

    const id = randomUUID();
    const key = storageKey(id);
    const dataKey = generateDataKey();
    try {
      const wrapped = wrapKey(this.keyring, dataKey, id);
      const encrypted = encryptStream(all, { key: dataKey, objectId: id });
      const storing = performance.now();
      try {
        await this.store.put(key, encrypted.stream);
      } catch (err) {
        await this.store.delete(key).catch(() => undefined);
        if (err instanceof TooLargeError || (err as { cause?: unknown }).cause instanceof TooLargeError) {
          throw tooLarge();
        }
        asStorageError(err);
      }
      const result = await encrypted.result();
      addTiming(input.timing, "store", performance.now() - storing);
      const row = {
        id,
        patientId: input.patientId,
        uploadedBy: input.uploadedBy,
        contentType: kind.contentType,
        size: result.plaintextSize,
        sha256: result.sha256,
        width,
        height,
        bitDepth: kind.contentType === "image/png" ? kind.bitDepth : kind.contentType === "application/dicom" ? (kind.metadata?.bitsStored ?? null) : 8,
        dicom: kind.contentType === "application/dicom" ? kind.metadata : null,
        storageKey: key,
        ciphertextSize: result.ciphertextSize,
        formatVersion: FORMAT_VERSION,
        keyId: wrapped.keyId,
        wrappedKey: wrapped.wrappedKey,
        encryptedName: input.fileName ? sealName(dataKey, id, input.fileName.slice(0, 255)) : null,
      };
      let placement: Placement = {};
      try {
        // The placement (e.g. the exam found or created) and the row commit together, or neither does.
        if (typeof place === "function") {
          await db.transaction(async (tx) => {
            placement = await place(tx);
            await tx.insert(images).values({ ...row, ...placement });
          });
        } else if (place?.exam) {
          placement = { ...place.placement, examId: await place.exam.insert({ ...row, ...place.placement }) };
        } else {
          placement = place?.placement ?? {};
          await db.insert(images).values({ ...row, ...placement });
        }
      } catch (err) {
        // The object without its row would be an orphan: remove it (the sweep catches it if this fails too).
        await this.store.delete(key).catch(() => undefined);
        throw err;
      }
      return { id, size: result.plaintextSize, sha256: result.sha256, contentType: kind.contentType, ...(place ? { placement } : {}) };
    } finally {
      dataKey.fill(0);
    }
  }

  /**
   * Opens an image for reading: the first segment is verified before this resolves (a tampered header or first
   * segment throws HttpError 500 here, before any byte is sent); a later failure errors the stream, which the
   * caller must turn into an aborted response, and calls `onIntegrityFailure`.
   */
  async openImage(
    row: ImageRow,
    onIntegrityFailure: (err: IntegrityError) => void,
    options: {
      /** The request's signal: an aborted request closes the object (file handle, S3 connection) even when nobody reads or cancels the body. */
      signal?: AbortSignal;
      /** The request's stage timings (NEXUS_TIMING=1). */
      timing?: Timing;
    } = {},
  ): Promise<{ body: ReadableStream<Uint8Array>; fileName: string | null }> {
    if (row.erasedAt || !row.wrappedKey || !row.keyId) throw fail(410, "erased");
    const integrity = () => fail(500, "integrity_failure");
    let dataKey: Buffer;
    try {
      dataKey = unwrapKey(this.keyring, row.wrappedKey, row.keyId, row.id);
    } catch (err) {
      if (err instanceof IntegrityError) {
        onIntegrityFailure(err);
        throw integrity();
      }
      throw err;
    }
    let fileName: string | null = null;
    try {
      fileName = row.encryptedName ? openName(dataKey, row.id, row.encryptedName) : null;
    } catch {
      dataKey.fill(0);
      onIntegrityFailure(new IntegrityError("sealed file name failed authentication"));
      throw integrity();
    }
    let source: AsyncIterable<Uint8Array>;
    try {
      source = await this.store.get(row.storageKey, READS);
    } catch (err) {
      if (err instanceof NotFoundError) {
        onIntegrityFailure(new IntegrityError("stored object missing"));
        throw integrity();
      }
      asStorageError(err);
    }
    const plaintext = decryptStream(source!, { key: dataKey, objectId: row.id, reusedChunks: this.store.kind === "local", timing: options.timing });
    let first: IteratorResult<Uint8Array>;
    try {
      first = await plaintext.next();
    } catch (err) {
      if (err instanceof IntegrityError) {
        onIntegrityFailure(err);
        throw integrity();
      }
      asStorageError(err);
    }
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      options.signal?.removeEventListener("abort", onAbort);
      // return() waits for a read in progress, so the key is wiped only once nothing decrypts with it any more.
      await plaintext.return(undefined).catch(() => {});
      dataKey.fill(0);
    };
    const onAbort = () => void release();
    if (options.signal?.aborted) await release();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        if (first!.done) controller.close();
        else controller.enqueue(first!.value);
      },
      async pull(controller) {
        try {
          const next = await plaintext.next();
          if (next.done) {
            await release();
            controller.close();
          } else controller.enqueue(next.value);
        } catch (err) {
          const abandoned = released;
          await release();
          if (err instanceof IntegrityError && !abandoned) onIntegrityFailure(err);
          controller.error(err);
        }
      },
      async cancel() {
        await release();
      },
    });
    return { body, fileName };
  }

  /**
   * Stores a small derived object (e.g. a Grad-CAM heatmap) encrypted like an image, under its own data key.
   * Returns the wrapped key to keep with the owner's row.
   */
  async putSealed(key: string, objectId: string, bytes: Uint8Array): Promise<{ keyId: string; wrappedKey: Buffer }> {
    const dataKey = generateDataKey();
    try {
      const wrapped = wrapKey(this.keyring, dataKey, objectId);
      const encrypted = encryptStream((async function* () { yield bytes; })(), { key: dataKey, objectId });
      await this.store.put(key, encrypted.stream).catch(asStorageError);
      return wrapped;
    } finally {
      dataKey.fill(0);
    }
  }

  /** Reads back a sealed object whole; any authentication failure is a 500 `integrity_failure`. */
  async getSealed(key: string, objectId: string, keyId: string, wrappedKey: Uint8Array): Promise<Buffer> {
    const chunks: Uint8Array[] = [];
    try {
      const dataKey = unwrapKey(this.keyring, wrappedKey, keyId, objectId);
      const source = await this.store.get(key, READS).catch(asStorageError);
      for await (const chunk of decryptStream(source, { key: dataKey, objectId, reusedChunks: this.store.kind === "local" })) chunks.push(chunk);
      dataKey.fill(0);
    } catch (err) {
      if (err instanceof IntegrityError || err instanceof NotFoundError) throw fail(500, "integrity_failure");
      throw err;
    }
    return Buffer.concat(chunks);
  }

  /** The whole decrypted image in memory (≤ 50 MiB), for server-side rendering such as the DICOM preview. */
  async readImage(row: ImageRow, onIntegrityFailure: (err: IntegrityError) => void): Promise<Buffer> {
    const { body } = await this.openImage(row, onIntegrityFailure);
    const chunks: Uint8Array[] = [];
    const reader = body.getReader();
    try {
      for (let next = await reader.read(); !next.done; next = await reader.read()) chunks.push(next.value);
    } catch (err) {
      if (err instanceof IntegrityError) throw fail(500, "integrity_failure");
      throw err;
    }
    return Buffer.concat(chunks);
  }

  /**
   * Erases one image (GDPR art. 17): the wrapped data key is deleted first, so the ciphertext is unreadable
   * everywhere (backups included) from that commit on; then the object; then the row is marked.
   */
  /**
   * Takes back images stored by a request that then failed as a whole (an all-or-nothing upload): their rows, then
   * their objects. They were never shown to anyone; an object left behind by a storage failure is an orphan that
   * `vault:sweep` removes.
   */
  async discardImages(imageIds: string[]): Promise<void> {
    if (imageIds.length === 0) return;
    const rows = await db.delete(images).where(inArray(images.id, imageIds)).returning({ key: images.storageKey });
    for (const { key } of rows) await this.store.delete(key).catch(() => undefined);
  }

  async eraseImage(imageId: string, erasedBy: string): Promise<boolean> {
    const [row] = await db
      .update(images)
      .set({ wrappedKey: null, keyId: null, encryptedName: null, erasedAt: new Date(), erasedBy })
      .where(and(eq(images.id, imageId), isNull(images.erasedAt)))
      .returning({ storageKey: images.storageKey });
    if (!row) return false;
    await this.deleteObject(imageId, row.storageKey);
    await this.shredDerived([imageId]);
    return true;
  }

  /** Erases what was derived from erased images (prediction heatmaps): their keys first, then their objects. */
  private async shredDerived(imageIds: string[]): Promise<void> {
    if (imageIds.length === 0) return;
    const rows = await db
      .update(predictions)
      .set({ heatmapWrappedKey: null, heatmapKeyId: null, erasedAt: new Date() })
      .where(and(inArray(predictions.imageId, imageIds), isNull(predictions.erasedAt)))
      .returning({ key: predictions.heatmapKey });
    for (const { key } of rows) if (key) await this.store.delete(key).catch(() => undefined);
  }

  /** Deletes an erased image's object and marks it; a failure leaves it for `vault:sweep` (the key is gone anyway). */
  private async deleteObject(imageId: string, key: string): Promise<void> {
    try {
      await this.store.delete(key);
      await db.update(images).set({ objectDeletedAt: new Date() }).where(eq(images.id, imageId));
    } catch (err) {
      if (!(err instanceof StorageUnavailableError)) throw err;
    }
  }

  /**
   * Erases every image of a patient, replaces the name, removes what identifies her (IPP, INS, birth date, sex, the
   * exams' accession numbers) and the readers' free text (conclusions, findings), unlinks and disables her account.
   * What stays is anonymous: exam dates and statuses, the ACR categories and densities the programme statistics
   * count, and the audit trail (which never held medical content).
   */
  async erasePatient(patientId: string, erasedBy: string): Promise<{ images: number }> {
    const erased = await db.transaction(async (tx) => {
      const rows = await tx
        .update(images)
        .set({ wrappedKey: null, keyId: null, encryptedName: null, erasedAt: new Date(), erasedBy })
        .where(and(eq(images.patientId, patientId), isNull(images.erasedAt)))
        .returning({ id: images.id, storageKey: images.storageKey });
      // The linked account is read before the link is cut, then disabled.
      const [patient] = await tx
        .select({ id: patients.id, userId: patients.userId })
        .from(patients)
        .where(eq(patients.id, patientId));
      if (!patient) return null;
      await tx
        .update(patients)
        .set({ displayName: "Patient effacé", erasedAt: new Date(), userId: null, ipp: null, ins: null, birthDate: null, sex: null })
        .where(eq(patients.id, patientId));
      await tx.update(exams).set({ accessionNumber: null }).where(eq(exams.patientId, patientId));
      await tx.update(readings).set({ conclusion: null, findings: [] }).where(eq(readings.patientId, patientId));
      if (patient.userId) await tx.update(users).set({ disabledAt: new Date() }).where(eq(users.id, patient.userId));
      return rows;
    });
    if (!erased) return { images: 0 };
    for (const row of erased) await this.deleteObject(row.id, row.storageKey);
    await this.shredDerived(erased.map((r) => r.id));
    return { images: erased.length };
  }

  /**
   * Re-wraps every data key not under the active master key; objects are not touched. Idempotent and resumable:
   * each row is updated on its own, only if its key id is still the old one.
   */
  async rewrapAll(): Promise<{ rewrapped: number; alreadyActive: number; failed: string[] }> {
    const active = this.keyring.activeId;
    const failed: string[] = [];
    const skip = (column: typeof images.id | typeof predictions.id, ids: string[]) =>
      ids.length > 0 ? notInArray(column, ids) : undefined;
    // Images' data keys, then derived objects' (prediction heatmaps, bound to the prediction id).
    const rewrapped =
      (await this.rewrapBatches(
        (failedIds) =>
          db
            .select({ id: images.id, keyId: images.keyId, wrappedKey: images.wrappedKey })
            .from(images)
            .where(and(isNotNull(images.wrappedKey), ne(images.keyId, active), skip(images.id, failedIds)))
            .limit(500),
        (id, oldKeyId, next) =>
          db
            .update(images)
            .set({ wrappedKey: next.wrappedKey, keyId: next.keyId })
            .where(and(eq(images.id, id), eq(images.keyId, oldKeyId)))
            .returning({ id: images.id }),
        failed,
      )) +
      (await this.rewrapBatches(
        (failedIds) =>
          db
            .select({ id: predictions.id, keyId: predictions.heatmapKeyId, wrappedKey: predictions.heatmapWrappedKey })
            .from(predictions)
            .where(and(isNotNull(predictions.heatmapWrappedKey), ne(predictions.heatmapKeyId, active), skip(predictions.id, failedIds)))
            .limit(500),
        (id, oldKeyId, next) =>
          db
            .update(predictions)
            .set({ heatmapWrappedKey: next.wrappedKey, heatmapKeyId: next.keyId })
            .where(and(eq(predictions.id, id), eq(predictions.heatmapKeyId, oldKeyId)))
            .returning({ id: predictions.id }),
        failed,
      ));
    const underActive =
      (await db.$count(images, and(isNotNull(images.wrappedKey), eq(images.keyId, active)))) +
      (await db.$count(predictions, and(isNotNull(predictions.heatmapWrappedKey), eq(predictions.heatmapKeyId, active))));
    return { rewrapped, alreadyActive: underActive - rewrapped, failed };
  }

  /**
   * Re-wraps batch after batch until none is left; each row is updated only if its key id is still the old one. A
   * row whose key cannot be unwrapped (tampered, or its master key missing) is skipped and reported, never fatal.
   */
  private async rewrapBatches(
    nextBatch: (skip: string[]) => Promise<{ id: string; keyId: string | null; wrappedKey: Buffer | null }[]>,
    save: (id: string, oldKeyId: string, next: { keyId: string; wrappedKey: Buffer }) => Promise<unknown[]>,
    failed: string[],
  ): Promise<number> {
    let count = 0;
    for (let batch = await nextBatch(failed); batch.length > 0; batch = await nextBatch(failed)) {
      for (const row of batch) {
        try {
          const next = rewrapKey(this.keyring, row.wrappedKey!, row.keyId!, row.id);
          count += (await save(row.id, row.keyId!, next)).length;
        } catch (err) {
          if (!(err instanceof IntegrityError || err instanceof KeyringError)) throw err;
          failed.push(row.id);
        }
      }
    }
    return count;
  }

  /**
   * Object keys without a live (unerased) row: a crash between the object and its row, or an erasure whose object
   * deletion failed. An object becomes visible only once complete and its row follows at once, so a candidate
   * still orphaned after a short grace period (see scripts/vault-sweep.ts) is a real orphan.
   */
  async findOrphans(): Promise<string[]> {
    const live = await db.select({ key: images.storageKey }).from(images).where(isNull(images.erasedAt));
    const liveKeys = new Set(live.map((r) => r.key));
    const orphans: string[] = [];
    for await (const key of this.store.list("images/")) if (!liveKeys.has(key)) orphans.push(key);
    return orphans;
  }

  async removeOrphans(keys: string[]): Promise<number> {
    for (const key of keys) {
      await this.store.delete(key);
      await db.update(images).set({ objectDeletedAt: new Date() }).where(eq(images.storageKey, key));
    }
    return keys.length;
  }

  /**
   * Encrypts a stream under a fresh data key into `key`, without an image row (the DICOM reconciliation queue keeps
   * the wrapped key in its own row), with an optional short text sealed under the same key. Reads at most
   * MAX_UPLOAD_BYTES (then 413, nothing left behind).
   */
  async putSealedStream(
    key: string,
    objectId: string,
    data: AsyncIterable<Uint8Array>,
    text?: string,
  ): Promise<{ keyId: string; wrappedKey: Buffer; size: number; sha256: string; sealedText: Buffer | null }> {
    const dataKey = generateDataKey();
    try {
      const wrapped = wrapKey(this.keyring, dataKey, objectId);
      const encrypted = encryptStream(limitSize(data, MAX_UPLOAD_BYTES), { key: dataKey, objectId });
      try {
        await this.store.put(key, encrypted.stream);
      } catch (err) {
        await this.store.delete(key).catch(() => undefined);
        if (err instanceof TooLargeError || (err as { cause?: unknown }).cause instanceof TooLargeError) throw tooLarge();
        asStorageError(err);
      }
      const result = await encrypted.result();
      return {
        ...wrapped,
        size: result.plaintextSize,
        sha256: result.sha256,
        sealedText: text === undefined ? null : sealName(dataKey, objectId, text),
      };
    } finally {
      dataKey.fill(0);
    }
  }

  /** Opens an object written by {@link putSealedStream}: its verified plaintext as a stream, and its sealed text. */
  async openSealedStream(
    key: string,
    objectId: string,
    keyId: string,
    wrappedKey: Uint8Array,
    sealedText?: Uint8Array | null,
  ): Promise<{ body: AsyncIterable<Uint8Array>; text: string | null }> {
    let dataKey: Buffer;
    let text: string | null = null;
    try {
      dataKey = unwrapKey(this.keyring, wrappedKey, keyId, objectId);
      text = sealedText ? openName(dataKey, objectId, sealedText) : null;
    } catch {
      throw fail(500, "integrity_failure");
    }
    const source = await this.store.get(key, READS).catch((err) => {
      if (err instanceof NotFoundError) throw fail(500, "integrity_failure");
      return asStorageError(err);
    });
    const plaintext = decryptStream(source, { key: dataKey, objectId, reusedChunks: this.store.kind === "local" });
    const body = (async function* () {
      try {
        for await (const chunk of plaintext) yield chunk;
      } catch (err) {
        if (err instanceof IntegrityError) throw fail(500, "integrity_failure");
        throw err;
      } finally {
        dataKey.fill(0);
      }
    })();
    return { body, text };
  }

  /** Only the sealed text of an object written by {@link putSealedStream} (the object is not opened). */
  openSealedText(objectId: string, keyId: string, wrappedKey: Uint8Array, sealedText: Uint8Array): string {
    let dataKey: Buffer | null = null;
    try {
      dataKey = unwrapKey(this.keyring, wrappedKey, keyId, objectId);
      return openName(dataKey, objectId, sealedText);
    } catch {
      throw fail(500, "integrity_failure");
    } finally {
      dataKey?.fill(0);
    }
  }

  /** Deletes an object written by {@link putSealedStream} (its row's wrapped key should be gone first). */
  async deleteSealed(key: string): Promise<void> {
    await this.store.delete(key).catch(() => undefined);
  }

  async listImages(patientId: string) {
    return db
      .select({
        id: images.id,
        contentType: images.contentType,
        size: images.size,
        width: images.width,
        height: images.height,
        dicom: images.dicom,
        createdAt: images.createdAt,
        erasedAt: images.erasedAt,
        examId: images.examId,
        laterality: images.laterality,
        view: images.view,
      })
      .from(images)
      .where(eq(images.patientId, patientId))
      .orderBy(desc(images.createdAt));
  }
}

/**
 * Read on every image request: built and planned once (a prepared statement), for all the images asked for in one
 * turn of the event loop (a viewer opens an exam's four views at once; app/db/batched-reads.server.ts).
 */
const imagesByIds = db
  .select()
  .from(images)
  .where(sql`${images.id} = any(${sql.placeholder("imageIds")}::uuid[])`)
  .prepare("nexus_images_by_ids");
// Only well-formed ids reach the statement: one malformed id would fail the whole batch's `uuid[]` cast.
const imageRow = batchedReads(async (ids: string[]) => {
  const imageIds = ids.filter(isUuid);
  return imageIds.length === 0 ? [] : (await imagesByIds.execute({ imageIds })).map((row) => [row.id, row] as const);
});

export async function getImageRow(imageId: string): Promise<ImageRow | null> {
  return (await imageRow(imageId.toLowerCase())) ?? null; // rows come back with the id in lower case
}

