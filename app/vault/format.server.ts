/**
 * The vault's ciphertext format, version 1: segmented streaming AEAD with AES-256-GCM.
 *
 *   object   = header || segment_0 || … || segment_n          (n ≥ 0; segment_n is the final one)
 *   header   = "NXVF" (4 bytes) || version 0x01 (1 byte) || noncePrefix (7 random bytes)     = 12 bytes
 *   segment  = AES-256-GCM(dataKey, nonce_i, plaintext_i, aad_i) || tag_i (16 bytes)
 *   nonce_i  = noncePrefix (7) || uint32be(i) (4) || finalFlag (1: 0x00, or 0x01 on the final segment)
 *   aad_i    = header (12) || uint16be(len(objectId)) || utf8(objectId) || uint32be(i) || finalFlag
 *
 * Every non-final segment carries exactly SEGMENT_SIZE (64 KiB) plaintext bytes; the final segment carries
 * 0 … SEGMENT_SIZE − 1 bytes, so an empty plaintext is one empty final segment and a plaintext whose length is a
 * multiple of 64 KiB ends with an empty final segment. A reader therefore never needs to look ahead: a full-size
 * chunk is always a non-final segment, a shorter chunk at the end of the stream is the final one.
 *
 * The data key is random per object (see keys.server.ts); docs/decisions/2026-11-23-vault-format.md explains the
 * choices and compares them with MinIO's DARE and Tink's streaming AEAD.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { addTiming, type Timing } from "../http/timing.server";
import { BufferPool } from "./buffer-pool.server";

export const FORMAT_MAGIC = Buffer.from("NXVF", "ascii");
export const FORMAT_VERSION = 1;
/** Plaintext bytes per non-final segment. */
export const SEGMENT_SIZE = 64 * 1024;
export const TAG_LENGTH = 16;
export const NONCE_PREFIX_LENGTH = 7;
export const HEADER_LENGTH = FORMAT_MAGIC.length + 1 + NONCE_PREFIX_LENGTH;
export const DATA_KEY_LENGTH = 32;
/** Segment indexes are unsigned 32-bit numbers: at most 2^32 segments (256 TiB) per object. */
const MAX_SEGMENTS = 2 ** 32;
const MAX_OBJECT_ID_BYTES = 1024;
const FULL_SEGMENT = SEGMENT_SIZE + TAG_LENGTH;

/** Thrown when a ciphertext (or a wrapped key) fails authentication or is malformed. Never carries plaintext. */
export class IntegrityError extends Error {
  /** Index of the segment that failed, when known. */
  readonly segment: number | undefined;
  constructor(message: string, segment?: number) {
    super(message);
    this.name = "IntegrityError";
    this.segment = segment;
  }
}

export interface FormatOptions {
  /** The object's 32-byte data key. */
  key: Uint8Array;
  /** The object's identifier (e.g. its UUID); authenticated with every segment. */
  objectId: string;
  /**
   * Decryption only: the source reads each chunk into the memory of the previous one (see `ReadSizes.reuse`), so
   * nothing of a chunk may be kept once the next is asked for — a partial segment is then copied out.
   */
  reusedChunks?: boolean;
  /** Decryption only: the request's stage timings (NEXUS_TIMING=1), to which the AES-GCM work is added as "decrypt". */
  timing?: Timing;
}

export interface EncryptResult {
  /** Plaintext bytes read from the source. */
  plaintextSize: number;
  /** Ciphertext bytes produced (always `ciphertextLength(plaintextSize)`). */
  ciphertextSize: number;
  /** SHA-256 of the plaintext, lower-case hex. */
  sha256: string;
}

export interface EncryptedStream {
  /** The ciphertext, chunk by chunk: the header, then each segment's ciphertext pieces and its tag. */
  stream: AsyncGenerator<Uint8Array, void, undefined>;
  /**
   * Sizes and plaintext digest; settles once the last chunk has been produced, and rejects if the source fails or
   * the stream is abandoned before the end.
   */
  result(): Promise<EncryptResult>;
}

