/**
 * DICOMweb against the running server: STOW-RS → QIDO-RS finds it → WADO-RS gives the same bytes, with the npm
 * `dicomweb-client` (the OHIF project's client) for QIDO/WADO; consent withdrawal between search and retrieval;
 * every kind of bad input the issue names; machine accounts and their scopes.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { request } from "node:http";
import { api as dwc } from "dicomweb-client";
import XHR from "xhr2";
import { beforeAll, describe, expect, it } from "vitest";
import { createAccount, createPatient, tokenFor } from "./helpers/fixtures";
import { api, baseUrl } from "./helpers/http";
import { mammogram, stowBody, uid } from "./helpers/dicom";

(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= XHR;

const MiB = 1024 * 1024;
const SLOW = 60_000;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let doctor = "";
let outsider = "";
let admin = "";
let patientId = "";
const ipp = `IPP-${randomUUID().slice(0, 8)}`;
const identity = { patientId: ipp, patientName: "DUPONT^MARIE^ANNE", birthDate: "19620415", sex: "F" };
const study = uid();
const series = uid();
const views = (["R", "L"] as const).flatMap((laterality) =>
  (["CC", "MLO"] as const).map((view) => mammogram({ ...identity, studyInstanceUid: study, seriesInstanceUid: series, laterality, view, accessionNumber: "ACC-42", studyDate: "20261115" })),
);

async function stow(token: string, parts: Parameters<typeof stowBody>[0], path = "/dicomweb/studies") {
  const { body, contentType } = stowBody(parts);
  const res = await fetch(baseUrl() + path, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": contentType, Accept: "application/dicom+json" },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** The client's published types make every option required; the calls below pass what its documentation shows. */
const client = (token: string): any =>
  new dwc.DICOMwebClient({ url: `${baseUrl()}/dicomweb`, headers: { Authorization: `Bearer ${token}` } } as never);

const value = (json: any, tag: string) => json?.[tag]?.Value?.[0];
const failures = (res: { body: any }) => (res.body?.["00081198"]?.Value ?? []) as any[];
const referenced = (res: { body: any }) => (res.body?.["00081199"]?.Value ?? []) as any[];

beforeAll(async () => {
  doctor = await tokenFor("doctor@demo.nexus");
  admin = await tokenFor("admin@demo.nexus");
  const other = await createAccount("doctor");
  outsider = await tokenFor(other.email, other.password);
  ({ id: patientId } = await createPatient(doctor, {
    displayName: "Marie Anne Dupont",
    ipp,
    birthDate: "1962-04-15",
    sex: "F",
    consents: { care: true },
  } as never));
}, SLOW);

