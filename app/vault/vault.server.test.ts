/**
 * The vault (class Vault) against a real database and real object stores: one suite, run on a local directory
 * always and on a real S3 server (its own throwaway bucket) when S3_HOST is set. Images are generated in memory;
 * the only bytes that reach a disk are the vault's ciphertext (and the tampered ciphertext the tests write back).
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { and, eq, isNotNull, ne, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bigJpeg, dicom, DICOM_TRANSFER_SYNTAX, jpeg, MiB, png16, png8, withPngText } from "../../tests/helpers/images";
import { createUser } from "../accounts/users.server";
import { db } from "../db/db.server";
import { images, patients, users } from "../db/schema";
import { HttpError } from "../http/errors.server";
import { ciphertextLength, HEADER_LENGTH, IntegrityError, SEGMENT_SIZE, TAG_LENGTH } from "./format.server";
import { loadKeyring } from "./keys.server";
import { LocalStore } from "./local-store.server";
import { S3Store, s3Client, s3OptionsFromEnv, type S3StoreOptions } from "./s3-store.server";
import { NotFoundError, type ObjectStore } from "./store.server";
import { getImageRow, Vault, type ImageRow } from "./vault.server";

/** Round trips against a real S3 server (the first PUT into a new bucket alone takes ~2 s on Ceph). */
const SLOW = 60_000;
const s3Options = s3OptionsFromEnv(process.env);
if (!s3Options) console.log("skipped: no S3 endpoint (vault suite runs on the local store only)");
/** pydicom's test files (python3-pydicom): DICOM objects other tools wrote, some of them not images. */
const PYDICOM = [process.env.PYDICOM_TEST_FILES, "/usr/lib/python3/dist-packages/pydicom/data/test_files"].find(
  (d) => d && existsSync(join(d, "test-SR.dcm")),
);
if (!PYDICOM) console.log("skipped: DICOM objects without an image need python3-pydicom (apt-get install -y python3-pydicom, or PYDICOM_TEST_FILES=dir)");

// ---- keys, people, sample images -------------------------------------------------------------------------------

const K1 = randomBytes(32).toString("base64");
const K2 = randomBytes(32).toString("base64");
// The run's own key (tests/setup-env.ts) rides along: on PostgreSQL the unit database is shared by the run's test
// files, and rewrapAll() re-wraps every live row of it, other files' images included.
const RUN_KEYS = process.env.NEXUS_MASTER_KEYS ? `${process.env.NEXUS_MASTER_KEYS},` : "";
const RING_K1 = loadKeyring({ env: { NEXUS_MASTER_KEYS: `${RUN_KEYS}k1:${K1}`, NEXUS_MASTER_KEY_ACTIVE: "k1" } });
const RING_K1_K2 = loadKeyring({
  env: { NEXUS_MASTER_KEYS: `${RUN_KEYS}k1:${K1},k2:${K2}`, NEXUS_MASTER_KEY_ACTIVE: "k2" },
});
const RING_K2_ONLY = loadKeyring({ env: { NEXUS_MASTER_KEYS: `k2:${K2}` } });

interface Sample {
  label: string;
  fileName: string;
  bytes: Buffer;
  contentType: string;
  width: number;
  height: number;
  bitDepth: number;
}

let doctorId = "";
let samples: Sample[] = [];
let big: Buffer; // ≥ 3 segments, not a multiple of the segment size
const DICOM_PATIENT_ID = `PID-${randomUUID()}`;

async function newPatient(displayName = "Patiente Coffre", userId: string | null = null): Promise<string> {
  const [row] = await db
    .insert(patients)
    .values({ displayName, userId, createdBy: doctorId })
    .returning({ id: patients.id });
  return row!.id;
}

beforeAll(async () => {
  const doctor = await createUser({
    email: `vault-doctor-${randomUUID().slice(0, 8)}@test.nexus`,
    name: "Dr Coffre",
    role: "doctor",
    password: "correct-horse-battery",
  });
  doctorId = doctor.id;
  samples = [
    { label: "JPEG", fileName: "face.jpg", bytes: await jpeg(64, 48), contentType: "image/jpeg", width: 64, height: 48, bitDepth: 8 },
    { label: "8-bit PNG", fileName: "cc-gauche.png", bytes: await png8(40, 30), contentType: "image/png", width: 40, height: 30, bitDepth: 8 },
    { label: "16-bit PNG", fileName: "mlo-16.png", bytes: await png16(50, 20), contentType: "image/png", width: 50, height: 20, bitDepth: 16 },
    {
      label: "DICOM",
      fileName: "IM0001.dcm",
      bytes: dicom({ patientName: "DUPONT^CAMILLE", patientId: DICOM_PATIENT_ID, rows: 32, columns: 24 }),
      contentType: "application/dicom",
      width: 24,
      height: 32,
      bitDepth: 12,
    },
  ];
  big = await bigJpeg(3 * MiB + 12_345);
}, SLOW);