interface SegmentContext {
  key: Uint8Array;
  noncePrefix: Uint8Array;
  /** header || uint16be(len(objectId)) || objectId || position (5 bytes, rewritten per segment). */
  aad: Buffer;
  /** noncePrefix || position (5 bytes, rewritten per segment). */
  nonce: Buffer;
}

/**
 * Encrypts `source` into the vault format. Input chunks of any size are re-chunked into 64 KiB segments; at most
 * one segment of plaintext is held in memory.
 */
export function encryptStream(source: AsyncIterable<Uint8Array>, options: FormatOptions): EncryptedStream {
  const header = Buffer.concat([FORMAT_MAGIC, Buffer.of(FORMAT_VERSION), randomBytes(NONCE_PREFIX_LENGTH)]);
  const context = segmentContext(header, options);
  let resolveResult!: (result: EncryptResult) => void;
  let rejectResult!: (error: unknown) => void;
  const result = new Promise<EncryptResult>((resolve, reject) => {
    resolveResult = resolve;
    rejectResult = reject;
  });
  result.catch(() => {}); // a caller that never asks for the result must not see an unhandled rejection

  async function* run(): AsyncGenerator<Uint8Array, void, undefined> {
    const hash = createHash("sha256");
    const pending = new ByteQueue();
    let index = 0;
    let plaintextSize = 0;
    let ciphertextSize = 0;
    let settled = false;
    const seal = (plaintext: Uint8Array[], final: boolean): Buffer[] => {
      const out = encryptSegment(context, index, final, plaintext, index === 0 ? header : undefined);
      index += 1;
      for (const piece of out) ciphertextSize += piece.length;
      return out;
    };
    try {
      for await (const chunk of source) {
        assertBytes(chunk);
        hash.update(chunk);
        plaintextSize += chunk.length;
        pending.push(chunk);
        while (pending.length >= SEGMENT_SIZE) yield* seal(pending.take(SEGMENT_SIZE), false);
      }
      const last = seal(pending.take(pending.length), true);
      settled = true;
      resolveResult({ plaintextSize, ciphertextSize, sha256: hash.digest("hex") });
      yield* last;
    } catch (error) {
      settled = true;
      rejectResult(error);
      throw error;
    } finally {
      if (!settled) rejectResult(new Error("vault encryption stopped before the end of the plaintext"));
    }
  }

  return { stream: run(), result: () => result };
}

/**
 * Decrypts a vault object. Each segment is authenticated before any of its plaintext is yielded; any tampering,
 * truncation, reordering, extension, wrong key or wrong object id throws an {@link IntegrityError}. Plaintext of
 * segments before a failing one has already been yielded (it was authentic): consumers must treat a thrown stream
 * as failed as a whole.
 */
export async function* decryptStream(
  source: AsyncIterable<Uint8Array>,
  options: FormatOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  checkOptions(options);
  const pending = new ByteQueue();
  let context: SegmentContext | undefined;
  let index = 0;
  for await (const chunk of source) {
    assertBytes(chunk);
    pending.push(chunk);
    if (context === undefined) {
      if (pending.length < HEADER_LENGTH) {
        if (options.reusedChunks) pending.detach();
        continue;
      }
      context = segmentContext(parseHeader(Buffer.from(contiguous(pending.take(HEADER_LENGTH)))), options);
    }
    // The complete segments of this chunk (the vault reads along the segments: each is then a view of the read, never
    // reassembled by a copy), yielded BATCH_SEGMENTS at a time as one buffer: every chunk costs ≈ 20–35 µs in each
    // layer it crosses downstream (web streams, generators, the HTTP writer), more than copying it once. A full batch
    // is copied into a pooled buffer that the HTTP writer gives back (buffer-pool.server.ts); a shorter one into a
    // buffer of its size. Nothing of a batch leaves before all of it authenticated; a failure wipes what the batch had
    // already decrypted.
    while (pending.length >= FULL_SEGMENT) {
      const t0 = performance.now();
      const out: Buffer[] = [];
      try {
        while (out.length < BATCH_SEGMENTS && pending.length >= FULL_SEGMENT) {
          out.push(decryptSegment(context, index, false, contiguous(pending.take(FULL_SEGMENT))));
          index += 1;
        }
      } catch (error) {
        for (const b of out) b.fill(0);
        throw error;
      }
      addTiming(options.timing, "decrypt", performance.now() - t0);
      yield batchOf(out);
    }
    // The decrypted plaintext is fresh memory; only a partial segment may still point into the chunk.
    if (options.reusedChunks) pending.detach();
  }
  if (context === undefined) throw new IntegrityError("vault object truncated: incomplete header");
  if (pending.length < TAG_LENGTH) {
    throw new IntegrityError("vault object truncated: the final segment is missing", index);
  }
  const t0 = performance.now();
  const last = decryptSegment(context, index, true, contiguous(pending.take(pending.length)));
  addTiming(options.timing, "decrypt", performance.now() - t0);
  yield last;
}

