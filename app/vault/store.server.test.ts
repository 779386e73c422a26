import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalStore } from "./local-store.server";
import { S3Store, s3Client, s3OptionsFromEnv, storeFromEnv, type S3StoreOptions } from "./s3-store.server";
import { InvalidKeyError, NotFoundError, StorageUnavailableError, type ObjectStore } from "./store.server";

const MiB = 1024 * 1024;
/** Network round trips against a real S3 server (first PUT into a new bucket alone takes ~2 s on Ceph). */
const SLOW = 60_000;
const s3Options = s3OptionsFromEnv(process.env);
if (!s3Options) {
  console.log(
    "skipped: no S3 endpoint (set S3_HOST/S3_PORT/S3_ACCESS/S3_SECRET, e.g. via shared/tools/ceph-rgw/with-ceph-rgw.sh)",
  );
}

/** Random bytes in chunks of an awkward size, hashed on the way out: nothing is ever held whole. */
function randomStream(total: number, chunk = MiB + 17): { body: AsyncGenerator<Uint8Array>; sha256: () => string } {
  const hash = createHash("sha256");
  async function* body(): AsyncGenerator<Uint8Array> {
    for (let sent = 0; sent < total; sent += chunk) {
      const piece = randomBytes(Math.min(chunk, total - sent));
      hash.update(piece);
      yield piece;
    }
  }
  return { body: body(), sha256: () => hash.digest("hex") };
}

async function digest(source: AsyncIterable<Uint8Array>): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: hash.digest("hex") };
}

async function readAll(store: ObjectStore, key: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of await store.get(key)) parts.push(chunk);
  return Buffer.concat(parts);
}

async function keys(store: ObjectStore, prefix?: string): Promise<string[]> {
  const found: string[] = [];
  for await (const key of store.list(prefix)) found.push(key);
  return found.sort();
}