// ---- helpers ----------------------------------------------------------------------------------------------------

/** Feeds bytes in awkward chunks, as a network upload would. */
async function* chunks(bytes: Uint8Array, size = 100_003): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

const rawObject = async (store: ObjectStore, key: string) => collect(await store.get(key));
const putRaw = (store: ObjectStore, key: string, bytes: Buffer) => store.put(key, chunks(bytes, 256 * 1024));

async function imageKeys(store: ObjectStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of store.list("images/")) keys.push(key);
  return keys.sort();
}

async function rowOf(id: string): Promise<ImageRow> {
  const row = await getImageRow(id);
  if (!row) throw new Error(`no images row ${id}`);
  return row;
}

/** An `onIntegrityFailure` callback that remembers its calls. */
function integrityWatch() {
  const calls: IntegrityError[] = [];
  return { calls, callback: (err: IntegrityError) => void calls.push(err) };
}

/** Reads a stream to its end or its error; returns what was delivered before. */
async function drain(body: ReadableStream<Uint8Array>): Promise<{ bytes: Buffer; error: unknown }> {
  const parts: Uint8Array[] = [];
  const reader = body.getReader();
  try {
    for (let next = await reader.read(); !next.done; next = await reader.read()) parts.push(next.value);
    return { bytes: Buffer.concat(parts), error: null };
  } catch (error) {
    return { bytes: Buffer.concat(parts), error };
  }
}

const httpError = (status: number, code: string) => (err: unknown) =>
  err instanceof HttpError && err.status === status && err.code === code;
const isIntegrityFailure = httpError(500, "integrity_failure");

/** Offset of segment `i` in a vault object (the header precedes segment 0). */
const segmentAt = (i: number) => HEADER_LENGTH + i * (SEGMENT_SIZE + TAG_LENGTH);
/** Index of the final segment of a plaintext of `size` bytes. */
const finalSegment = (size: number) => Math.floor(size / SEGMENT_SIZE);

function flipByte(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x5a;
  return copy;
}

function swapSegments(bytes: Buffer, a: number, b: number): Buffer {
  const [first, second] = a < b ? [a, b] : [b, a];
  return Buffer.concat([
    bytes.subarray(0, segmentAt(first)),
    bytes.subarray(segmentAt(second), segmentAt(second + 1)),
    bytes.subarray(segmentAt(first + 1), segmentAt(second)),
    bytes.subarray(segmentAt(first), segmentAt(first + 1)),
    bytes.subarray(segmentAt(second + 1)),
  ]);
}