/** Decrypted segments per chunk handed downstream (1 MiB of plaintext), and the pool of buffers for full batches. */
const BATCH_SEGMENTS = 16;
const plaintextPool = new BufferPool(BATCH_SEGMENTS * SEGMENT_SIZE, 16, true);

/** One buffer of the segments' plaintext: one of them as it is, a full batch in a pooled buffer, else a copy. */
function batchOf(segments: Buffer[]): Buffer {
  if (segments.length === 1) return segments[0]!;
  if (segments.length < BATCH_SEGMENTS) return Buffer.concat(segments);
  const whole = plaintextPool.take();
  for (let i = 0; i < segments.length; i++) segments[i]!.copy(whole, i * SEGMENT_SIZE);
  return plaintextPool.lend(whole, whole.length);
}

/**
 * Read sizes that cut a stored object along its segments, `segments` at a time (the header with the first read): each
 * segment then lies whole in one read and is decrypted from a view of it (see {@link decryptStream}).
 */
export function segmentReads(segments: number): { first: number; next: number } {
  return { first: HEADER_LENGTH + segments * FULL_SEGMENT, next: segments * FULL_SEGMENT };
}

/** The exact ciphertext size of a plaintext of `plaintextLength` bytes. */
export function ciphertextLength(plaintextLength: number): number {
  if (!Number.isSafeInteger(plaintextLength) || plaintextLength < 0) {
    throw new RangeError(`plaintext length must be a non-negative integer, got ${plaintextLength}`);
  }
  const segments = Math.floor(plaintextLength / SEGMENT_SIZE) + 1;
  return HEADER_LENGTH + plaintextLength + segments * TAG_LENGTH;
}

function segmentContext(header: Buffer, options: FormatOptions): SegmentContext {
  const objectId = checkOptions(options);
  const idLength = Buffer.alloc(2);
  idLength.writeUInt16BE(objectId.length);
  const noncePrefix = header.subarray(FORMAT_MAGIC.length + 1, HEADER_LENGTH);
  return {
    key: options.key,
    noncePrefix,
    aad: Buffer.concat([header, idLength, objectId, Buffer.alloc(5)]),
    nonce: Buffer.concat([noncePrefix, Buffer.alloc(5)]),
  };
}

/** Validates key and object id; returns the object id's UTF-8 bytes. */
function checkOptions({ key, objectId }: FormatOptions): Buffer {
  if (!(key instanceof Uint8Array) || key.length !== DATA_KEY_LENGTH) {
    throw new TypeError(`vault data key must be ${DATA_KEY_LENGTH} bytes`);
  }
  const id = Buffer.from(objectId, "utf8");
  if (id.length === 0 || id.length > MAX_OBJECT_ID_BYTES) {
    throw new TypeError(`vault object id must be 1 to ${MAX_OBJECT_ID_BYTES} bytes of UTF-8`);
  }
  return id;
}

function parseHeader(header: Buffer): Buffer {
  if (!header.subarray(0, FORMAT_MAGIC.length).equals(FORMAT_MAGIC)) {
    throw new IntegrityError("not a vault object: bad magic bytes");
  }
  const version = header[FORMAT_MAGIC.length];
  if (version !== FORMAT_VERSION) throw new IntegrityError(`unsupported vault format version ${version}`);
  return header;
}

