/**
 * Multipart uploads (issue 11, item 4), parsed by busboy: hostile and unusual bodies are a 400 with a clear message
 * and store nothing (no row, no object); file names with `=`, `"` and `;` work; a file refused on its own merits
 * is listed (207) beside exactly the images that were stored, and the audit event names those ids.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { api, baseUrl, tokenFor } from "../helpers/http";
import { createPatient } from "../helpers/fixtures";
import { jpeg, png8 } from "../helpers/images";

let doctorToken: string;
let adminToken: string;
let patientId: string;
let image: Buffer;

const BOUNDARY = "----nexus-test-boundary-7MA4YWxkTrZu0gW";
const CRLF = "\r\n";

function part(headers: string[], data: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from(`--${BOUNDARY}${CRLF}${headers.join(CRLF)}${CRLF}${CRLF}`), Buffer.isBuffer(data) ? data : Buffer.from(data), Buffer.from(CRLF)]);
}
const filePart = (fileName: string, data: Buffer, name = "file") => part([`Content-Disposition: form-data; name="${name}"; filename="${fileName}"`, "Content-Type: application/octet-stream"], data);
const closing = Buffer.from(`--${BOUNDARY}--${CRLF}`);

async function post(body: Buffer) {
  const res = await fetch(`${baseUrl()}/api/v1/patients/${patientId}/images`, {
    method: "POST",
    headers: { Authorization: `Bearer ${doctorToken}`, "Content-Type": `multipart/form-data; boundary=${BOUNDARY}` },
    body: new Uint8Array(body),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text, requestId: res.headers.get("X-Request-Id") };
}

const imageIds = async () => ((await api("GET", `/api/v1/patients/${patientId}/images`, { token: doctorToken })).body.images as { id: string }[]).map((i) => i.id).sort();
/** Object keys in the server's local store (null when the run stores images in S3). */
function localObjects(): string[] | null {
  if (process.env.S3_HOST || process.env.S3_ENDPOINT) return null;
  try {
    return readdirSync(path.join(inject("serverDataDir"), "objects", "images")).filter((n) => !n.includes(".tmp"));
  } catch {
    return [];
  }
}

/** Runs a refused upload and checks that it stored nothing: same image rows, same objects. */
async function refusedWithNothingStored(body: Buffer, message: RegExp) {
  const rowsBefore = await imageIds();
  const objectsBefore = localObjects();
  const res = await post(body);
  expect(res.status, res.text).toBe(400);
  expect(res.json.error.message).toMatch(message);
  expect(await imageIds()).toEqual(rowsBefore);
  if (objectsBefore) expect(localObjects()!.length).toBe(objectsBefore.length);
  return res;
}

beforeAll(async () => {
  doctorToken = await tokenFor("doctor@demo.nexus");
  adminToken = await tokenFor("admin@demo.nexus");
  patientId = (await createPatient(doctorToken, { displayName: "Patiente Multipart", consents: { care: true } })).id;
  image = await jpeg(40, 30);
});

describe("hostile multipart bodies: 400, nothing stored", () => {
  it("25 file parts (at most 20)", async () => {
    const body = Buffer.concat([...Array.from({ length: 25 }, (_, i) => filePart(`f${i}.jpg`, image)), closing]);
    await refusedWithNothingStored(body, /Au plus 20 fichiers/);
  });

  it("a body cut in its second part", async () => {
    const second = filePart("deux.jpg", image);
    const body = Buffer.concat([filePart("un.jpg", image), second.subarray(0, second.length - 200)]);
    await refusedWithNothingStored(body, /interrompu/);
  });

  it("a part without Content-Disposition", async () => {
    const body = Buffer.concat([filePart("un.jpg", image), part(["Content-Type: image/jpeg"], image), closing]);
    await refusedWithNothingStored(body, /Content-Disposition/);
  });

  it("a 200 kB part header", async () => {
    const body = Buffer.concat([filePart("un.jpg", image), part([`Content-Disposition: form-data; name="file"; filename="x.jpg"`, `X-Padding: ${"a".repeat(200_000)}`], image), closing]);
    await refusedWithNothingStored(body, /En-tête de partie/);
  });

  it("a field over 64 KiB", async () => {
    const body = Buffer.concat([part([`Content-Disposition: form-data; name="note"`], "a".repeat(70 * 1024)), filePart("un.jpg", image), closing]);
    await refusedWithNothingStored(body, /trop long/);
  });

  it("no boundary", async () => {
    const res = await fetch(`${baseUrl()}/api/v1/patients/${patientId}/images`, {
      method: "POST",
      headers: { Authorization: `Bearer ${doctorToken}`, "Content-Type": "multipart/form-data" },
      body: "x",
    });
    expect(res.status).toBe(400);
  });
});

describe("file names and partial refusals", () => {
  it("stores files named with =, \" and ; (browser-encoded and raw)", async () => {
    for (const name of ["scan=1.jpg", 'a"b.jpg', "mammo;left.jpg", "é;=.jpg"]) {
      const form = new FormData();
      form.append("file", new Blob([new Uint8Array(image)]), name);
      const res = await fetch(`${baseUrl()}/api/v1/patients/${patientId}/images`, { method: "POST", headers: { Authorization: `Bearer ${doctorToken}` }, body: form });
      expect(res.status, name).toBe(201);
      const id = ((await res.json()) as { id: string }).id;
      const download = await fetch(`${baseUrl()}/api/v1/images/${id}`, { headers: { Authorization: `Bearer ${doctorToken}` } });
      expect(decodeURIComponent(/filename\*=UTF-8''(.+)$/.exec(download.headers.get("Content-Disposition")!)![1]!), name).toBe(name);
    }
    // A raw quoted name with ; and = (as curl and some clients send it).
    const raw = await post(Buffer.concat([filePart("mammo;left=1.jpg", image), closing]));
    expect(raw.status, raw.text).toBe(201);
  });

  it("a valid file and a refused one: 207 listing exactly what was stored, audited with those ids", async () => {
    const before = await imageIds();
    const res = await post(Buffer.concat([filePart("bon.jpg", image), filePart("texte.txt", Buffer.from("pas une image")), filePart("bon.png", await png8()), closing]));
    expect(res.status, res.text).toBe(207);
    const stored = res.json.files.filter((f: { id?: string }) => f.id).map((f: { id: string }) => f.id).sort();
    expect(stored).toHaveLength(2);
    expect(res.json.files.find((f: { fileName: string }) => f.fileName === "texte.txt").error.code).toBe("unsupported_type");
    expect((await imageIds()).filter((id) => !before.includes(id))).toEqual(stored);
    const audit = await api("GET", `/api/v1/audit?requestId=${res.requestId}`, { token: adminToken });
    const event = audit.body.events.find((e: { action: string }) => e.action === "image.upload");
    expect(event.outcome).toBe("allowed");
    expect(String(event.resourceId).split(",").sort()).toEqual(stored);
  });
});