async function* failingAfter(bytes: number): AsyncGenerator<Uint8Array> {
  yield randomBytes(bytes);
  throw new Error("client went away");
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Harness {
  store: ObjectStore;
  cleanup(): Promise<void>;
}

/** The behaviour every ObjectStore must have, run against each implementation. */
function storeContract(setup: () => Promise<Harness>): void {
  let harness: Harness;
  const run = `run-${randomBytes(4).toString("hex")}/`;
  const k = (name: string) => `${run}${name}`;
  const store = () => harness.store;

  beforeAll(async () => {
    harness = await setup();
    await harness.store.ensureReady();
  }, SLOW);
  afterAll(async () => {
    if (!harness) return;
    for await (const key of harness.store.list(run)) await harness.store.delete(key);
    await harness.cleanup();
  }, SLOW);

  it("is reachable", { timeout: SLOW }, async () => {
    await expect(store().ping()).resolves.toBeUndefined();
  });

  it("round-trips a 20 MiB stream of unknown length", { timeout: SLOW }, async () => {
    const { body, sha256 } = randomStream(20 * MiB);
    expect(await store().put(k("big.bin"), body)).toEqual({ size: 20 * MiB });
    expect(await digest(await store().get(k("big.bin")))).toEqual({ size: 20 * MiB, sha256: sha256() });
  });

  it("round-trips an empty body, a small body and a Readable", { timeout: SLOW }, async () => {
    expect(await store().put(k("empty"), Readable.from([]))).toEqual({ size: 0 });
    expect((await readAll(store(), k("empty"))).length).toBe(0);
    await store().put(k("small.txt"), Readable.from([Buffer.from("hello "), Buffer.from("vault")]));
    expect((await readAll(store(), k("small.txt"))).toString()).toBe("hello vault");
  });

  it("replaces an existing object", { timeout: SLOW }, async () => {
    await store().put(k("replace"), Readable.from([Buffer.from("first")]));
    await store().put(k("replace"), Readable.from([Buffer.from("second")]));
    expect((await readAll(store(), k("replace"))).toString()).toBe("second");
  });

  it("throws NotFoundError for a missing object", { timeout: SLOW }, async () => {
    await expect(store().get(k("never-stored"))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("deletes idempotently", { timeout: SLOW }, async () => {
    await store().put(k("doomed"), Readable.from([Buffer.from("x")]));
    await store().delete(k("doomed"));
    await store().delete(k("doomed"));
    await store().delete(k("never-stored"));
    await expect(store().get(k("doomed"))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("lists keys by prefix", { timeout: SLOW }, async () => {
    for (const name of ["list/a/1", "list/a/2", "list/ab/1", "list/b/1"]) {
      await store().put(k(name), Readable.from([Buffer.from(name)]));
    }
    expect(await keys(store(), k("list/a/"))).toEqual([k("list/a/1"), k("list/a/2")]);
    expect(await keys(store(), k("list/a"))).toEqual([k("list/a/1"), k("list/a/2"), k("list/ab/1")]);
    expect(await keys(store(), k("list/"))).toHaveLength(4);
    expect(await keys(store(), k("nothing-here/"))).toEqual([]);
  });

  it("refuses unsafe keys instead of rewriting them", { timeout: SLOW }, async () => {
    const bad = [
      "",
      "../escape",
      "a/../../b",
      "/absolute",
      "a//b",
      "a/./b",
      "trailing/",
      "sp ace",
      "semi;colon",
      "ünï",
      "x.partial",
      "a".repeat(1025),
    ];
    for (const key of bad) {
      await expect(store().put(key, Readable.from([Buffer.from("x")])), key).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store().get(key), key).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await expect(keys(store(), "../")).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(keys(store(), "/")).rejects.toBeInstanceOf(InvalidKeyError);
    await store().put(k("ok/Images_2026-11.v1/x-Y_z.bin"), Readable.from([Buffer.from("fine")]));
    expect((await readAll(store(), k("ok/Images_2026-11.v1/x-Y_z.bin"))).toString()).toBe("fine");
  });

  it("leaves no object behind when the body fails part-way (small or multipart)", { timeout: SLOW }, async () => {
    await expect(store().put(k("failed-small"), failingAfter(1000))).rejects.toThrow("client went away");
    await expect(store().put(k("failed-large"), failingAfter(10 * MiB))).rejects.toThrow("client went away");
    await expect(store().get(k("failed-small"))).rejects.toBeInstanceOf(NotFoundError);
    await expect(store().get(k("failed-large"))).rejects.toBeInstanceOf(NotFoundError);
  });
}

describe("local store", () => {
  let dataDir = ""; // created by the suite's setup, so a failed collection leaves nothing behind
  const root = () => join(dataDir, "objects");
  storeContract(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "nexus-store-test-"));
    return { store: new LocalStore(root()), cleanup: () => rm(dataDir, { recursive: true, force: true }) };
  });

  it("creates files 0600 in directories 0700, and leaves no .partial files", async () => {
    const store = new LocalStore(root());
    await store.put("modes/obj.bin", Readable.from([Buffer.from("x")]));
    await expect(store.put("modes/failed.bin", failingAfter(10))).rejects.toThrow();
    expect(statSync(join(root(), "modes", "obj.bin")).mode & 0o777).toBe(0o600);
    expect(statSync(join(root(), "modes")).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(root(), "modes"))).toEqual(["obj.bin"]);
    await store.delete("modes/obj.bin");
  });

  it("round-trips bodies around the sizes where the writes change (whole below 256 KiB, streamed in 1 MiB batches above)", async () => {
    const store = new LocalStore(root());
    const sizes = [1, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, MiB, MiB + 1, 3 * MiB + 5];
    for (const size of sizes) {
      const body = randomBytes(size);
      const pieces = Array.from({ length: Math.ceil(size / 65_536) }, (_, i) => body.subarray(i * 65_536, (i + 1) * 65_536));
      await expect(store.put(`sizes/${size}`, Readable.from(pieces))).resolves.toEqual({ size });
      expect((await readAll(store, `sizes/${size}`)).equals(body)).toBe(true);
    }
    expect(readdirSync(join(root(), "sizes")).sort()).toEqual(sizes.map(String).sort());
  });

  it("makes a directory removed behind its back again (small and large bodies)", async () => {
    const store = new LocalStore(root());
    await store.put("gone/a", Readable.from([Buffer.from("a")]));
    await rm(join(root(), "gone"), { recursive: true });
    await store.put("gone/b", Readable.from([Buffer.from("b")]));
    expect((await readAll(store, "gone/b")).toString()).toBe("b");
    await rm(join(root(), "gone"), { recursive: true });
    await store.put("gone/c", Readable.from([Buffer.alloc(2 * MiB, 7)]));
    expect((await readAll(store, "gone/c")).length).toBe(2 * MiB);
    expect(statSync(join(root(), "gone")).mode & 0o777).toBe(0o700);
  });

  it("reports a missing directory as unavailable", async () => {
    await expect(new LocalStore(join(dataDir, "nope")).ping()).rejects.toBeInstanceOf(StorageUnavailableError);
  });
});

describe.skipIf(!s3Options)("S3 store", () => {
  const options = s3Options as S3StoreOptions; // the body is collected even when skipped: construct nothing here
  const bucket = `nexus-test-${randomBytes(4).toString("hex")}`;
  const removeBucket = () => s3Client(options).removeBucket(bucket);

  it("reports a missing bucket as unavailable until ensureReady creates it", { timeout: SLOW }, async () => {
    const store = new S3Store({ ...options, bucket });
    await expect(store.ping()).rejects.toThrow(/bucket .* does not exist/);
    await store.ensureReady();
    await store.ensureReady(); // idempotent
    await expect(store.ping()).resolves.toBeUndefined();
  });

  describe("contract", () => {
    storeContract(async () => ({
      store: new S3Store({ ...options, bucket }),
      cleanup: removeBucket,
    }));
  });

  it("raises StorageUnavailableError when the server is down (closed loopback port)", { timeout: SLOW }, async () => {
    const down = new S3Store({ ...options, endPoint: "127.0.0.1", port: await closedPort(), bucket });
    await expect(down.ping()).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(down.put("k/small", Readable.from([Buffer.from("x")]))).rejects.toBeInstanceOf(
      StorageUnavailableError,
    );
    await expect(down.put("k/large", randomStream(10 * MiB).body)).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(down.get("k/small")).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(down.delete("k/small")).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(keys(down)).rejects.toBeInstanceOf(StorageUnavailableError);
  });
});

describe("storeFromEnv", () => {
  const secrets = { S3_ACCESS_KEY: "AKIAEXAMPLE", S3_SECRET_KEY: "s3cr3t-value" };

  it("uses the local directory when no endpoint is set", () => {
    const store = storeFromEnv({}, "/srv/nexus");
    expect(store.kind).toBe("local");
    expect(store.location).toBe(join("/srv/nexus", "objects"));
  });

  it("uses S3 with an endpoint URL, and never shows the credentials", () => {
    const store = storeFromEnv({ S3_ENDPOINT: "https://minio.example.org:9000", ...secrets }, "/srv");
    expect(store.kind).toBe("s3");
    expect(store.location).toBe("https://minio.example.org:9000/sante-data");
    expect(JSON.stringify(store.location)).not.toContain("s3cr3t");
  });

  it("accepts the S3_HOST / S3_ACCESS / S3_SECRET names and the MINIO_* aliases", () => {
    expect(
      s3OptionsFromEnv({ S3_HOST: "127.0.0.1", S3_PORT: "7480", S3_ACCESS: "a", S3_SECRET: "b", S3_BUCKET: "x-y" }),
    ).toEqual({
      endPoint: "127.0.0.1",
      port: 7480,
      useSSL: false,
      accessKey: "a",
      secretKey: "b",
      bucket: "x-y",
    });
    expect(
      s3OptionsFromEnv({
        MINIO_ENDPOINT: "minio",
        MINIO_PORT: "9000",
        MINIO_USE_SSL: "true",
        MINIO_ACCESS_KEY: "a",
        MINIO_SECRET_KEY: "b",
      }),
    ).toEqual({ endPoint: "minio", port: 9000, useSSL: true, accessKey: "a", secretKey: "b", bucket: "sante-data" });
  });

  it("names what is missing or malformed", () => {
    expect(() => s3OptionsFromEnv({ S3_HOST: "h", S3_ACCESS_KEY: "a" })).toThrow(/S3_SECRET_KEY/);
    expect(() => s3OptionsFromEnv({ S3_HOST: "h", S3_SECRET_KEY: "b" })).toThrow(/S3_ACCESS_KEY/);
    expect(() => s3OptionsFromEnv({ S3_HOST: "h", S3_PORT: "99999", ...secrets })).toThrow(/S3_PORT "99999"/);
    expect(() => s3OptionsFromEnv({ S3_HOST: "h", S3_USE_SSL: "maybe", ...secrets })).toThrow(/S3_USE_SSL/);
    expect(() => s3OptionsFromEnv({ S3_ENDPOINT: "ftp://h", ...secrets })).toThrow(/http or https/);
  });
});
