import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  ciphertextLength,
  decryptStream,
  encryptStream,
  HEADER_LENGTH,
  IntegrityError,
  SEGMENT_SIZE,
  TAG_LENGTH,
  type FormatOptions,
} from "./format.server";
import { BufferPool, RELEASE, type Releasable } from "./buffer-pool.server";

const FULL = SEGMENT_SIZE + TAG_LENGTH;
const KIB64 = SEGMENT_SIZE;

/** Yields `bytes` in chunks whose sizes cycle through `sizes`. */
async function* chunked(bytes: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let offset = 0;
  for (let i = 0; offset < bytes.length; i += 1) {
    const size = sizes[i % sizes.length]!;
    yield bytes.subarray(offset, offset + size);
    offset += size;
  }
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of source) parts.push(chunk);
  return Buffer.concat(parts);
}

function options(objectId = "3f1c1b7e-8d3a-4c1e-9a57-0b6c2b1f9e21"): FormatOptions {
  return { key: randomBytes(32), objectId };
}

async function encrypt(plaintext: Uint8Array, opts: FormatOptions, sizes: readonly number[] = [65_536]) {
  const encrypted = encryptStream(chunked(plaintext, sizes), opts);
  const ciphertext = await collect(encrypted.stream);
  return { ciphertext, result: await encrypted.result() };
}

/** Decrypts, keeping whatever plaintext was yielded before a failure. */
async function tryDecrypt(ciphertext: Uint8Array, opts: FormatOptions, sizes: readonly number[] = [65_552]) {
  const yielded: Uint8Array[] = [];
  try {
    for await (const chunk of decryptStream(chunked(ciphertext, sizes), opts)) yielded.push(chunk);
    return { plaintext: Buffer.concat(yielded), error: undefined };
  } catch (error) {
    return { plaintext: Buffer.concat(yielded), error };
  }
}

const segmentStart = (i: number) => HEADER_LENGTH + i * FULL;

function flipBit(bytes: Buffer, offset: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[offset]! ^= 0x01;
  return copy;
}

describe("vault format round trip", () => {
  const sizes = [0, 1, KIB64 - 1, KIB64, KIB64 + 1, 3 * KIB64 + KIB64 / 2, 2 * KIB64];
  it.each(sizes)("round-trips %i bytes fed in odd chunk sizes", async (size) => {
    const plaintext = randomBytes(size);
    const opts = options();
    const { ciphertext, result } = await encrypt(plaintext, opts, [1, 7, 1000, 65_537, 3]);
    expect(ciphertext.length).toBe(ciphertextLength(size));
    expect(result).toEqual({
      plaintextSize: size,
      ciphertextSize: ciphertext.length,
      sha256: createHash("sha256").update(plaintext).digest("hex"),
    });
    const { plaintext: decrypted, error } = await tryDecrypt(ciphertext, opts, [13, 5, 100_000, FULL]);
    expect(error).toBeUndefined();
    expect(decrypted.equals(plaintext)).toBe(true);
  });

  it("round-trips a 5 MiB random buffer", async () => {
    const plaintext = randomBytes(5 * 1024 * 1024);
    const opts = options();
    const { ciphertext, result } = await encrypt(plaintext, opts, [65_536, 12_345, 1_000_003]);
    expect(result.plaintextSize).toBe(plaintext.length);
    expect(ciphertext.length).toBe(ciphertextLength(plaintext.length));
    const { plaintext: decrypted, error } = await tryDecrypt(ciphertext, opts, [4096, 70_000]);
    expect(error).toBeUndefined();
    expect(decrypted.equals(plaintext)).toBe(true);
  });

  it("encrypts an empty plaintext as one final, empty segment", async () => {
    const { ciphertext } = await encrypt(new Uint8Array(0), options());
    expect(ciphertext.length).toBe(HEADER_LENGTH + TAG_LENGTH);
  });

  it("produces different ciphertexts for the same plaintext and key (random nonce prefix)", async () => {
    const opts = options();
    const plaintext = randomBytes(1000);
    const a = await encrypt(plaintext, opts);
    const b = await encrypt(plaintext, opts);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
  });

  it("computes ciphertextLength for segment boundaries", () => {
    expect(ciphertextLength(0)).toBe(HEADER_LENGTH + 16);
    expect(ciphertextLength(KIB64 - 1)).toBe(HEADER_LENGTH + KIB64 - 1 + 16);
    expect(ciphertextLength(KIB64)).toBe(HEADER_LENGTH + KIB64 + 32);
    expect(() => ciphertextLength(-1)).toThrow(RangeError);
  });

  it("rejects the result when the ciphertext stream is abandoned early", async () => {
    const encrypted = encryptStream(chunked(randomBytes(3 * KIB64), [KIB64]), options());
    for await (const chunk of encrypted.stream) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    await expect(encrypted.result()).rejects.toThrow(/before the end/);
  });

  it("passes a failing source's error to both the stream and the result", async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield randomBytes(10);
      throw new Error("client went away");
    }
    const encrypted = encryptStream(failing(), options());
    await expect(collect(encrypted.stream)).rejects.toThrow("client went away");
    await expect(encrypted.result()).rejects.toThrow("client went away");
  });

  it("refuses a data key of the wrong length and an empty object id", () => {
    expect(() => encryptStream(chunked(new Uint8Array(1), [1]), { key: randomBytes(16), objectId: "x" })).toThrow(
      TypeError,
    );
    expect(() => encryptStream(chunked(new Uint8Array(1), [1]), { key: randomBytes(32), objectId: "" })).toThrow(
      TypeError,
    );
  });
});