describe("STOW-RS → QIDO-RS → WADO-RS", () => {
  it("stores a four-view exam sent by STOW-RS and answers the Store Instances Response", { timeout: SLOW }, async () => {
    const res = await stow(doctor, views);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/dicom+json");
    expect(failures(res)).toEqual([]);
    const refs = referenced(res);
    expect(refs).toHaveLength(4);
    expect(refs.map((r) => value(r, "00081190"))).toEqual(
      expect.arrayContaining([expect.stringContaining(`/dicomweb/studies/${study}/series/${series}/instances/`)]),
    );
    // Filed in one exam with its four standard views.
    const exams = await api("GET", `/api/v1/patients/${patientId}/exams`, { token: doctor });
    if (exams.status === 200) expect(JSON.stringify(exams.body)).toContain("CC");
  });

  it("QIDO-RS finds the study with the standard matching, from the metadata only", { timeout: SLOW }, async () => {
    const c = client(doctor);
    const byId = await c.searchForStudies({ queryParams: { PatientID: ipp } });
    expect(byId).toHaveLength(1);
    expect(value(byId[0], "0020000D")).toBe(study);
    expect(value(byId[0], "00201208")).toBe(4);
    expect(byId[0]["00080061"].Value).toEqual(["MG"]);
    expect(value(byId[0], "00080050")).toBe("ACC-42");
    for (const queryParams of [
      { PatientName: "dupont*" },
      { PatientName: "DUPONT^MARIE" },
      { PatientName: "*ONT^mar?e" },
      { StudyDate: "20261101-20261130", PatientID: ipp },
      { StudyDate: "-20261115", PatientID: ipp },
      { AccessionNumber: "ACC-42", PatientID: ipp },
      { ModalitiesInStudy: "MG", PatientID: ipp },
      { StudyInstanceUID: study },
      { "0020000D": study },
    ]) {
      const found = await c.searchForStudies({ queryParams });
      expect(found.map((s: any) => value(s, "0020000D")), JSON.stringify(queryParams)).toContain(study);
    }
    for (const queryParams of [
      { PatientName: "martin*" },
      { StudyDate: "20261116-", PatientID: ipp },
      { AccessionNumber: "ACC-43", PatientID: ipp },
      { ModalitiesInStudy: "CT", PatientID: ipp },
    ]) {
      const found = await c.searchForStudies({ queryParams });
      expect(found.map((s: any) => value(s, "0020000D")), JSON.stringify(queryParams)).not.toContain(study);
    }
    const seriesFound = await c.searchForSeries({ studyInstanceUID: study });
    expect(seriesFound.map((s: any) => value(s, "0020000E"))).toEqual([series]);
    const instances = await c.searchForInstances({ studyInstanceUID: study, seriesInstanceUID: series });
    expect(instances).toHaveLength(4);
    const page = await c.searchForInstances({ studyInstanceUID: study, queryParams: { limit: "2", offset: "3" } });
    expect(page).toHaveLength(1);
  });

  it("WADO-RS gives back byte-identical instances, the study, metadata, frames and a rendered image", { timeout: SLOW }, async () => {
    const c = client(doctor);
    const instances = await c.searchForInstances({ studyInstanceUID: study });
    const sop = value(instances[0], "00080018");
    const one = await c.retrieveInstance({ studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop });
    const original = views.find((v) => v.includes(Buffer.from(sop)))!;
    expect(sha(new Uint8Array(one))).toBe(sha(original));
    const all: ArrayBuffer[] = await c.retrieveStudy({ studyInstanceUID: study });
    expect(all.map((b) => sha(new Uint8Array(b))).sort()).toEqual(views.map(sha).sort());
    const meta = await c.retrieveInstanceMetadata({ studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop });
    expect(value(meta[0], "00100020")).toBe(ipp);
    expect(meta[0]["7FE00010"].BulkDataURI).toContain("/frames/1");
    const frames: ArrayBuffer[] = await c.retrieveInstanceFrames({ studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop, frameNumbers: [1] });
    expect(frames[0]!.byteLength).toBe(64 * 48 * 2);
    expect(original.subarray(original.length - 64 * 48 * 2).equals(Buffer.from(frames[0]!))).toBe(true);
    const rendered = await fetch(`${baseUrl()}/dicomweb/studies/${study}/series/${series}/instances/${sop}/rendered`, {
      headers: { Authorization: `Bearer ${doctor}`, Accept: "image/png" },
    });
    expect(rendered.status).toBe(200);
    expect(rendered.headers.get("content-type")).toBe("image/png");
  });

  it("never lists a study to a doctor outside the care team, and refuses its retrieval (403)", { timeout: SLOW }, async () => {
    const found = await client(outsider).searchForStudies({ queryParams: { PatientID: ipp } });
    expect(found).toEqual([]);
    const res = await fetch(`${baseUrl()}/dicomweb/studies/${study}`, { headers: { Authorization: `Bearer ${outsider}` } });
    expect(res.status).toBe(403);
    const anonymous = await fetch(`${baseUrl()}/dicomweb/studies?PatientID=${ipp}`);
    expect(anonymous.status).toBe(401);
  });

  it("audits each request with the study, the patient and the outcome", { timeout: SLOW }, async () => {
    const res = await fetch(`${baseUrl()}/dicomweb/studies/${study}/metadata`, { headers: { Authorization: `Bearer ${doctor}` } });
    expect(res.status).toBe(200);
    const requestId = res.headers.get("X-Request-Id");
    const audit = await api("GET", `/api/v1/audit?action=dicom.retrieve&patient=${patientId}`, { token: admin });
    const event = (audit.body.events as any[]).find((e) => e.requestId === requestId);
    expect(event).toMatchObject({ action: "dicom.retrieve", outcome: "allowed", resourceId: study, patientId });
  });
});

