/**
 * Results out over the API (issue 17.4): a final exam's FHIR R4 Bundle, its reading SR and the exam AI's CAD SR.
 * Who may read them (the care team's doctors; the CAD SR is model output: never the patient), 409 before the result
 * is final, one audit event per call, every bundle reference resolving inside the bundle, no model output in the
 * bundle, and both SRs checked by dciodvfy (zero errors) and dsrdump.
 */
import dcmjs from "dcmjs";
import { beforeAll, describe, expect, it } from "vitest";
import { createAccount } from "./helpers/fixtures";
import { DEMO_IDENTITY, FOUR_VIEWS, newStudyUid, screeningView, uploadDicom } from "./helpers/exams";
import { api, baseUrl, tokenFor } from "./helpers/http";
import { dciodvfy, missing, runOnDicom } from "./helpers/peers";

let doctor = "";
let doctor2 = "";
let patient = "";
let admin = "";
let researcher = "";
let outsider = "";
let patientId = "";

const normal = { breasts: { R: { acr: 1, density: "B" }, L: { acr: 2, density: "C" } }, conclusion: "RAS." };

/** Uploads four views of a new study; the exam id and each view's SOP Instance UID. */
async function uploadExamWithUids(token: string): Promise<{ examId: string; study: string; sops: Map<string, string> }> {
  const study = newStudyUid();
  const sops = new Map<string, string>();
  let examId = "";
  for (const [laterality, view] of FOUR_VIEWS) {
    const bytes = screeningView(DEMO_IDENTITY, study, laterality, view);
    const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(new Uint8Array(bytes).buffer).dict);
    sops.set(`${laterality}-${view}`, ds.SOPInstanceUID as string);
    const res = await uploadDicom(token, patientId, bytes, `${laterality}-${view}.dcm`);
    expect(res.status).toBe(201);
    examId = ((await res.json()) as { examId: string }).examId;
  }
  return { examId, study, sops };
}

async function download(token: string, route: string) {
  const res = await fetch(`${baseUrl()}${route}`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: res.status, type: res.headers.get("Content-Type"), requestId: res.headers.get("X-Request-Id"), bytes: Buffer.from(await res.arrayBuffer()) };
}

async function eventsOf(requestId: string | null) {
  const res = await api("GET", `/api/v1/audit?requestId=${requestId}`, { token: admin });
  return res.body.events as { action: string; outcome: string; reason?: string }[];
}

/** Every `reference` anywhere in a resource. */
function references(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) references(v, out);
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "reference" && typeof v === "string") out.push(v);
      else references(v, out);
    }
  }
  return out;
}

let exam = { examId: "", study: "", sops: new Map<string, string>() };

beforeAll(async () => {
  doctor = await tokenFor("doctor@demo.nexus");
  doctor2 = await tokenFor("doctor2@demo.nexus");
  patient = await tokenFor("patient@demo.nexus");
  admin = await tokenFor("admin@demo.nexus");
  researcher = await tokenFor("researcher@demo.nexus");
  const other = await createAccount("doctor");
  outsider = await tokenFor(other.email, other.password);
  patientId = (await api("GET", "/api/v1/me", { token: patient })).body.patientId;
  exam = await uploadExamWithUids(doctor);
  expect((await api("POST", `/api/v1/exams/${exam.examId}/ai`, { token: doctor })).status).toBe(201);
});