/**
 * The segment's nonce and AAD, written into the context's two buffers (allocated once per object, not three per
 * segment); they are consumed by createCipheriv/setAAD before the next segment overwrites them. AES-GCM in Node takes
 * its nonce only when the cipher is created, so each segment still needs a cipher object of its own.
 */
function segmentParameters(context: SegmentContext, index: number, final: boolean): { nonce: Buffer; aad: Buffer } {
  if (index >= MAX_SEGMENTS) throw new RangeError("vault object too large: more than 2^32 segments");
  const { nonce, aad } = context;
  nonce.writeUInt32BE(index, NONCE_PREFIX_LENGTH);
  nonce[NONCE_PREFIX_LENGTH + 4] = final ? 1 : 0;
  aad.writeUInt32BE(index, aad.length - 5);
  aad[aad.length - 1] = final ? 1 : 0;
  return { nonce, aad };
}

/**
 * Encrypts one segment given as pieces (views into the source chunks: no reassembly copy) into pieces (the header
 * first for segment 0, the ciphertext, the tag): not concatenated, which would allocate and copy every segment once
 * more — allocation that makes V8 collect garbage all the more often on a long stream.
 */
function encryptSegment(
  context: SegmentContext,
  index: number,
  final: boolean,
  plaintext: Uint8Array[],
  header?: Buffer,
): Buffer[] {
  const { nonce, aad } = segmentParameters(context, index, final);
  const cipher = createCipheriv("aes-256-gcm", context.key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad);
  const out: Buffer[] = header ? [header] : [];
  for (const piece of plaintext) {
    const sealed = cipher.update(piece);
    if (sealed.length > 0) out.push(sealed);
  }
  const tail = cipher.final();
  if (tail.length > 0) out.push(tail);
  out.push(cipher.getAuthTag());
  return out;
}

function decryptSegment(context: SegmentContext, index: number, final: boolean, segment: Buffer): Buffer {
  const { nonce, aad } = segmentParameters(context, index, final);
  const bodyLength = segment.length - TAG_LENGTH;
  const decipher = createDecipheriv("aes-256-gcm", context.key, nonce, { authTagLength: TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(segment.subarray(bodyLength));
  const body = decipher.update(segment.subarray(0, bodyLength));
  try {
    const tail = decipher.final();
    return tail.length === 0 ? body : Buffer.concat([body, tail]);
  } catch {
    body.fill(0); // unauthenticated plaintext never leaves this function
    throw new IntegrityError(`vault segment ${index} failed authentication (tampered, truncated or wrong key)`, index);
  }
}

/** One buffer over the pieces: a view when there is a single piece, a copy otherwise. */
function contiguous(pieces: Uint8Array[]): Buffer {
  const only = pieces.length === 1 ? pieces[0]! : undefined;
  return only ? Buffer.from(only.buffer, only.byteOffset, only.byteLength) : Buffer.concat(pieces);
}

function assertBytes(chunk: unknown): asserts chunk is Uint8Array {
  if (!(chunk instanceof Uint8Array)) throw new TypeError("vault streams carry bytes (Uint8Array), not strings");
}

/** A FIFO of byte chunks that hands out exact-length runs of bytes as views into those chunks (never copies). */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // bytes of chunks[0] already handed out
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Replaces what is queued by a copy of it: nothing here points into the chunks pushed so far. */
  detach(): void {
    if (this.length === 0) return;
    const copy = Buffer.concat(this.take(this.length));
    this.chunks = [];
    this.head = 0;
    this.push(copy);
  }

  /** The next `size` bytes (at most `length`), as one or more views. */
  take(size: number): Uint8Array[] {
    const pieces: Uint8Array[] = [];
    let wanted = size;
    while (wanted > 0) {
      const first = this.chunks[0]!;
      const n = Math.min(wanted, first.length - this.head);
      pieces.push(first.subarray(this.head, this.head + n));
      this.head += n;
      wanted -= n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.length -= size;
    return pieces;
  }
}