describe("vault format tamper detection", () => {
  // 3.5 segments: full segments 0, 1, 2 and a final segment 3 of 32 KiB.
  const plaintext = randomBytes(3 * KIB64 + KIB64 / 2);
  const opts = options();
  const sealed = encrypt(plaintext, opts).then((r) => r.ciphertext);

  /** Expects an IntegrityError and exactly the first `segments` authentic segments of plaintext before it. */
  async function expectRefused(ciphertext: Buffer, segments: number, decryptOptions: FormatOptions = opts) {
    const { plaintext: yielded, error } = await tryDecrypt(ciphertext, decryptOptions);
    expect(error).toBeInstanceOf(IntegrityError);
    expect(yielded.equals(plaintext.subarray(0, segments * KIB64))).toBe(true);
    return error as IntegrityError;
  }

  it("decrypts the untouched ciphertext", async () => {
    const { plaintext: decrypted, error } = await tryDecrypt(await sealed, opts);
    expect(error).toBeUndefined();
    expect(decrypted.equals(plaintext)).toBe(true);
  });

  it.each([
    ["magic", 0],
    ["version", 4],
    ["nonce prefix", 8],
  ])("refuses a bit flipped in the header (%s)", async (_name, offset) => {
    await expectRefused(flipBit(await sealed, offset), 0);
  });

  it("refuses a bit flipped in a segment body, yielding only the segments before it", async () => {
    const error = await expectRefused(flipBit(await sealed, segmentStart(2) + 100), 2);
    expect(error.segment).toBe(2);
  });

  it("refuses a bit flipped in a tag", async () => {
    const error = await expectRefused(flipBit(await sealed, segmentStart(1) + FULL - 1), 1);
    expect(error.segment).toBe(1);
  });

  it("refuses a bit flipped in the final segment", async () => {
    const ciphertext = await sealed;
    await expectRefused(flipBit(ciphertext, ciphertext.length - 20), 3);
  });

  it("refuses a stream whose final segment was dropped (truncation at a segment boundary)", async () => {
    const error = await expectRefused((await sealed).subarray(0, segmentStart(3)), 3);
    expect(error.message).toMatch(/final segment is missing/);
  });

  it("refuses an empty final segment dropped from a whole number of segments", async () => {
    const whole = randomBytes(2 * KIB64);
    const { ciphertext } = await encrypt(whole, opts);
    expect(ciphertext.length).toBe(segmentStart(2) + TAG_LENGTH);
    const { plaintext: yielded, error } = await tryDecrypt(ciphertext.subarray(0, segmentStart(2)), opts);
    expect(error).toBeInstanceOf(IntegrityError);
    expect(yielded.equals(whole)).toBe(true); // authentic segments, but the stream is refused as a whole
  });

  it("refuses a stream truncated in the middle of a segment", async () => {
    await expectRefused((await sealed).subarray(0, segmentStart(2) + 5000), 2);
  });

  it("refuses a stream truncated inside the header, or empty", async () => {
    await expectRefused((await sealed).subarray(0, 5), 0);
    await expectRefused(Buffer.alloc(0), 0);
    await expectRefused((await sealed).subarray(0, HEADER_LENGTH), 0);
  });

  it("refuses two swapped segments", async () => {
    const c = await sealed;
    const swapped = Buffer.concat([
      c.subarray(0, segmentStart(1)),
      c.subarray(segmentStart(2), segmentStart(3)),
      c.subarray(segmentStart(1), segmentStart(2)),
      c.subarray(segmentStart(3)),
    ]);
    expect(swapped.length).toBe(c.length);
    await expectRefused(swapped, 1);
  });

  it("refuses a duplicated segment", async () => {
    const c = await sealed;
    const duplicated = Buffer.concat([c.subarray(0, segmentStart(2)), c.subarray(segmentStart(1))]);
    await expectRefused(duplicated, 2);
  });

  it("refuses garbage appended after the final segment", async () => {
    const c = await sealed;
    await expectRefused(Buffer.concat([c, randomBytes(7)]), 3);
    await expectRefused(Buffer.concat([c, randomBytes(FULL)]), 3);
  });

  it("refuses a ciphertext presented under another object id", async () => {
    await expectRefused(await sealed, 0, { key: opts.key, objectId: "another-object" });
  });

  it("refuses another object's ciphertext swapped in under the same key", async () => {
    const other = await encrypt(randomBytes(plaintext.length), { key: opts.key, objectId: "object-b" });
    await expectRefused(other.ciphertext, 0);
  });

  it("refuses the wrong key", async () => {
    await expectRefused(await sealed, 0, { key: randomBytes(32), objectId: opts.objectId });
  });
});