describe("results out: FHIR bundle and SRs of a final exam", () => {
  it("before the result is final: 409 not_final for each, audited", async () => {
    expect((await api("POST", `/api/v1/exams/${exam.examId}/readings`, { token: doctor, json: normal })).status).toBe(201);
    for (const route of ["fhir", "sr", "ai/sr"]) {
      const res = await api("GET", `/api/v1/exams/${exam.examId}/${route}`, { token: doctor });
      expect(res.status, route).toBe(409);
      expect(res.body.error.code).toBe("not_final");
      expect(res.body.error.message).toMatch(/pas encore définitif/);
      expect(await eventsOf(res.headers.get("X-Request-Id"))).toEqual([expect.objectContaining({ outcome: "error" })]);
    }
    expect((await api("POST", `/api/v1/exams/${exam.examId}/readings`, { token: doctor2, json: normal })).body.examStatus).toBe("final_normal");
  });

  it("the FHIR Bundle: resources, codes, identifiers, references that resolve inside it, no model output; one audit event", async () => {
    const res = await fetch(`${baseUrl()}/api/v1/exams/${exam.examId}/fhir`, { headers: { Authorization: `Bearer ${doctor}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/fhir\+json/);
    const text = await res.text();
    const bundle = JSON.parse(text);
    expect(bundle).toMatchObject({ resourceType: "Bundle", type: "collection" });
    const types = bundle.entry.map((e: { resource: { resourceType: string } }) => e.resource.resourceType);
    expect(types.sort()).toEqual(["DiagnosticReport", "ImagingStudy", "Observation", "Observation", "Observation", "Observation", "Patient"]);
    const urls = new Set(bundle.entry.map((e: { fullUrl: string }) => e.fullUrl));
    for (const e of bundle.entry) expect(e.fullUrl).toBe(`urn:uuid:${e.resource.id}`);
    const refs = references(bundle.entry.map((e: { resource: unknown }) => e.resource));
    expect(refs.length).toBeGreaterThan(10);
    for (const r of refs) expect(urls.has(r), r).toBe(true);

    const of = (type: string) => bundle.entry.filter((e: { resource: { resourceType: string } }) => e.resource.resourceType === type).map((e: { resource: any }) => e.resource);
    const [patientRes] = of("Patient");
    expect(patientRes.identifier).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ value: "NEX-000001", type: { coding: [expect.objectContaining({ code: "PI" })] } }),
        expect.objectContaining({ system: "urn:oid:1.2.250.1.213.1.4.8", value: "268057505612395" }),
      ]),
    );
    const [study] = of("ImagingStudy");
    expect(study.identifier[0]).toEqual({ system: "urn:dicom:uid", value: `urn:oid:${exam.study}` });
    expect(study.modality).toEqual([expect.objectContaining({ system: "http://dicom.nema.org/resources/ontology/DCM", code: "MG" })]);
    expect(study.numberOfInstances).toBe(4);
    const instanceUids = study.series.flatMap((s: { instance: { uid: string }[] }) => s.instance.map((i) => i.uid)).sort();
    expect(instanceUids).toEqual([...exam.sops.values()].sort());
    const [report] = of("DiagnosticReport");
    expect(report).toMatchObject({ status: "final", code: { coding: [{ system: "http://loinc.org", code: "24606-6" }] } });
    expect(report.conclusion).toContain("RAS.");
    expect(report.result).toHaveLength(4);
    const observations = of("Observation");
    const value = (site: string, code: string) =>
      observations.find((o: any) => o.bodySite.coding[0].code === site && o.code.coding[0].code === code)?.valueCodeableConcept.coding[0].code;
    expect(value("73056007", "111005")).toBe("397140005"); // right breast ACR 1
    expect(value("80248007", "111005")).toBe("397141009"); // left breast ACR 2
    expect(value("73056007", "129715009")).toBe("129717001"); // right density B
    expect(value("80248007", "129715009")).toBe("129718006"); // left density C
    // Model output stays out of the bundle (the CAD SR carries it, for readers only).
    expect(text).not.toMatch(/probabilit|score|sha256|densenet|demo-model/i);
    expect(await eventsOf(res.headers.get("X-Request-Id"))).toEqual([expect.objectContaining({ action: "result.read", outcome: "allowed" })]);
  });

  it("the reading SR: application/dicom, the same instance each time, dciodvfy zero errors, dsrdump shows ACR and density", { timeout: 60_000 }, async (ctx) => {
    const first = await download(doctor, `/api/v1/exams/${exam.examId}/sr`);
    expect(first.status).toBe(200);
    expect(first.type).toBe("application/dicom");
    const again = await download(doctor2, `/api/v1/exams/${exam.examId}/sr`);
    expect(again.bytes.equals(first.bytes)).toBe(true);
    const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(new Uint8Array(first.bytes).buffer).dict);
    expect(ds).toMatchObject({ SOPClassUID: "1.2.840.10008.5.1.4.1.1.88.33", StudyInstanceUID: exam.study, PatientID: "NEX-000001" });
    expect(await eventsOf(first.requestId)).toEqual([expect.objectContaining({ action: "result.read", outcome: "allowed" })]);
    if (missing("dciodvfy") || missing("dsrdump")) {
      console.log("skipped: dciodvfy (dicom3tools) or dsrdump (DCMTK) is not installed");
      return ctx.skip();
    }
    const checked = await dciodvfy(first.bytes);
    expect(checked.errors, checked.output).toEqual([]);
    const dump = await runOnDicom("dsrdump", [], first.bytes);
    expect(dump.output).toContain(`(ACR2,99NEXUS,"ACR 2 - benign")`);
    expect(dump.output).toContain(`(129718006,SCT,"Heterogeneously dense")`);
  });

  it("the CAD SR: TID 4000 with the model, per-view and per-breast scores, references to the four views; dciodvfy zero errors", { timeout: 60_000 }, async (ctx) => {
    const res = await download(doctor, `/api/v1/exams/${exam.examId}/ai/sr`);
    expect(res.status).toBe(200);
    expect(res.type).toBe("application/dicom");
    expect(await eventsOf(res.requestId)).toEqual([expect.objectContaining({ action: "prediction.read", outcome: "allowed" })]);
    const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(new Uint8Array(res.bytes).buffer).dict);
    expect(ds.SOPClassUID).toBe("1.2.840.10008.5.1.4.1.1.88.50");
    expect(ds.StudyInstanceUID).toBe(exam.study);
    if (missing("dciodvfy") || missing("dsrdump")) {
      console.log("skipped: dciodvfy (dicom3tools) or dsrdump (DCMTK) is not installed");
      return ctx.skip();
    }
    const checked = await dciodvfy(res.bytes);
    expect(checked.errors, checked.output).toEqual([]);
    expect(checked.output).toMatch(/Mammography ?CAD ?SR/i);
    const dump = await runOnDicom("dsrdump", ["+Pc", "+Pl", "+Pu", "+Pt"], res.bytes);
    expect(dump.code, dump.output).toBe(0);
    expect(dump.output).toContain('(111036,DCM,"Mammography CAD Report")');
    expect(dump.output).toContain('(111001,DCM,"Algorithm Name")');
    expect(dump.output).toMatch(/weights SHA-256 [0-9a-f]{64}/);
    for (const sop of exam.sops.values()) expect(dump.output).toContain(sop);
    // One score for the exam, two per breast side (the breast and its views): 1 + 2 × (1 + 2).
    expect(dump.output.match(/\(111047,DCM,"Probability of cancer"\)=/g)).toHaveLength(7);
  });

  it("who may read: the care team's doctors; 403 for the patient, a researcher, an admin and another doctor, each audited", async () => {
    for (const [who, token] of [
      ["patient", patient],
      ["researcher", researcher],
      ["admin", admin],
      ["outsider", outsider],
    ] as const) {
      for (const route of ["fhir", "sr", "ai/sr"]) {
        const res = await api("GET", `/api/v1/exams/${exam.examId}/${route}`, { token });
        expect(res.status, `${who} ${route}`).toBe(403);
        expect(res.body.error.code).toBe("forbidden");
        expect(await eventsOf(res.headers.get("X-Request-Id"))).toEqual([expect.objectContaining({ outcome: "denied" })]);
      }
    }
    // The patient's refusal for the CAD SR names the rule: model output is for the care team.
    const mine = await api("GET", `/api/v1/exams/${exam.examId}/ai/sr`, { token: patient });
    expect(mine.body.error.message).toMatch(/réservés aux médecins/);
    // No token: 401; not an id: 404; a well-formed unknown id: 403 (never reveals what exists); wrong method: 405.
    expect((await api("GET", `/api/v1/exams/${exam.examId}/fhir`)).status).toBe(401);
    expect((await api("GET", `/api/v1/exams/not-an-id/fhir`, { token: doctor })).status).toBe(404);
    expect((await api("GET", `/api/v1/exams/00000000-0000-4000-8000-000000000000/fhir`, { token: doctor })).status).toBe(403);
    expect((await api("POST", `/api/v1/exams/${exam.examId}/sr`, { token: doctor, json: {} })).status).toBe(405);
  });

  it("the outbox listing: admins only, identifiers only; a bad status filter is a 400 in French", async () => {
    const list = await api("GET", "/api/v1/outbox", { token: admin });
    expect(list.status).toBe(200);
    expect(Array.isArray(list.body.entries)).toBe(true);
    expect((await api("GET", "/api/v1/outbox", { token: doctor })).status).toBe(403);
    const bad = await api("GET", "/api/v1/outbox?status=lost", { token: admin });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/valeur inconnue/);
  });
});