describe("bad input gets a reason per instance, never a 500", () => {
  it("a non-DICOM part among good ones: 202, the good one stored, the bad one failed with 0xC000", { timeout: SLOW }, async () => {
    const good = mammogram({ ...identity, studyInstanceUid: uid() });
    const res = await stow(doctor, [good, Buffer.from("hello, not DICOM"), { type: "image/png", bytes: randomBytes(100) }]);
    expect(res.status).toBe(202);
    expect(referenced(res)).toHaveLength(1);
    expect(failures(res).map((f) => value(f, "00081197"))).toEqual([0xc000, 0xc000]);
  });

  it("malformed multipart: 409 with a failure, not a 500", { timeout: SLOW }, async () => {
    const res = await fetch(baseUrl() + "/dicomweb/studies", {
      method: "POST",
      headers: { Authorization: `Bearer ${doctor}`, "Content-Type": 'multipart/related; type="application/dicom"; boundary=abc' },
      body: "--abc\r\nContent-Type: application/dicom\r\n\r\nDICM without end",
    });
    expect(res.status).toBe(409);
    const body = await res.json();
    expect(value(body["00081198"].Value[0], "00000902")).toMatch(/bad_multipart/);
    const notMultipart = await fetch(baseUrl() + "/dicomweb/studies", {
      method: "POST",
      headers: { Authorization: `Bearer ${doctor}`, "Content-Type": "application/json" },
      body: "{}",
    });
    expect(notMultipart.status).toBe(415);
  });

  it("identity mismatch: failure 0xC409 naming the field, nothing filed", { timeout: SLOW }, async () => {
    const otherStudy = uid();
    const res = await stow(doctor, [mammogram({ ...identity, birthDate: "19700101", studyInstanceUid: otherStudy })]);
    expect(res.status).toBe(409);
    expect(value(failures(res)[0], "00081197")).toBe(0xc409);
    expect(value(failures(res)[0], "00000902")).toMatch(/identity_mismatch.*PatientBirthDate/);
    expect(await client(doctor).searchForStudies({ queryParams: { StudyInstanceUID: otherStudy } })).toEqual([]);
  });

  it("unknown patient: held in the reconciliation queue (failure 0xC404), not filed", { timeout: SLOW }, async () => {
    const res = await stow(doctor, [mammogram({ ...identity, patientId: `NOBODY-${randomUUID()}`, studyInstanceUid: uid() })]);
    expect(res.status).toBe(409);
    expect(value(failures(res)[0], "00081197")).toBe(0xc404);
    expect(value(failures(res)[0], "00000902")).toMatch(/unknown_patient/);
  });

  it("an instance for another study than the URL names: failure 0xA900", { timeout: SLOW }, async () => {
    const res = await stow(doctor, [mammogram({ ...identity, studyInstanceUid: uid() })], `/dicomweb/studies/${study}`);
    expect(res.status).toBe(409);
    expect(value(failures(res)[0], "00081197")).toBe(0xa900);
  });

  it("a 200 MB part is refused without reading it all (0xA700, connection closed)", { timeout: SLOW }, async () => {
    // The part limit is 50 MiB: the answer comes long before the end of the part (a 60 MB part answered after 58 MB
    // had been written once, under load: socket buffers and the reads in flight, not the whole part).
    const res = await oversizeStow(doctor, 200 * MiB);
    expect(res.status).toBe(409);
    expect(res.body["00081198"].Value[0]["00081197"].Value[0]).toBe(0xa700);
    expect(res.writtenAtResponse).toBeLessThan(120 * MiB);
  });
});