/** Every row of every table in `public`, as PostgreSQL prints it (bytea as \x hex), by table. */
async function databaseDump(): Promise<Map<string, string>> {
  const tables = await db.execute<{ table_name: string }>(
    sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`,
  );
  const dump = new Map<string, string>();
  for (const { table_name } of tables.rows) {
    const rows = await db.execute<{ row: string }>(sql`select t::text as row from ${sql.identifier(table_name)} t`);
    dump.set(table_name, rows.rows.map((r) => r.row).join("\n"));
  }
  return dump;
}

/** Where `needle` occurs in a database dump, as text or as the hex of a bytea column. */
function dumpHits(dump: Map<string, string>, needle: string): string[] {
  const hex = Buffer.from(needle, "utf8").toString("hex");
  return [...dump].filter(([, text]) => text.includes(needle) || text.toLowerCase().includes(hex)).map(([t]) => t);
}

/** A loopback port with nothing listening on it: connecting is refused for real. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---- the suite, for any object store ------------------------------------------------------------------------------

interface Harness {
  store: ObjectStore;
  /** The raw bytes of every object the store holds, read beside the store's API where possible. */
  rawObjects(): Promise<Map<string, Buffer>>;
  cleanup(): Promise<void>;
}

function vaultSuite(setup: () => Promise<Harness>): void {
  let harness: Harness;
  let vault: Vault;
  let patientId = "";
  const store = () => harness.store;

  beforeAll(async () => {
    harness = await setup();
    await harness.store.ensureReady();
    vault = new Vault(harness.store, RING_K1);
    patientId = await newPatient();
  }, SLOW);
  afterAll(async () => {
    if (harness) await harness.cleanup();
  }, SLOW);

  const put = (bytes: Buffer, fileName: string | null = "cliche.jpg", patient = patientId) =>
    vault.storeImage({ patientId: patient, uploadedBy: doctorId, fileName, data: chunks(bytes) });

  async function read(row: ImageRow): Promise<Buffer> {
    const watch = integrityWatch();
    const bytes = await vault.readImage(row, watch.callback);
    expect(watch.calls).toEqual([]);
    return bytes;
  }

  describe("round trip", () => {
    it("stores JPEG, 8-bit PNG, 16-bit PNG and DICOM encrypted, and gives back identical bytes", { timeout: SLOW }, async () => {
      for (const sample of samples) {
        const stored = await put(sample.bytes, sample.fileName);
        expect(stored, sample.label).toEqual({
          id: expect.stringMatching(/^[0-9a-f-]{36}$/),
          size: sample.bytes.length,
          sha256: sha256(sample.bytes),
          contentType: sample.contentType,
        });
        const row = await rowOf(stored.id);
        expect(row, sample.label).toMatchObject({
          patientId,
          uploadedBy: doctorId,
          contentType: sample.contentType,
          size: sample.bytes.length,
          sha256: sha256(sample.bytes),
          width: sample.width,
          height: sample.height,
          bitDepth: sample.bitDepth,
          storageKey: `images/${stored.id}`,
          ciphertextSize: ciphertextLength(sample.bytes.length),
          formatVersion: 1,
          keyId: "k1",
          erasedAt: null,
        });
        expect(row.wrappedKey?.length, sample.label).toBe(60);

        const ciphertext = await rawObject(store(), row.storageKey);
        expect(ciphertext.length, sample.label).toBe(row.ciphertextSize);
        expect(ciphertext.subarray(0, 4).toString("latin1"), sample.label).toBe("NXVF");
        expect(ciphertext.includes(sample.bytes.subarray(0, 64)), `${sample.label}: plaintext visible`).toBe(false);

        const watch = integrityWatch();
        const opened = await vault.openImage(row, watch.callback);
        expect(opened.fileName, sample.label).toBe(sample.fileName);
        const { bytes, error } = await drain(opened.body);
        expect(error, sample.label).toBeNull();
        expect(bytes.equals(sample.bytes), `${sample.label} byte-identical`).toBe(true);
        expect((await read(row)).equals(sample.bytes), sample.label).toBe(true);
        expect(watch.calls).toEqual([]);
      }
    });

    it("keeps only non-identifying DICOM attributes: the patient's name and id are nowhere in the database", { timeout: SLOW }, async () => {
      const sample = samples.find((s) => s.contentType === "application/dicom")!;
      const stored = await put(sample.bytes, "DUPONT_CAMILLE.dcm");
      const row = await rowOf(stored.id);
      expect(row.dicom).toEqual({
        transferSyntaxUid: DICOM_TRANSFER_SYNTAX,
        modality: "MG",
        viewPosition: "CC",
        laterality: "L",
        rows: 32,
        columns: 24,
        bitsStored: 12,
        photometricInterpretation: "MONOCHROME2",
      });
      const dump = await databaseDump();
      expect(dump.get("images")).toContain(stored.id); // the dump really covers the images table
      for (const secret of ["DUPONT", "CAMILLE", DICOM_PATIENT_ID]) expect(dumpHits(dump, secret), secret).toEqual([]);
      // …while the original (name included) is intact in the vault.
      const back = await read(row);
      expect(back.equals(sample.bytes)).toBe(true);
      expect(back.includes(Buffer.from("DUPONT^CAMILLE", "latin1"))).toBe(true);
      const watch = integrityWatch();
      expect((await vault.openImage(row, watch.callback)).fileName).toBe("DUPONT_CAMILLE.dcm");
    });

    it("streams images over many segments (3 MiB and more), including an exact multiple of the segment size", { timeout: SLOW }, async () => {
      const exact = Buffer.concat([await jpeg(16, 16), randomBytes(SEGMENT_SIZE)]).subarray(0, 2 * SEGMENT_SIZE);
      const aligned = Buffer.concat([exact, randomBytes(2 * SEGMENT_SIZE - exact.length)]);
      for (const bytes of [big, aligned]) {
        const stored = await put(bytes, "gros.jpg");
        expect(stored.size).toBe(bytes.length);
        expect(stored.sha256).toBe(sha256(bytes));
        const row = await rowOf(stored.id);
        expect(row.ciphertextSize).toBe(ciphertextLength(bytes.length));
        expect((await rawObject(store(), row.storageKey)).length).toBe(ciphertextLength(bytes.length));
        expect((await read(row)).equals(bytes)).toBe(true);
      }
    });
  });

  describe("nothing readable at rest", () => {
    it("never stores a plaintext marker: not in any object, not in the database — but it is in the decrypted image", { timeout: SLOW }, async () => {
      const marker = `NEXUS-MARKER-${randomUUID()}`;
      const png = withPngText(await png8(20, 20), "Comment", marker);
      const jpg = Buffer.concat([await jpeg(20, 20), Buffer.from(marker, "latin1")]); // after EOI
      const storedPng = await put(png, `${marker}.png`);
      const storedJpg = await put(jpg, `${marker}.jpg`);

      const objects = await harness.rawObjects();
      expect(objects.size).toBeGreaterThanOrEqual(2);
      const needle = Buffer.from(marker, "latin1");
      const objectHits = [...objects].filter(([, bytes]) => bytes.includes(needle)).map(([key]) => key);
      expect(objectHits).toEqual([]);
      const dump = await databaseDump();
      expect(dump.get("images")).toContain(storedPng.id);
      expect(dumpHits(dump, marker)).toEqual([]);

      // The same scan finds the marker once decrypted: it would have found it at rest.
      for (const stored of [storedPng, storedJpg]) {
        const row = await rowOf(stored.id);
        expect((await read(row)).includes(needle)).toBe(true);
        const watch = integrityWatch();
        expect((await vault.openImage(row, watch.callback)).fileName).toMatch(marker);
      }
    });
  });

  describe("tampering: refused, never garbage", () => {
    /** Stores the big image; returns its row and its original ciphertext. */
    async function victim(bytes = big) {
      const stored = await put(bytes, "victime.jpg");
      const row = await rowOf(stored.id);
      return { row, original: bytes, ciphertext: await rawObject(store(), row.storageKey) };
    }

    /** openImage itself rejects (no byte, no status line) and reports the failure; readImage does too. */
    async function expectRefusedBeforeAnyByte(row: ImageRow) {
      const watch = integrityWatch();
      await expect(vault.openImage(row, watch.callback)).rejects.toSatisfy(isIntegrityFailure);
      expect(watch.calls).toHaveLength(1);
      expect(watch.calls[0]).toBeInstanceOf(IntegrityError);
      const again = integrityWatch();
      await expect(vault.readImage(row, again.callback)).rejects.toSatisfy(isIntegrityFailure);
      expect(again.calls).toHaveLength(1);
    }

    /** The image opens (its first segment is authentic) but the stream errors at `segment`: only authentic bytes before it. */
    async function expectStreamFailsAt(row: ImageRow, original: Buffer, segment: number) {
      const watch = integrityWatch();
      const { body } = await vault.openImage(row, watch.callback);
      const { bytes, error } = await drain(body);
      expect(error).toBeInstanceOf(IntegrityError);
      expect((error as IntegrityError).segment).toBe(segment);
      expect(bytes.length).toBeLessThanOrEqual(segment * SEGMENT_SIZE);
      expect(bytes.equals(original.subarray(0, bytes.length)), "delivered bytes are an authentic prefix").toBe(true);
      expect(watch.calls).toHaveLength(1);
      const again = integrityWatch();
      await expect(vault.readImage(row, again.callback)).rejects.toSatisfy(isIntegrityFailure);
      expect(again.calls).toHaveLength(1);
    }

    /** Puts the original ciphertext back and checks the image reads again: the tamper was the only cause. */
    async function restore(row: ImageRow, ciphertext: Buffer, original: Buffer) {
      await putRaw(store(), row.storageKey, ciphertext);
      expect((await read(await rowOf(row.id))).equals(original)).toBe(true);
    }

    async function tamperObject(mutate: (ciphertext: Buffer) => Buffer, check: (row: ImageRow, original: Buffer) => Promise<void>) {
      const { row, original, ciphertext } = await victim();
      await putRaw(store(), row.storageKey, mutate(ciphertext));
      await check(row, original);
      await restore(row, ciphertext, original);
    }

    for (const [part, offset] of [
      ["magic", 1],
      ["version", 4],
      ["nonce prefix", 8],
    ] as const) {
      it(`refuses a flipped byte in the header (${part}) before any byte`, { timeout: SLOW }, () =>
        tamperObject((c) => flipByte(c, offset), (row) => expectRefusedBeforeAnyByte(row)),
      );
    }

    it("refuses a flipped byte in the first segment before any byte", { timeout: SLOW }, () =>
      tamperObject((c) => flipByte(c, segmentAt(0) + 1000), (row) => expectRefusedBeforeAnyByte(row)),
    );

    it("fails the stream at a flipped byte in the last segment, before delivering any of it", { timeout: SLOW }, () => {
      const last = finalSegment(big.length);
      return tamperObject((c) => flipByte(c, segmentAt(last) + 7), (row, original) => expectStreamFailsAt(row, original, last));
    });

    it("fails the stream when the final segment is dropped", { timeout: SLOW }, () => {
      const last = finalSegment(big.length);
      return tamperObject((c) => c.subarray(0, segmentAt(last)), (row, original) => expectStreamFailsAt(row, original, last));
    });

    it("fails the stream when the object is cut in the middle of a segment", { timeout: SLOW }, () =>
      tamperObject((c) => c.subarray(0, segmentAt(2) + 4321), (row, original) => expectStreamFailsAt(row, original, 2)),
    );

    it("refuses an object cut inside its header or emptied", { timeout: SLOW }, async () => {
      await tamperObject((c) => c.subarray(0, HEADER_LENGTH - 5), (row) => expectRefusedBeforeAnyByte(row));
      await tamperObject(() => Buffer.alloc(0), (row) => expectRefusedBeforeAnyByte(row));
    });

    it("fails the stream when bytes are appended after the final segment", { timeout: SLOW }, () => {
      const last = finalSegment(big.length);
      return tamperObject((c) => Buffer.concat([c, randomBytes(TAG_LENGTH)]), (row, original) => expectStreamFailsAt(row, original, last));
    });

    it("refuses swapped segments (first with second: before any byte; later ones: the stream fails)", { timeout: SLOW }, async () => {
      await tamperObject((c) => swapSegments(c, 0, 1), (row) => expectRefusedBeforeAnyByte(row));
      // Segments are decrypted in batches of one read (1 MiB from the local store): segment 20 lies past the first.
      await tamperObject((c) => swapSegments(c, 20, 21), (row, original) => expectStreamFailsAt(row, original, 20));
    });

    it("refuses the ciphertexts of two images swapped between their keys", { timeout: SLOW }, async () => {
      const a = await victim();
      const b = await victim();
      await putRaw(store(), a.row.storageKey, b.ciphertext);
      await putRaw(store(), b.row.storageKey, a.ciphertext);
      await expectRefusedBeforeAnyByte(a.row);
      await expectRefusedBeforeAnyByte(b.row);
      await restore(a.row, a.ciphertext, a.original);
      await restore(b.row, b.ciphertext, b.original);
    });

    it("refuses a tampered wrapped key in the database row, and a wrapped key moved from another image", { timeout: SLOW }, async () => {
      const a = await victim(samples[0]!.bytes);
      const b = await victim(samples[1]!.bytes);
      const setWrapped = (id: string, wrappedKey: Buffer) => db.update(images).set({ wrappedKey }).where(eq(images.id, id));

      await setWrapped(a.row.id, flipByte(a.row.wrappedKey!, 30));
      await expectRefusedBeforeAnyByte(await rowOf(a.row.id));
      await setWrapped(a.row.id, b.row.wrappedKey!); // authentic, but bound to image b
      await expectRefusedBeforeAnyByte(await rowOf(a.row.id));

      await setWrapped(a.row.id, a.row.wrappedKey!);
      expect((await read(await rowOf(a.row.id))).equals(a.original)).toBe(true);
    });

    it("refuses a tampered encrypted file name as an integrity failure", { timeout: SLOW }, async () => {
      const a = await victim(samples[0]!.bytes);
      const setName = (encryptedName: Buffer) => db.update(images).set({ encryptedName }).where(eq(images.id, a.row.id));
      await setName(flipByte(a.row.encryptedName!, 15));
      try {
        await expectRefusedBeforeAnyByte(await rowOf(a.row.id));
      } finally {
        await setName(a.row.encryptedName!);
      }
    });
  });

  describe("master key rotation", () => {
    it("re-wraps every data key under the new key, leaves the objects byte-identical, and is idempotent", { timeout: SLOW }, async () => {
      const first = await put(samples[2]!.bytes, "avant-rotation.png");
      const second = await put(big, "avant-rotation-gros.jpg");
      const mine = async () =>
        db.select().from(images).where(and(eq(images.patientId, patientId), isNotNull(images.wrappedKey)));
      const before = await mine();
      expect(before.length).toBeGreaterThanOrEqual(2);
      const objectsBefore = new Map<string, string>();
      for (const row of before) objectsBefore.set(row.id, sha256(await rawObject(store(), row.storageKey)));
      // Every live row of the database (other suites' included) that is not yet under k2.
      const pending = await db.$count(images, and(isNotNull(images.wrappedKey), ne(images.keyId, "k2")));
      expect(pending).toBeGreaterThanOrEqual(before.length);

      vault.useKeyring(RING_K1_K2);
      const result = await vault.rewrapAll();
      expect(result.rewrapped).toBe(pending);
      expect(await db.$count(images, and(isNotNull(images.wrappedKey), ne(images.keyId, "k2")))).toBe(0);

      const after = await mine();
      expect(after.map((r) => r.id).sort()).toEqual(before.map((r) => r.id).sort());
      for (const row of after) {
        const old = before.find((r) => r.id === row.id)!;
        expect(row.keyId).toBe("k2");
        expect(row.wrappedKey!.equals(old.wrappedKey!)).toBe(false);
        expect(sha256(await rawObject(store(), row.storageKey)), "object untouched").toBe(objectsBefore.get(row.id));
      }
      expect((await read(await rowOf(first.id))).equals(samples[2]!.bytes)).toBe(true);
      expect((await read(await rowOf(second.id))).equals(big)).toBe(true);
      // The old key is no longer needed to read.
      const withoutK1 = new Vault(store(), RING_K2_ONLY);
      expect((await withoutK1.readImage(await rowOf(first.id), () => undefined)).equals(samples[2]!.bytes)).toBe(true);

      const live = await db.$count(images, isNotNull(images.wrappedKey));
      expect(await vault.rewrapAll()).toEqual({ rewrapped: 0, alreadyActive: live, failed: [] });
    });

    it("skips and reports a key that cannot be unwrapped instead of blocking the rotation", { timeout: SLOW }, async () => {
      vault.useKeyring(RING_K1); // new images under k1, then rotate to k2
      const broken = await rowOf((await put(samples[0]!.bytes, "cle-alteree.jpg")).id);
      const healthy = await put(samples[1]!.bytes, "cle-saine.png");
      const original = broken.wrappedKey!;
      await db.update(images).set({ wrappedKey: flipByte(original, 20) }).where(eq(images.id, broken.id));
      try {
        vault.useKeyring(RING_K1_K2);
        const result = await vault.rewrapAll();
        expect(result.failed).toEqual([broken.id]);
        expect((await rowOf(healthy.id)).keyId).toBe("k2");
        expect((await rowOf(broken.id)).keyId).not.toBe("k2");
      } finally {
        await db.update(images).set({ wrappedKey: original }).where(eq(images.id, broken.id));
        vault.useKeyring(RING_K1);
      }
    });
  });

  describe("erasure", () => {
    it("erases an image: wrapped key and name gone, object deleted, row marked, reads answer 410", { timeout: SLOW }, async () => {
      const stored = await put(samples[0]!.bytes, "a-effacer.jpg");
      const before = await rowOf(stored.id);
      expect(await vault.eraseImage(stored.id, doctorId)).toBe(true);

      const after = await rowOf(stored.id);
      expect(after).toMatchObject({ wrappedKey: null, keyId: null, encryptedName: null, erasedBy: doctorId });
      expect(after.erasedAt).toBeInstanceOf(Date);
      expect(after.objectDeletedAt).toBeInstanceOf(Date);
      await expect(store().get(before.storageKey)).rejects.toBeInstanceOf(NotFoundError);
      expect(await imageKeys(store())).not.toContain(before.storageKey);

      const watch = integrityWatch();
      await expect(vault.openImage(after, watch.callback)).rejects.toSatisfy(httpError(410, "erased"));
      await expect(vault.readImage(after, watch.callback)).rejects.toSatisfy(httpError(410, "erased"));
      expect(watch.calls).toEqual([]);
      // Even a copy of the row taken before the erasure (wrapped key included) reads nothing any more.
      await expect(vault.openImage(before, watch.callback)).rejects.toSatisfy(isIntegrityFailure);
      expect(await vault.eraseImage(stored.id, doctorId)).toBe(false);
    });

    it("erases a patient: every image crypto-shredded and deleted, the name replaced, the account unlinked", { timeout: SLOW }, async () => {
      const account = await createUser({
        email: `vault-patient-${randomUUID().slice(0, 8)}@test.nexus`,
        name: "Camille Effacable",
        role: "patient",
        password: "correct-horse-battery",
      });
      const erased = await newPatient("Camille Effacable", account.id);
      const bystander = await newPatient("Patiente Voisine");
      const mine = [await put(samples[0]!.bytes, "e1.jpg", erased), await put(samples[1]!.bytes, "e2.png", erased)];
      const kept = await put(samples[2]!.bytes, "voisine.png", bystander);

      expect(await vault.erasePatient(erased, doctorId)).toEqual({ images: 2 });

      for (const stored of mine) {
        const row = await rowOf(stored.id);
        expect(row).toMatchObject({ wrappedKey: null, keyId: null, encryptedName: null, erasedBy: doctorId });
        expect(row.erasedAt).toBeInstanceOf(Date);
        expect(row.objectDeletedAt).toBeInstanceOf(Date);
        await expect(store().get(row.storageKey)).rejects.toBeInstanceOf(NotFoundError);
        await expect(vault.openImage(row, () => undefined)).rejects.toSatisfy(httpError(410, "erased"));
      }
      expect((await vault.listImages(erased)).every((i) => i.erasedAt instanceof Date)).toBe(true);
      const [patient] = await db.select().from(patients).where(eq(patients.id, erased));
      expect(patient).toMatchObject({ displayName: "Patient effacé", userId: null });
      expect(patient!.erasedAt).toBeInstanceOf(Date);
      expect(dumpHits(new Map([["patients", (await databaseDump()).get("patients")!]]), "Camille Effacable")).toEqual([]);

      // Another patient's image is untouched.
      expect((await read(await rowOf(kept.id))).equals(samples[2]!.bytes)).toBe(true);
      expect(await vault.erasePatient(erased, doctorId)).toEqual({ images: 0 });
    });

    // The linked account is looked up before the transaction cuts the link (userId: null), then disabled.
    it("erases a patient: their account is disabled", { timeout: SLOW }, async () => {
      const account = await createUser({
        email: `vault-patient-${randomUUID().slice(0, 8)}@test.nexus`,
        name: "Compte A Desactiver",
        role: "patient",
        password: "correct-horse-battery",
      });
      const erased = await newPatient("Compte A Desactiver", account.id);
      await vault.erasePatient(erased, doctorId);
      const [user] = await db.select({ disabledAt: users.disabledAt }).from(users).where(eq(users.id, account.id));
      expect(user!.disabledAt).toBeInstanceOf(Date);
    });
  });

  describe("orphans and failures", () => {
    it("finds an object without a row, removes it, and never lists a live image", { timeout: SLOW }, async () => {
      const live = await put(samples[0]!.bytes, "vivante.jpg");
      const orphan = `images/${randomUUID()}`;
      await putRaw(store(), orphan, randomBytes(5000));

      const found = await vault.findOrphans();
      expect(found).toEqual([orphan]);
      expect(await vault.removeOrphans(found)).toBe(1);
      expect(await vault.findOrphans()).toEqual([]);
      await expect(store().get(orphan)).rejects.toBeInstanceOf(NotFoundError);
      expect((await read(await rowOf(live.id))).equals(samples[0]!.bytes)).toBe(true);
    });

    it("leaves no object behind when the database refuses the row (unknown patient: foreign key)", { timeout: SLOW }, async () => {
      const before = await imageKeys(store());
      const ghost = randomUUID();
      const refused = await put(big, "orpheline.jpg", ghost).then(
        () => null,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(Error);
      expect(String((refused as { cause?: unknown }).cause ?? refused)).toMatch(/foreign key/i);
      expect(await imageKeys(store())).toEqual(before);
      expect(await db.$count(images, eq(images.patientId, ghost))).toBe(0);
    });

    it("refuses what is not an image (415) and empty files (400), storing nothing", { timeout: SLOW }, async () => {
      const before = await imageKeys(store());
      const count = await db.$count(images, eq(images.patientId, patientId));
      await expect(put(Buffer.from("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"), "scan.jpg")).rejects.toSatisfy(
        httpError(415, "unsupported_type"),
      );
      await expect(put(Buffer.from("just some text, named like an image"), "photo.png")).rejects.toSatisfy(
        httpError(415, "unsupported_type"),
      );
      await expect(put(Buffer.alloc(0), "vide.jpg")).rejects.toSatisfy(httpError(400, "empty"));
      expect(await imageKeys(store())).toEqual(before);
      expect(await db.$count(images, eq(images.patientId, patientId))).toBe(count);
    });

    it.skipIf(!PYDICOM)("refuses a DICOM object that holds no image (a structured report, an RT plan) as such, not as a damaged image", { timeout: SLOW }, async () => {
      const before = await imageKeys(store());
      for (const name of ["test-SR.dcm", "rtplan.dcm"]) {
        const refused = await put(readFileSync(join(PYDICOM!, name)), name).then(
          () => null,
          (err: unknown) => err,
        );
        expect(refused, name).toSatisfy(httpError(422, "dicom_without_image"));
        expect((refused as HttpError).message).toMatch(/ne contient pas d'image/);
      }
      expect(await imageKeys(store())).toEqual(before);
    });
  });
}

// ---- the stores ---------------------------------------------------------------------------------------------------

describe("vault on the local store", () => {
  let dataDir = "";
  vaultSuite(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "nexus-vault-test-"));
    const root = join(dataDir, "objects");
    return {
      store: new LocalStore(root),
      // Straight from the file system: every file, in-flight `.partial` ones included.
      async rawObjects() {
        const found = new Map<string, Buffer>();
        for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
          if (!entry.isFile()) continue;
          const path = join(entry.parentPath, entry.name);
          found.set(relative(root, path), readFileSync(path));
        }
        return found;
      },
      cleanup: () => rm(dataDir, { recursive: true, force: true }),
    };
  });
});

describe.skipIf(!s3Options)("vault on S3", () => {
  const options = s3Options as S3StoreOptions; // collected even when skipped: construct nothing here
  const bucket = `nexus-test-${randomBytes(4).toString("hex")}`;
  vaultSuite(async () => {
    const store = new S3Store({ ...options, bucket });
    return {
      store,
      async rawObjects() {
        const found = new Map<string, Buffer>();
        for await (const key of store.list()) found.set(key, await rawObject(store, key));
        return found;
      },
      async cleanup() {
        for await (const key of store.list()) await store.delete(key);
        await s3Client(options).removeBucket(bucket);
      },
    };
  });
});

describe("vault with its object storage down (S3 on a closed loopback port)", () => {
  let down: Vault;
  let patientId = "";
  beforeAll(async () => {
    const store = new S3Store({
      endPoint: "127.0.0.1",
      port: await closedPort(),
      useSSL: false,
      accessKey: "nexus-test-access",
      secretKey: "nexus-test-secret-key",
      bucket: "nexus-down",
    });
    down = new Vault(store, RING_K1_K2);
    patientId = await newPatient();
  });

  it("answers 503 to uploads, small or multipart, and records nothing", { timeout: SLOW }, async () => {
    for (const bytes of [samples[0]!.bytes, await bigJpeg(9 * MiB)]) {
      await expect(
        down.storeImage({ patientId, uploadedBy: doctorId, fileName: "panne.jpg", data: chunks(bytes) }),
      ).rejects.toSatisfy(httpError(503, "storage_unavailable"));
    }
    expect(await db.$count(images, eq(images.patientId, patientId))).toBe(0);
  });

  it("answers 503, not an integrity failure, to a read while storage is down", { timeout: SLOW }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "nexus-vault-down-"));
    try {
      const up = new Vault(new LocalStore(join(dataDir, "objects")), RING_K1_K2);
      const stored = await up.storeImage({ patientId, uploadedBy: doctorId, fileName: null, data: chunks(samples[1]!.bytes) });
      const row = await rowOf(stored.id);
      const watch = integrityWatch();
      await expect(down.openImage(row, watch.callback)).rejects.toSatisfy(httpError(503, "storage_unavailable"));
      expect(watch.calls).toEqual([]);
      expect(await up.eraseImage(stored.id, doctorId)).toBe(true);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
