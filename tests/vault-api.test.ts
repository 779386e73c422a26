/**
 * The image API (shared/API.md) against the running server: upload, download, type by content, size limit,
 * permissions and consent, integrity failures, erasure. The server's object store is the local directory
 * `<serverDataDir>/objects` or, when S3_HOST is set, the `sante-data` bucket of that S3 server; tampering tests
 * rewrite its ciphertext there. Images are generated in memory only.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { s3Client, s3OptionsFromEnv } from "../app/vault/s3-store.server";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { bigJpeg, dicom, jpeg, MiB, png16, png8 } from "./helpers/images";
import { createAccount, createPatient, uniqueEmail } from "./helpers/fixtures";
import { uploadExam } from "./helpers/exams";
import { api, baseUrl, tokenFor } from "./helpers/http";

const MAX_UPLOAD = 50 * MiB;
const SLOW = 60_000;
// Vault format v1 (app/vault/format.server.ts): 12-byte header, then segments of 64 KiB plaintext + 16-byte tag.
const HEADER_LENGTH = 12;
const SEGMENT = 64 * 1024;
const segmentAt = (i: number) => HEADER_LENGTH + i * (SEGMENT + 16);

// ---- the server's object store, read and written beside the server ------------------------------------------------

interface ServerObjects {
  read(key: string): Promise<Buffer | null>;
  write(key: string, bytes: Buffer): Promise<void>;
  /** Every object under `images/` (in-flight files of the local store included). */
  keys(): Promise<string[]>;
}

function serverObjects(): ServerObjects {
  const s3 = s3OptionsFromEnv(process.env);
  if (!s3) {
    const root = join(inject("serverDataDir"), "objects");
    const path = (key: string) => join(root, ...key.split("/"));
    return {
      async read(key) {
        try {
          return readFileSync(path(key));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
          throw err;
        }
      },
      async write(key, bytes) {
        writeFileSync(path(key), bytes); // ciphertext only
      },
      async keys() {
        try {
          return readdirSync(join(root, "images")).map((name) => `images/${name}`).sort();
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
          throw err;
        }
      },
    };
  }
  const bucket = s3.bucket!; // the server's bucket: the same variables, the same default
  const client = s3Client(s3);
  return {
    async read(key) {
      try {
        const parts: Buffer[] = [];
        for await (const part of await client.getObject(bucket, key)) parts.push(part as Buffer);
        return Buffer.concat(parts);
      } catch (err) {
        if ((err as { code?: string }).code === "NoSuchKey") return null;
        throw err;
      }
    },
    async write(key, bytes) {
      await client.putObject(bucket, key, bytes, bytes.length);
    },
    async keys() {
      const names: string[] = [];
      for await (const item of client.listObjectsV2(bucket, "images/", true)) {
        if ((item as { name?: string }).name) names.push((item as { name: string }).name);
      }
      return names.sort();
    },
  };
}

// ---- HTTP helpers -------------------------------------------------------------------------------------------------

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

interface FilePart {
  bytes: Uint8Array;
  name?: string;
  /** The client's MIME type: never trusted by the server. */
  type?: string;
}

async function json(res: Response): Promise<any> {
  const text = await res.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}

/** POST /api/v1/patients/:id/images as multipart, the way a client library would send a file. */
async function upload(token: string, patientId: string, file: FilePart | null, fields: Record<string, string> = {}) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  if (file) {
    const blob = new Blob([new Uint8Array(file.bytes)], { type: file.type ?? "application/octet-stream" });
    form.append("file", blob, file.name ?? "cliche.bin");
  }
  const res = await fetch(`${baseUrl()}/api/v1/patients/${patientId}/images`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
    body: form,
  });
  return { status: res.status, headers: res.headers, body: await json(res) };
}