describe("the reconciliation queue", () => {
  it("a doctor sees the header's identity, attaches (identity check applies) or rejects", { timeout: SLOW }, async () => {
    const newIpp = `NEW-${randomUUID().slice(0, 8)}`;
    const s1 = uid();
    const s2 = uid();
    const queued = await stow(doctor, [
      mammogram({ patientId: newIpp, patientName: "BERNARD^LUCIE", birthDate: "19700707", sex: "F", studyInstanceUid: s1 }),
      mammogram({ patientId: newIpp, patientName: "BERNARD^LUCIE", birthDate: "19700707", sex: "F", studyInstanceUid: s2 }),
    ]);
    expect(failures(queued).map((f) => value(f, "00081197"))).toEqual([0xc404, 0xc404]);
    const list = await api("GET", "/api/v1/dicom-inbox", { token: doctor });
    expect(list.status).toBe(200);
    const mine = (list.body.entries as any[]).filter((e) => e.identity?.patientId === newIpp);
    expect(mine).toHaveLength(2);
    expect(mine[0].identity).toMatchObject({ patientName: "BERNARD^LUCIE", patientBirthDate: "19700707" });
    const first = mine.find((e) => e.studyInstanceUid === s1)!;
    const second = mine.find((e) => e.studyInstanceUid === s2)!;

    // To the wrong woman: the identity check refuses, the entry stays queued.
    const wrong = await api("POST", `/api/v1/dicom-inbox/${first.id}`, { token: doctor, json: { decision: "attach", patientId } });
    expect(wrong.status).toBe(409);
    expect(wrong.body.error.code).toBe("identity_mismatch");
    // To her record (created without an IPP yet): filed, found by QIDO.
    const lucie = await createPatient(doctor, { displayName: "Lucie Bernard", birthDate: "1970-07-07", sex: "F", consents: { care: true } } as never);
    const attached = await api("POST", `/api/v1/dicom-inbox/${first.id}`, { token: doctor, json: { decision: "attach", patientId: lucie.id } });
    expect(attached.status, JSON.stringify(attached.body)).toBe(201);
    expect(await client(doctor).searchForStudies({ queryParams: { StudyInstanceUID: s1 } })).toHaveLength(1);
    // Rejected: gone from the queue, and a second decision on it is a 404.
    expect((await api("POST", `/api/v1/dicom-inbox/${second.id}`, { token: doctor, json: { decision: "reject" } })).status).toBe(204);
    expect((await api("POST", `/api/v1/dicom-inbox/${second.id}`, { token: doctor, json: { decision: "reject" } })).status).toBe(404);
    const after = await api("GET", "/api/v1/dicom-inbox", { token: doctor });
    expect((after.body.entries as any[]).filter((e) => e.identity?.patientId === newIpp)).toEqual([]);
    expect((await api("POST", `/api/v1/dicom-inbox/${second.id}`, { token: doctor, json: { decision: "maybe" } })).status).toBe(400);
    expect((await api("GET", "/api/v1/dicom-inbox", { token: admin })).status).toBe(403);
  });
});

