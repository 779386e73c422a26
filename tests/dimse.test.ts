/**
 * DIMSE and real peers: a Nexus server of its own with the C-ECHO/C-STORE SCP on, driven by DCMTK (echoscu,
 * storescu, findscu) and by an Orthanc PACS that sends a study by C-STORE and by STOW-RS (its DICOMweb client).
 * Each peer that is absent makes its test print one "skipped: …" line.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { callingAllowed } from "../app/dimse/scp.server";
import { mammogram, uid } from "./helpers/dicom";
import { DEMO_PASSWORD } from "./helpers/http";
import { missing, run, startOrthanc, ORTHANC, DICOMWEB_PLUGIN, type Orthanc } from "./helpers/peers";
import { startServer, type RunningServer } from "./helpers/server";

const SLOW = 90_000;
// Ports from this work's range (27000–27999), loopback only: below Linux's ephemeral range (32768–60999), where an
// outgoing connection of another test could hold one and make Orthanc's or Nexus's listen fail.
const NEXUS_DICOM_PORT = 27104;
const ORTHANC_HTTP_PORT = 27142;
const ORTHANC_DICOM_PORT = 27143;

let server: RunningServer | undefined;
let base = "";
const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-dimse-"));
const files = mkdtempSync(path.join(tmpdir(), "nexus-dimse-files-"));
let doctor = "";
let admin = "";
let orthancMachine = { id: "", token: "" };
const ipp = `IPP-${randomUUID().slice(0, 8)}`;
const who = { patientId: ipp, patientName: "LEROY^SOPHIE", birthDate: "19650310", sex: "F" };

async function call(method: string, route: string, token: string | null, json?: unknown) {
  const res = await fetch(base + route, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(json ? { "Content-Type": "application/json" } : {}) },
    body: json ? JSON.stringify(json) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function login(email: string) {
  return (await call("POST", "/api/v1/tokens", null, { email, password: DEMO_PASSWORD })).body.token as string;
}

async function studiesFor(study: string): Promise<any[]> {
  return (await call("GET", `/dicomweb/studies?StudyInstanceUID=${study}`, doctor)).body;
}

function file(name: string, bytes: Buffer): string {
  const p = path.join(files, name);
  writeFileSync(p, bytes);
  return p;
}

beforeAll(async () => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: "production",
    PORT: "0",
    HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    NEXUS_DEMO: "1",
    NEXUS_ACCESS_LOG: "0",
    NEXUS_MASTER_KEYS: inject("masterKeys"),
    DICOM_PORT: String(NEXUS_DICOM_PORT),
    DICOM_ALLOWED_AETS: "ECHOSCU,STORESCU,FINDSCU,ORTHANC",
  };
  delete env.DATABASE_URL;
  server = await startServer(env, { timeoutMs: 120_000 });
  base = server.url;
  expect(server.output()).toContain(`AE NEXUS on 127.0.0.1:${NEXUS_DICOM_PORT}`);
  doctor = await login("doctor@demo.nexus");
  admin = await login("admin@demo.nexus");
  const created = await call("POST", "/api/v1/patients", doctor, {
    displayName: "Sophie Leroy",
    ipp,
    birthDate: "1965-03-10",
    sex: "F",
    consents: { care: true },
  });
  expect(created.status).toBe(201);
  const machine = await call("POST", "/api/v1/machines", admin, { name: "PACS Orthanc (test)", scopes: ["store"], aeTitle: "ORTHANC" });
  expect(machine.status).toBe(201);
  orthancMachine = machine.body;
}, 150_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(files, { recursive: true, force: true });
});

describe("who may associate", () => {
  it("unset DICOM_ALLOWED_AETS: any calling AE from loopback, nothing from elsewhere; set: only the listed ones", () => {
    expect(callingAllowed("ANY", "127.0.0.1", null)).toBe(true);
    expect(callingAllowed("ANY", "::ffff:127.0.0.1", null)).toBe(true);
    expect(callingAllowed("ANY", "::1", null)).toBe(true);
    expect(callingAllowed("ANY", "10.1.2.3", null)).toBe(false);
    expect(callingAllowed("MG1", "10.1.2.3", ["MG1"])).toBe(true);
    expect(callingAllowed("MG2", "127.0.0.1", ["MG1"])).toBe(false);
  });
});

describe("DCMTK against the SCP", () => {
  it("C-ECHO from echoscu succeeds; an unlisted calling AE and a wrong called AE are rejected at association", { timeout: SLOW }, async (ctx) => {
    const absent = missing("echoscu");
    if (absent) {
      console.log(`skipped: ${absent} (DCMTK) is not installed`);
      return ctx.skip();
    }
    const ok = await run("echoscu", ["-aet", "ECHOSCU", "-aec", "NEXUS", "127.0.0.1", String(NEXUS_DICOM_PORT)]);
    expect(ok.code, ok.output).toBe(0);
    const intruder = await run("echoscu", ["-aet", "INTRUDER", "-aec", "NEXUS", "127.0.0.1", String(NEXUS_DICOM_PORT)]);
    expect(intruder.code).not.toBe(0);
    expect(intruder.output).toMatch(/Calling AE Title Not Recognized/i);
    const wrongCalled = await run("echoscu", ["-aet", "ECHOSCU", "-aec", "ELSEWHERE", "127.0.0.1", String(NEXUS_DICOM_PORT)]);
    expect(wrongCalled.output).toMatch(/Called AE Title Not Recognized/i);
  });

  it("C-STORE from storescu files the instance (QIDO finds it, the data set comes back byte for byte)", { timeout: SLOW }, async (ctx) => {
    const absent = missing("storescu");
    if (absent) {
      console.log(`skipped: ${absent} (DCMTK) is not installed`);
      return ctx.skip();
    }
    const study = uid();
    const sop = uid();
    const bytes = mammogram({ ...who, studyInstanceUid: study, sopInstanceUid: sop, laterality: "L", view: "MLO" });
    const sent = await run("storescu", ["-aet", "STORESCU", "-aec", "NEXUS", "-xs", "127.0.0.1", String(NEXUS_DICOM_PORT), file("one.dcm", bytes)]);
    expect(sent.code, sent.output).toBe(0);
    const found = await studiesFor(study);
    expect(found).toHaveLength(1);
    const series = found[0]["0020000D"].Value[0] === study ? (await call("GET", `/dicomweb/studies/${study}/series`, doctor)).body[0]["0020000E"].Value[0] : "";
    const res = await fetch(`${base}/dicomweb/studies/${study}/series/${series}/instances/${sop}`, { headers: { Authorization: `Bearer ${doctor}` } });
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    // The data set as sent (everything after the file meta information) is in the stored file unchanged.
    const metaEnd = 132 + 12 + bytes.readUInt32LE(140);
    expect(body.includes(bytes.subarray(metaEnd))).toBe(true);
  });

  it("C-STORE for an unknown patient: failure status 0xC404 (reconciliation queue), nothing filed", { timeout: SLOW }, async (ctx) => {
    if (missing("storescu")) {
      console.log("skipped: storescu (DCMTK) is not installed");
      return ctx.skip();
    }
    const study = uid();
    const sent = await run("storescu", ["-v", "-aet", "STORESCU", "-aec", "NEXUS", "127.0.0.1", String(NEXUS_DICOM_PORT), file("unknown.dcm", mammogram({ ...who, patientId: "NOT-HERE", studyInstanceUid: study }))]);
    // 0xC404 is in the "cannot understand" range (0xCxxx): storescu reports it so.
    expect(sent.output).toMatch(/Store Response \(Error: CannotUnderstand\)/);
    expect(await studiesFor(study)).toEqual([]);
  });

  it("findscu: C-FIND is not offered (search is QIDO-RS), the association says so", { timeout: SLOW }, async (ctx) => {
    if (missing("findscu")) {
      console.log("skipped: findscu (DCMTK) is not installed");
      return ctx.skip();
    }
    const found = await run("findscu", ["-S", "-aet", "FINDSCU", "-aec", "NEXUS", "-k", "QueryRetrieveLevel=STUDY", "-k", `PatientID=${ipp}`, "127.0.0.1", String(NEXUS_DICOM_PORT)]);
    expect(found.code).not.toBe(0);
    expect(found.output).toMatch(/No Acceptable Presentation Contexts|0006:0208|Presentation Context/i);
  });
});

describe("Orthanc as the hospital PACS", () => {
  let orthanc: Orthanc | null = null;

  beforeAll(async () => {
    if (missing(ORTHANC, DICOMWEB_PLUGIN)) return;
    orthanc = await startOrthanc({
      httpPort: ORTHANC_HTTP_PORT,
      dicomPort: ORTHANC_DICOM_PORT,
      modalities: { nexus: ["NEXUS", "127.0.0.1", NEXUS_DICOM_PORT] },
      dicomWebServers: { nexus: { Url: `${base}/dicomweb/`, HttpHeaders: { Authorization: `Bearer ${orthancMachine.token}` } } },
    });
  }, 60_000);

  afterAll(async () => {
    await orthanc?.stop();
  });

  it("sends a study to Nexus by C-STORE, filed and audited as the PACS's machine account", { timeout: SLOW }, async (ctx) => {
    if (!orthanc) {
      console.log(`skipped: ${missing(ORTHANC, DICOMWEB_PLUGIN)} (Orthanc) is not installed`);
      return ctx.skip();
    }
    const study = uid();
    const ids: string[] = [];
    for (const laterality of ["R", "L"] as const) {
      const up = await orthanc.rest("POST", "/instances", mammogram({ ...who, studyInstanceUid: study, laterality, view: "CC" }));
      expect(up.status).toBe(200);
      ids.push(up.body.ID);
    }
    const sent = await orthanc.rest("POST", "/modalities/nexus/store", { Resources: ids, Synchronous: true });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    const found = await studiesFor(study);
    expect(found).toHaveLength(1);
    expect(found[0]["00201208"].Value[0]).toBe(2);
    const audit = await call("GET", `/api/v1/audit?actor=${orthancMachine.id}&action=dicom.store`, admin);
    expect(audit.body.events[0]).toMatchObject({ actorRole: "system", actorName: "PACS Orthanc (test)", outcome: "allowed" });
  });

  it("sends a study to Nexus by STOW-RS with its DICOMweb client and a machine token", { timeout: SLOW }, async (ctx) => {
    if (!orthanc) {
      console.log(`skipped: ${missing(ORTHANC, DICOMWEB_PLUGIN)} (Orthanc) is not installed`);
      return ctx.skip();
    }
    const study = uid();
    const up = await orthanc.rest("POST", "/instances", mammogram({ ...who, studyInstanceUid: study, laterality: "R", view: "MLO" }));
    expect(up.status).toBe(200);
    const stow = await orthanc.rest("POST", "/dicom-web/servers/nexus/stow", { Resources: [up.body.ParentStudy], Synchronous: true });
    if (stow.status !== 200) {
      const audit = await call("GET", `/api/v1/audit?actor=${orthancMachine.id}`, admin);
      expect.fail(`Orthanc's STOW-RS failed: ${orthanc.output().split("\n").slice(-5).join("\n")}\nNexus audit: ${JSON.stringify(audit.body.events.slice(0, 3))}`);
    }
    expect(await studiesFor(study)).toHaveLength(1);
  });
});