/** Uploads and insists on a 201; returns the new image id. */
async function uploaded(token: string, patientId: string, bytes: Uint8Array, name = "cliche.jpg"): Promise<string> {
  const res = await upload(token, patientId, { bytes, name });
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

/** GET /api/v1/images/:id: the bytes on 200, the JSON error otherwise. */
async function download(token: string | null, imageId: string) {
  const res = await fetch(`${baseUrl()}/api/v1/images/${imageId}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  if (res.status !== 200) return { status: res.status, headers: res.headers, bytes: null, body: await json(res) };
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()), body: null };
}

const listing = (token: string, patientId: string) => api("GET", `/api/v1/patients/${patientId}/images`, { token });
const listedIds = async (token: string, patientId: string) =>
  ((await listing(token, patientId)).body.images as { id: string }[]).map((i) => i.id).sort();

/**
 * Streams a multipart upload of `total` file bytes (a valid JPEG, then random bytes) through node:http, chunk by
 * chunk, and stops writing as soon as the response arrives. Returns the status, the body and how many bytes had
 * been handed to the socket when the response came.
 */
function oversizeUpload(token: string, patientId: string, head: Buffer, total: number) {
  const boundary = `----nexus-${randomUUID()}`;
  const preamble = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="enorme.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
  );
  const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`);
  const filler = randomBytes(MiB);
  const url = new URL(`/api/v1/patients/${patientId}/images`, baseUrl());
  return new Promise<{ status: number; body: any; writtenAtResponse: number }>((resolve, reject) => {
    let written = 0;
    let writtenAtResponse: number | null = null;
    let closed = false;
    let wake: (() => void) | null = null;
    const wakeUp = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const req = request(url, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${token}`,
        "Content-Type": `multipart/form-data; boundary=${boundary}`,
        "Content-Length": String(preamble.length + total + epilogue.length),
      },
    });
    req.on("response", (res) => {
      writtenAtResponse = written;
      wakeUp();
      const parts: Buffer[] = [];
      res.on("data", (part: Buffer) => parts.push(part));
      res.on("end", () => {
        req.destroy();
        const text = Buffer.concat(parts).toString("utf8");
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, body, writtenAtResponse: writtenAtResponse! });
      });
      res.on("error", reject);
    });
    // Once the server has answered and closed, further writes fail (EPIPE/ECONNRESET): expected.
    req.on("error", (err) => {
      if (writtenAtResponse === null) reject(err);
    });
    req.on("close", () => {
      closed = true;
      wakeUp();
    });
    req.on("drain", wakeUp);

    const send = async (bytes: Buffer) => {
      written += bytes.length;
      if (!req.write(bytes) && !closed && writtenAtResponse === null) await new Promise<void>((r) => (wake = r));
    };
    void (async () => {
      await send(preamble);
      await send(head);
      let sent = head.length;
      while (sent < total && writtenAtResponse === null && !closed) {
        const piece = filler.subarray(0, Math.min(filler.length, total - sent));
        sent += piece.length;
        await send(piece);
      }
      if (sent >= total && writtenAtResponse === null && !closed) req.end(epilogue);
    })().catch(reject);
  });
}

async function auditEvents(adminToken: string, query: string): Promise<any[]> {
  const res = await api("GET", `/api/v1/audit?${query}`, { token: adminToken });
  expect(res.status).toBe(200);
  return res.body.events;
}

/** The integrity event is written beside the response: wait for it a little. */
async function integrityEventFor(adminToken: string, imageId: string): Promise<any | undefined> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const events = await auditEvents(adminToken, "action=image.integrity&limit=100");
    const found = events.find((e) => e.resourceId === imageId);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

// ---- fixtures -----------------------------------------------------------------------------------------------------

interface Sample {
  label: string;
  bytes: Buffer;
  name: string;
  type: string;
  contentType: string;
}

let doctor = "";
let otherDoctor = "";
let admin = "";
let researcher = "";
let patient = ""; // the patient's own token
let patientId = ""; // in the doctor's care team, care consent granted, with an account
let samples: Sample[] = [];
const objects = serverObjects();

beforeAll(async () => {
  const doc = await createAccount("doctor");
  doctor = await tokenFor(doc.email, doc.password);
  const other = await createAccount("doctor");
  otherDoctor = await tokenFor(other.email, other.password);
  admin = await tokenFor("admin@demo.nexus");
  researcher = await tokenFor("researcher@demo.nexus");
  const created = await createPatient(doctor, {
    displayName: "Patiente Coffre API",
    email: uniqueEmail("vault-patient"),
    consents: { care: true },
  });
  patientId = created.id;
  patient = await tokenFor(created.account!.email, created.account!.password);
  samples = [
    { label: "JPEG", bytes: await jpeg(64, 48), name: "cc-droit.jpg", type: "image/jpeg", contentType: "image/jpeg" },
    { label: "8-bit PNG", bytes: await png8(40, 30), name: "mlo.png", type: "image/png", contentType: "image/png" },
    { label: "16-bit PNG", bytes: await png16(50, 20), name: "mlo-16.png", type: "image/png", contentType: "image/png" },
    {
      label: "DICOM",
      // The header names this patient (family name first, as DICOM does): the identity check files it.
      bytes: dicom({ patientName: "COFFRE API^PATIENTE", rows: 32, columns: 24 }),
      name: "IM0001.dcm",
      type: "application/dicom",
      contentType: "application/dicom",
    },
  ];
}, SLOW);

// ---- tests --------------------------------------------------------------------------------------------------------

describe("POST /api/v1/patients/:id/images and GET /api/v1/images/:id", () => {
  it("stores JPEG, PNG, 16-bit PNG and DICOM (201) and gives back identical bytes, type and length", { timeout: SLOW }, async () => {
    for (const sample of samples) {
      const res = await upload(doctor, patientId, sample);
      expect(res.status, sample.label).toBe(201);
      expect(res.body, sample.label).toMatchObject({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        size: sample.bytes.length,
        sha256: sha256(sample.bytes),
        contentType: sample.contentType,
        examId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
      const got = await download(doctor, res.body.id);
      expect(got.status, sample.label).toBe(200);
      expect(got.headers.get("Content-Type"), sample.label).toBe(sample.contentType);
      expect(got.headers.get("Content-Length"), sample.label).toBe(String(sample.bytes.length));
      expect(got.headers.get("Content-Disposition"), sample.label).toContain(sample.name);
      expect(got.bytes!.equals(sample.bytes), `${sample.label} byte-identical`).toBe(true);
      // At rest: ciphertext only.
      const stored = await objects.read(`images/${res.body.id}`);
      expect(stored?.subarray(0, 4).toString("latin1"), sample.label).toBe("NXVF");
      expect(stored!.includes(sample.bytes.subarray(0, 64)), sample.label).toBe(false);
    }
  });

  it("serves concurrent downloads byte-identical while one client stalls (pooled buffers are never lent twice)", { timeout: SLOW }, async () => {
    // Images of 3–12 MiB: each is served in full batches of 16 segments, copied into pooled buffers that the HTTP writer
    // gives back once the socket has taken them (app/vault/buffer-pool.server.ts).
    const images = [await bigJpeg(12 * MiB + 1234), await bigJpeg(3 * MiB), await bigJpeg(4 * MiB - 77)];
    const ids = [] as string[];
    for (const [i, bytes] of images.entries()) ids.push(await uploaded(doctor, patientId, bytes, `gros-${i}.jpg`));
    // A client that reads its first bytes, then stops reading for a while: the server's writes to it stay pending.
    const stalled = new Promise<Buffer>((resolve, reject) => {
      const req = request(new URL(`/api/v1/images/${ids[0]}`, baseUrl()), { headers: { Authorization: `Bearer ${doctor}` } }, (res) => {
        const chunks: Buffer[] = [];
        res.once("data", (first: Buffer) => {
          chunks.push(first);
          res.pause();
          setTimeout(() => {
            res.on("data", (c: Buffer) => chunks.push(c));
            res.resume();
          }, 1500);
        });
        res.on("end", () => resolve(Buffer.concat(chunks)));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
    const others = await Promise.all(Array.from({ length: 24 }, (_, i) => download(doctor, ids[i % 3]!)));
    for (const [i, got] of others.entries()) {
      expect(got.status).toBe(200);
      expect(sha256(got.bytes!), `download ${i}`).toBe(sha256(images[i % 3]!));
    }
    expect(sha256(await stalled), "the stalled download").toBe(sha256(images[0]!));
  });

  it("lists the patient's images, metadata only", { timeout: SLOW }, async () => {
    const id = await uploaded(doctor, patientId, samples[1]!.bytes, "liste.png");
    const res = await listing(doctor, patientId);
    expect(res.status).toBe(200);
    const item = res.body.images.find((i: { id: string }) => i.id === id);
    expect(item).toEqual({
      id,
      contentType: "image/png",
      size: samples[1]!.bytes.length,
      createdAt: expect.any(String),
      // Filed in today's exam; no laterality or view was given with this PNG.
      examId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      laterality: null,
      view: null,
    });
    expect(Number.isNaN(Date.parse(item.createdAt))).toBe(false);
    expect(res.body.images.length).toBeGreaterThanOrEqual(1);
  });

  it("decides the type by content, never by name or client MIME type (415 otherwise)", { timeout: SLOW }, async () => {
    const before = await listedIds(doctor, patientId);
    const refused: FilePart[] = [
      { bytes: Buffer.from("Compte rendu : rien à signaler.\n"), name: "notes.txt", type: "text/plain" },
      { bytes: Buffer.from("%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"), name: "scan.pdf", type: "application/pdf" },
      { bytes: Buffer.from("this is not a JPEG at all, whatever its name says"), name: "photo.jpg", type: "image/jpeg" },
    ];
    for (const file of refused) {
      const res = await upload(doctor, patientId, file);
      expect(res.status, file.name).toBe(415);
      expect(res.body.error.code, file.name).toBe("unsupported_type");
    }
    expect(await listedIds(doctor, patientId)).toEqual(before);
    // A real PNG sent as "notes.txt", text/plain, is a PNG.
    const disguised = await upload(doctor, patientId, { bytes: samples[1]!.bytes, name: "notes.txt", type: "text/plain" });
    expect(disguised.status).toBe(201);
    expect(disguised.body.contentType).toBe("image/png");
    expect((await download(doctor, disguised.body.id)).headers.get("Content-Type")).toBe("image/png");
  });

  it("answers 400 to an empty file, a form without `file` and a body that is not multipart", { timeout: SLOW }, async () => {
    const before = await listedIds(doctor, patientId);
    const keysBefore = await objects.keys();
    const empty = await upload(doctor, patientId, { bytes: new Uint8Array(0), name: "vide.jpg", type: "image/jpeg" });
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe("empty");
    const noFile = await upload(doctor, patientId, null, { comment: "pas de fichier" });
    expect(noFile.status).toBe(400);
    expect(noFile.body.error.code).toBe("invalid");
    const notMultipart = await api("POST", `/api/v1/patients/${patientId}/images`, { token: doctor, json: { file: "x" } });
    expect(notMultipart.status).toBe(400);
    expect(notMultipart.body.error.code).toBe("invalid");
    expect(await listedIds(doctor, patientId)).toEqual(before);
    expect(await objects.keys()).toEqual(keysBefore);
  });

  it("refuses 50 MiB + 1 byte with 413 without reading the rest of the body, and stores nothing", { timeout: SLOW }, async () => {
    const before = await listedIds(doctor, patientId);
    const keysBefore = await objects.keys();
    // The answer comes once the server has read 50 MiB; what the client has handed to the socket by then also counts
    // what the kernel buffers and what a busy machine lets it write meanwhile, so the bound leaves room for that and
    // still fails if the server reads the whole body.
    const total = 256 * MiB;
    const res = await oversizeUpload(doctor, patientId, await jpeg(32, 32), total);
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("too_large");
    expect(res.writtenAtResponse).toBeGreaterThan(MAX_UPLOAD);
    expect(res.writtenAtResponse).toBeLessThan(160 * MiB);
    expect(await listedIds(doctor, patientId)).toEqual(before);
    expect(await objects.keys()).toEqual(keysBefore);
  });

  it("accepts a file of exactly 50 MiB", { timeout: SLOW }, async () => {
    const bytes = await bigJpeg(MAX_UPLOAD);
    expect(bytes.length).toBe(50 * 1024 * 1024);
    const res = await upload(doctor, patientId, { bytes, name: "limite.jpg", type: "image/jpeg" });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ size: MAX_UPLOAD, sha256: sha256(bytes), contentType: "image/jpeg" });
    const got = await download(doctor, res.body.id);
    expect(got.status).toBe(200);
    expect(got.bytes!.length).toBe(MAX_UPLOAD);
    expect(sha256(got.bytes!)).toBe(sha256(bytes));
  });
});

describe("who may upload, list, read and erase", () => {
  let imageId = "";
  beforeAll(async () => {
    imageId = await uploaded(doctor, patientId, samples[0]!.bytes, "droits.jpg");
  });

  it("refuses a doctor outside the care team (403) on upload, list and read", { timeout: SLOW }, async () => {
    expect((await upload(otherDoctor, patientId, { bytes: samples[0]!.bytes })).status).toBe(403);
    expect((await listing(otherDoctor, patientId)).status).toBe(403);
    const read = await download(otherDoctor, imageId);
    expect(read.status).toBe(403);
    expect(read.body.error.code).toBe("forbidden");
    expect(read.bytes).toBeNull();
  });

  it("lets the patient list and read their own images, but not upload", { timeout: SLOW }, async () => {
    const read = await download(patient, imageId);
    expect(read.status).toBe(200);
    expect(read.bytes!.equals(samples[0]!.bytes)).toBe(true);
    expect(await listedIds(patient, patientId)).toContain(imageId);
    expect((await upload(patient, patientId, { bytes: samples[0]!.bytes })).status).toBe(403);
  });

  it("lets an admin erase an image but never read its bytes or list them", { timeout: SLOW }, async () => {
    const doomed = await uploaded(doctor, patientId, samples[0]!.bytes, "admin.jpg");
    const read = await download(admin, doomed);
    expect(read.status).toBe(403);
    expect(read.bytes).toBeNull();
    expect((await listing(admin, patientId)).status).toBe(403);
    expect((await upload(admin, patientId, { bytes: samples[0]!.bytes })).status).toBe(403);
    expect((await api("DELETE", `/api/v1/images/${doomed}`, { token: admin })).status).toBe(204);
    expect((await download(doctor, doomed)).status).toBe(410);
  });

  it("refuses a researcher everything (403)", { timeout: SLOW }, async () => {
    expect((await upload(researcher, patientId, { bytes: samples[0]!.bytes })).status).toBe(403);
    expect((await listing(researcher, patientId)).status).toBe(403);
    expect((await download(researcher, imageId)).status).toBe(403);
    expect((await api("DELETE", `/api/v1/images/${imageId}`, { token: researcher })).status).toBe(403);
    expect((await api("DELETE", `/api/v1/patients/${patientId}`, { token: researcher })).status).toBe(403);
    expect((await download(doctor, imageId)).status).toBe(200); // still there
  });

  it("refuses the bytes to the care team while `care` consent was never given or is refused, upload and list still work", { timeout: SLOW }, async () => {
    const neverGiven = await createPatient(doctor, { displayName: "Sans Consentement" });
    const refused = await createPatient(doctor, { displayName: "Soins Refuses", consents: { care: false, research: true } });
    for (const [label, target] of [
      ["never given", neverGiven.id],
      ["refused", refused.id],
    ] as const) {
      const up = await upload(doctor, target, { bytes: samples[0]!.bytes, name: "sans-consentement.jpg" });
      expect(up.status, label).toBe(201);
      expect(await listedIds(doctor, target), label).toEqual([up.body.id]);
      const read = await download(doctor, up.body.id);
      expect(read.status, label).toBe(403);
      expect(read.body.error.message, label).toMatch(/consentement/i);
      expect(read.bytes, label).toBeNull();
    }
  });

  it("refuses the bytes to the care team from the request after the patient revokes `care`, and again serves them once re-granted", { timeout: SLOW }, async () => {
    const created = await createPatient(doctor, {
      displayName: "Patiente Revoque",
      email: uniqueEmail("vault-revoke"),
      consents: { care: true },
    });
    const own = await tokenFor(created.account!.email, created.account!.password);
    const id = await uploaded(doctor, created.id, samples[0]!.bytes, "revocation.jpg");
    const setCare = (granted: boolean) =>
      api("PUT", `/api/v1/patients/${created.id}/consents/care`, { token: own, json: { granted } });

    expect((await download(doctor, id)).status).toBe(200);
    expect((await setCare(false)).status).toBe(200);
    const refused = await download(doctor, id);
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/retir/i);
    expect((await download(own, id)).status).toBe(200); // the patient still sees their own image
    expect((await upload(doctor, created.id, { bytes: samples[0]!.bytes })).status).toBe(201);
    expect((await setCare(true)).status).toBe(200);
    expect((await download(doctor, id)).bytes!.equals(samples[0]!.bytes)).toBe(true);
  });

  it("answers 404 for an unknown image id (before the policy is asked) and for a malformed one", { timeout: SLOW }, async () => {
    expect((await download(doctor, randomUUID())).status).toBe(404);
    expect((await api("DELETE", `/api/v1/images/${randomUUID()}`, { token: doctor })).status).toBe(404);
    expect((await download(doctor, "not-an-id")).status).toBe(404);
    expect((await download(doctor, `${imageId}x`)).status).toBe(404);
    expect((await download(null, imageId)).status).toBe(401);
  });
});

describe("integrity over HTTP", () => {
  it("answers 500 integrity_failure for a flipped byte in the first segment, and audits image.integrity", { timeout: SLOW }, async () => {
    const bytes = samples[2]!.bytes;
    const id = await uploaded(doctor, patientId, bytes, "alteree.png");
    const key = `images/${id}`;
    const original = (await objects.read(key))!;
    const tampered = Buffer.from(original);
    tampered[segmentAt(0) + 20] = tampered[segmentAt(0) + 20]! ^ 0x01;
    await objects.write(key, tampered);

    const res = await download(doctor, id);
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe("integrity_failure");
    expect(res.headers.get("Content-Type")).toMatch(/application\/json/);
    const event = await integrityEventFor(admin, id);
    expect(event).toMatchObject({ action: "image.integrity", outcome: "error", resourceId: id, patientId });

    // Control: the untampered ciphertext reads again.
    await objects.write(key, original);
    expect((await download(doctor, id)).bytes!.equals(bytes)).toBe(true);
  });

  it("never delivers the full original when the last segment of a large image is tampered", { timeout: SLOW }, async () => {
    const bytes = await bigJpeg(3 * MiB + 777);
    const id = await uploaded(doctor, patientId, bytes, "grande-alteree.jpg");
    const key = `images/${id}`;
    const original = (await objects.read(key))!;
    const last = Math.floor(bytes.length / SEGMENT);
    const tampered = Buffer.from(original);
    tampered[segmentAt(last) + 3] = tampered[segmentAt(last) + 3]! ^ 0x80;
    await objects.write(key, tampered);

    const res = await fetch(`${baseUrl()}/api/v1/images/${id}`, { headers: { Authorization: `Bearer ${doctor}` } });
    if (res.status === 500) {
      expect((await json(res)).error.code).toBe("integrity_failure");
    } else {
      expect(res.status).toBe(200);
      const outcome = await res.arrayBuffer().then(
        (body) => Buffer.from(body),
        (err: unknown) => err,
      );
      if (Buffer.isBuffer(outcome)) {
        expect(outcome.length).toBeLessThan(bytes.length);
        expect(outcome.equals(bytes.subarray(0, outcome.length))).toBe(true);
      } else {
        expect(outcome).toBeInstanceOf(Error); // the connection was cut mid-body
      }
    }
    expect(await integrityEventFor(admin, id)).toMatchObject({ outcome: "error", resourceId: id });
  });
});

describe("erasure over HTTP", () => {
  it("erases an image: 204, then 410 on read and on a second erasure; the object is gone", { timeout: SLOW }, async () => {
    const id = await uploaded(doctor, patientId, samples[0]!.bytes, "effacer.jpg");
    expect(await objects.read(`images/${id}`)).not.toBeNull();
    const erased = await api("DELETE", `/api/v1/images/${id}`, { token: doctor });
    expect(erased.status).toBe(204);
    const read = await download(doctor, id);
    expect(read.status).toBe(410);
    expect(read.body.error.code).toBe("erased");
    expect((await download(patient, id)).status).toBe(410);
    expect((await api("DELETE", `/api/v1/images/${id}`, { token: doctor })).status).toBe(410);
    expect(await objects.read(`images/${id}`)).toBeNull();
    expect(await listedIds(doctor, patientId)).not.toContain(id);
  });

  it("erases a patient: every image answers 410 and its object is gone", { timeout: SLOW }, async () => {
    const target = await createPatient(doctor, { displayName: "Patiente A Effacer", consents: { care: true } });
    const ids = [
      await uploaded(doctor, target.id, samples[0]!.bytes, "p1.jpg"),
      // A DICOM without a patient name in its header (accepted with a notice): the sample names another patient.
      await uploaded(doctor, target.id, dicom({ patientName: "", rows: 32, columns: 24 }), "p2.dcm"),
    ];
    const res = await api("DELETE", `/api/v1/patients/${target.id}`, { token: doctor });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ erasedImages: 2 });
    for (const id of ids) {
      expect((await download(doctor, id)).status).toBe(410);
      expect(await objects.read(`images/${id}`)).toBeNull();
    }
    expect(await listedIds(doctor, target.id)).toEqual([]);
    const renamed = await api("GET", "/api/v1/patients", { token: doctor });
    const row = renamed.body.patients.find((p: { id: string }) => p.id === target.id);
    expect(row?.displayName).toBe("Patient effacé");
  });

  it("erases what identifies her and the readers' free text, keeps the anonymous counts", { timeout: SLOW }, async () => {
    const identity = { id: `IPP-EFF-${Date.now()}`, name: "EFFACEE^ROSE", birthDate: "19700102", sex: "F" };
    const created = await api("POST", "/api/v1/patients", {
      token: doctor,
      json: { displayName: "Rose Effacee", ipp: identity.id, birthDate: "1970-01-02", sex: "F", consents: { care: true } },
    });
    expect(created.status).toBe(201);
    const examId = await uploadExam(doctor, created.body.id, identity);
    const read = await api("POST", `/api/v1/exams/${examId}/readings`, {
      token: doctor,
      json: { breasts: { R: { acr: 1, density: "B" }, L: { acr: 1, density: "B" } }, conclusion: "Pas d'anomalie chez Rose Effacee." },
    });
    expect(read.status).toBe(201);
    expect((await api("DELETE", `/api/v1/patients/${created.body.id}`, { token: doctor })).status).toBe(200);
    const after = await api("GET", `/api/v1/patients/${created.body.id}`, { token: doctor });
    expect(after.status).toBe(200);
    expect(after.body.displayName).toBe("Patient effacé");
    for (const field of ["ipp", "ins", "birthDate", "sex"]) expect(after.body[field] ?? null, field).toBeNull();
    // The reading stays (its author sees it) without its text; its ACR categories stay for the programme's counts.
    const exam = await api("GET", `/api/v1/exams/${examId}`, { token: doctor });
    const reading = exam.body.readings?.[0];
    expect(reading?.breasts?.R?.acr).toBe(1);
    expect(JSON.stringify(exam.body)).not.toContain("Rose");
    // The IPP is free again for a new record.
    const reused = await api("POST", "/api/v1/patients", { token: doctor, json: { displayName: "Autre Patiente", ipp: identity.id } });
    expect(reused.status).toBe(201);
  });
});

describe("readiness", () => {
  it("/readyz reports the object storage as ok", async () => {
    const res = await api("GET", "/readyz");
    expect(res.status).toBe(200);
    expect(res.body.checks).toEqual({ database: "ok", storage: "ok" });
  });
});