describe("consent and machine accounts", () => {
  it("care consent withdrawn between QIDO and WADO → 403, and the study leaves the search", { timeout: SLOW }, async () => {
    const pid = `IPP-${randomUUID().slice(0, 8)}`;
    const created = await createPatient(doctor, {
      displayName: "Jeanne Martin",
      email: `jeanne-${randomUUID().slice(0, 6)}@test.nexus`,
      ipp: pid,
      birthDate: "1958-02-01",
      sex: "F",
      consents: { care: true },
    } as never);
    const s = uid();
    const sent = await stow(doctor, [mammogram({ patientId: pid, patientName: "MARTIN^JEANNE", birthDate: "19580201", sex: "F", studyInstanceUid: s })]);
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(await client(doctor).searchForStudies({ queryParams: { StudyInstanceUID: s } })).toHaveLength(1);
    const patientToken = await tokenFor(created.account!.email, created.account!.password);
    const revoke = await api("PUT", `/api/v1/patients/${created.id}/consents/care`, { token: patientToken, json: { granted: false } });
    expect(revoke.status).toBe(200);
    const wado = await fetch(`${baseUrl()}/dicomweb/studies/${s}`, { headers: { Authorization: `Bearer ${doctor}` } });
    expect(wado.status).toBe(403);
    expect((await wado.json()).error.message).toMatch(/consentement/i);
    expect(await client(doctor).searchForStudies({ queryParams: { StudyInstanceUID: s } })).toEqual([]);
  });

  it("a store-only machine stores and cannot search; a query-only token cannot store (403); both audited as system", { timeout: SLOW }, async () => {
    const store = await api("POST", "/api/v1/machines", { token: admin, json: { name: "Mammographe salle 2", scopes: ["store"], aeTitle: `MG${randomBytes(3).toString("hex")}` } });
    expect(store.status).toBe(201);
    const query = await api("POST", "/api/v1/machines", { token: admin, json: { name: "Visionneuse", scopes: ["query"] } });
    expect(query.status).toBe(201);
    expect((await api("POST", "/api/v1/machines", { token: doctor, json: { name: "x", scopes: ["store"] } })).status).toBe(403);
    expect((await api("POST", "/api/v1/machines", { token: admin, json: { name: "x y", scopes: ["everything"] } })).status).toBe(400);

    const s = uid();
    const stored = await stow(store.body.token, [mammogram({ ...identity, studyInstanceUid: s })]);
    expect(stored.status).toBe(200);
    const search = await fetch(`${baseUrl()}/dicomweb/studies?StudyInstanceUID=${s}`, { headers: { Authorization: `Bearer ${store.body.token}` } });
    expect(search.status).toBe(403);
    const refused = await stow(query.body.token, [mammogram({ ...identity, studyInstanceUid: uid() })]);
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/store/);
    // The query machine reads the study (care consent is live).
    expect(await client(query.body.token).searchForStudies({ queryParams: { StudyInstanceUID: s } })).toHaveLength(1);

    const audit = await api("GET", `/api/v1/audit?actor=${store.body.id}&action=dicom.store`, { token: admin });
    expect(audit.body.events[0]).toMatchObject({ actorRole: "system", actorName: "Mammographe salle 2", outcome: "allowed", patientId });
  });
});

/** Streams a STOW-RS body whose one part is `total` bytes (a DICOM header then filler); stops writing at the answer. */
function oversizeStow(token: string, total: number) {
  const boundary = `nexus-${randomUUID()}`;
  const head = mammogram({ ...identity, studyInstanceUid: uid() });
  const preamble = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), head]);
  const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`);
  const filler = randomBytes(MiB);
  const url = new URL("/dicomweb/studies", baseUrl());
  return new Promise<{ status: number; body: any; writtenAtResponse: number }>((resolve, reject) => {
    let written = 0;
    let writtenAtResponse: number | null = null;
    let done = false;
    const req = request(url, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${token}`,
        "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`,
        "Content-Length": String(preamble.length + total + epilogue.length),
      },
    });
    req.on("response", (res) => {
      writtenAtResponse = written;
      done = true;
      const parts: Buffer[] = [];
      res.on("data", (p: Buffer) => parts.push(p));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString("utf8")), writtenAtResponse: writtenAtResponse! });
      });
      res.on("error", reject);
    });
    req.on("error", (err) => {
      if (writtenAtResponse === null) reject(err);
    });
    const pump = () => {
      if (done) return;
      let ok = true;
      if (written === 0) {
        ok = req.write(preamble);
        written += head.length;
      }
      while (ok && !done && written < total) {
        const n = Math.min(filler.length, total - written);
        ok = req.write(filler.subarray(0, n));
        written += n;
      }
      if (written >= total && !done) req.end(epilogue);
      else if (!ok) req.once("drain", pump);
    };
    pump();
  });
}
