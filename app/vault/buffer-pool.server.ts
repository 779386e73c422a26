/**
 * Pools of large buffers for the read path, so that serving an image allocates (almost) no fresh memory.
 *
 * Every fresh Buffer over 4 KiB is an ArrayBuffer outside V8's heap whose size V8 counts as "external memory"; once
 * enough of it was allocated since the last full collection, V8 marks the whole heap again. Serving a 2 MiB image
 * allocated ≈ 5 MiB that way (a read buffer, each segment's plaintext, one more copy per MiB to batch them), and at
 * 200 images/s the collector's marking threads took about half a core per worker process (bench:http, `top -H`).
 * Reading into a pooled buffer and batching plaintext into pooled buffers removes most of it
 * (docs/decisions/2026-12-01-request-path.md).
 *
 * Reuse is opt-in and one-sided: a buffer goes back to its pool only through `release`, called by the one consumer
 * that knows it is done with it — the HTTP writer, once the socket has taken the bytes (http-edge.mjs), or the store
 * reader when its iterator ends. A consumer that keeps a chunk and never calls it (a test reading a body whole, the
 * preview renderer, the WADO-RS metadata reader) just leaves the buffer to the garbage collector: correctness never
 * depends on a release, only on no release coming early. Plaintext is wiped when its buffer comes back.
 */

/** The property a pooled chunk carries: calling it gives the chunk's memory back (idempotent). Shared with http-edge.mjs. */
export const RELEASE: unique symbol = Symbol.for("nexus.release") as never;

export type Releasable = Buffer & { [RELEASE]?: () => void };

export class BufferPool {
  private readonly free: Buffer[] = [];

  /**
   * @param size bytes per buffer
   * @param keep how many free buffers are kept at most (what a burst allocated beyond that goes to the collector)
   * @param wipe zero a buffer when it comes back (plaintext)
   */
  constructor(
    readonly size: number,
    private readonly keep: number,
    private readonly wipe: boolean,
  ) {}

  /** A buffer of `size` bytes, not zeroed (its previous content was wiped if the pool wipes, else it is ciphertext). */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(buffer: Buffer): void {
    if (buffer.length !== this.size || this.free.length >= this.keep) return;
    if (this.wipe) buffer.fill(0);
    this.free.push(buffer);
  }

  /**
   * The first `length` bytes of `whole` (a buffer of this pool) as a new view with a {@link RELEASE} that gives
   * `whole` back once. (A new view each time: a pooled buffer is lent many times, its views only once.)
   */
  lend(whole: Buffer, length: number): Releasable {
    let released = false;
    const chunk = whole.subarray(0, length) as Releasable;
    Object.defineProperty(chunk, RELEASE, {
      value: () => {
        if (released) return;
        released = true;
        this.give(whole);
      },
    });
    return chunk;
  }

  /** Free buffers held (tests). */
  get held(): number {
    return this.free.length;
  }
}