describe("vault format: a source that reads every chunk into the same memory", () => {
  /** Yields `bytes` in chunks of `size`, each copied into one buffer that the next chunk overwrites. */
  async function* reused(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
    const shared = Buffer.alloc(size);
    for (let offset = 0; offset < bytes.length; offset += size) {
      const n = Math.min(size, bytes.length - offset);
      shared.set(bytes.subarray(offset, offset + n));
      yield shared.subarray(0, n);
      shared.fill(0xee); // what the next read would leave in it
    }
  }

  it.each([7, 1000, 65_552, 65_552 * 3 + 5, 1_048_832])("decrypts chunks of %i bytes with reusedChunks", async (size) => {
    const plaintext = randomBytes(5 * KIB64 + 123);
    const opts = options();
    const { ciphertext } = await encrypt(plaintext, opts);
    const decrypted = await collect(decryptStream(reused(ciphertext, size), { ...opts, reusedChunks: true }));
    expect(decrypted.equals(plaintext)).toBe(true);
  });
});

describe("vault format: batches of plaintext in pooled buffers", () => {
  it("hands full batches of 16 segments as pooled buffers, whose memory serves the next batch once released", async () => {
    const plaintext = randomBytes(40 * KIB64 + 999); // 2 full batches, then 8 segments and the final one
    const opts = options();
    const { ciphertext } = await encrypt(plaintext, opts);
    const copies: Buffer[] = [];
    const pooled: ArrayBufferLike[] = [];
    // One read of everything: the decrypter cuts it into batches itself.
    for await (const chunk of decryptStream(chunked(ciphertext, [ciphertext.length]), opts)) {
      copies.push(Buffer.from(chunk)); // what a socket would have taken
      const release = (chunk as Releasable)[RELEASE];
      if (chunk.length === 16 * KIB64) {
        expect(release).toBeTypeOf("function");
        pooled.push(chunk.buffer);
        release!();
        release!(); // idempotent: the buffer goes back once
      } else expect(release).toBeUndefined();
    }
    expect(Buffer.concat(copies).equals(plaintext)).toBe(true);
    expect(copies.map((c) => c.length)).toEqual([16 * KIB64, 16 * KIB64, 8 * KIB64, 999]);
    // The first batch's buffer came back and carried the second batch (same memory, a new view).
    expect(pooled[1]).toBe(pooled[0]);
  });
});

describe("BufferPool", () => {
  it("keeps at most `keep` buffers of its size, wiped when it holds plaintext", () => {
    const pool = new BufferPool(1024, 2, true);
    const a = pool.take();
    const b = pool.take();
    const c = pool.take();
    a.fill(7);
    pool.give(a);
    pool.give(b);
    pool.give(c); // over `keep`: left to the collector
    pool.give(Buffer.alloc(512)); // not its size
    expect(pool.held).toBe(2);
    const again = pool.take();
    expect(again === a || again === b).toBe(true);
    expect(a.every((byte) => byte === 0)).toBe(true);
  });

  it("lends the same buffer many times, a new view with its own release each time", () => {
    const pool = new BufferPool(1024, 4, false);
    const whole = pool.take();
    const first = pool.lend(whole, 100);
    first[RELEASE]!();
    const second = pool.lend(pool.take(), 1024);
    expect(second.buffer).toBe(whole.buffer);
    expect(second).not.toBe(first);
    expect(pool.held).toBe(0);
    second[RELEASE]!();
    first[RELEASE]!(); // already released: nothing happens
    expect(pool.held).toBe(1);
  });
});
