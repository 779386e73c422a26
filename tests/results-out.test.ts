/**
 * Results out: the final reading as a Comprehensive SR and the exam AI as a Mammography CAD SR (TID 4000), validated
 * by dciodvfy (dicom3tools: zero errors) and shown by dsrdump (DCMTK), then pushed by C-STORE to a real Orthanc, with
 * a failed attempt retried after back-off.
 */
import { describe, expect, it } from "vitest";
import { cadSr } from "../app/dicomweb/cad-sr.server";
import { derivedUid } from "../app/dicomweb/sr-common.server";
import { readingSr } from "../app/dicomweb/sr.server";
import { pushToPacs } from "../app/dimse/scu.server";
import { uid } from "./helpers/dicom";
import { dciodvfy, DICOMWEB_PLUGIN, missing, ORTHANC, runOnDicom, startOrthanc } from "./helpers/peers";


const study = uid();
const sr = readingSr({
  patient: { name: "DUPONT^MARIE^ANNE", id: "IPP-SR-1", birthDate: "1962-04-15", sex: "F" },
  study: { studyInstanceUid: study, accessionNumber: "ACC-42", date: "2026-11-15" },
  reader: "MARTIN^CLAIRE",
  breasts: { R: { acr: 1, density: "B" }, L: { acr: 4, density: "C" } },
  conclusion: "Anomalie du sein gauche : bilan de diagnostic différé.",
  at: new Date("2026-11-30T10:00:00Z"),
});

describe("the reading SR", () => {
  it("passes dciodvfy with zero errors", { timeout: 60_000 }, async (ctx) => {
    if (missing("dciodvfy")) {
      console.log("skipped: dciodvfy (dicom3tools) is not installed");
      return ctx.skip();
    }
    const checked = await dciodvfy(sr);
    expect(checked.errors, checked.output).toEqual([]);
    expect(checked.output).toMatch(/Comprehensive ?SR/i);
  });

  it("dsrdump shows the tree: per breast, the finding site, the density and the ACR category", { timeout: 60_000 }, async (ctx) => {
    if (missing("dsrdump")) {
      console.log("skipped: dsrdump (DCMTK) is not installed");
      return ctx.skip();
    }
    const dump = await runOnDicom("dsrdump", [], sr);
    expect(dump.code, dump.output).toBe(0);
    expect(dump.output).toContain('(73056007,SCT,"Right breast")');
    expect(dump.output).toContain('(129717001,SCT,"Scattered fibroglandular densities")');
    expect(dump.output).toContain('(ACR4,99NEXUS,"ACR 4 - suspicious")');
    expect(dump.output).toContain('(129718006,SCT,"Heterogeneously dense")');
  });
});

const MG = "1.2.840.10008.5.1.4.1.1.1.2";
const views = [
  { seriesInstanceUid: `${study}.1`, sopClassUid: MG, sopInstanceUid: `${study}.1.1`, laterality: "R" as const, view: "CC" as const, score: 0.12 },
  { seriesInstanceUid: `${study}.1`, sopClassUid: MG, sopInstanceUid: `${study}.1.2`, laterality: "R" as const, view: "MLO" as const, score: 0.31 },
  { seriesInstanceUid: `${study}.2`, sopClassUid: MG, sopInstanceUid: `${study}.2.1`, laterality: "L" as const, view: "CC" as const, score: 0.874 },
  { seriesInstanceUid: `${study}.2`, sopClassUid: MG, sopInstanceUid: `${study}.2.2`, laterality: "L" as const, view: "MLO" as const, score: 0.5 },
];
const cad = cadSr({
  patient: { name: "DUPONT^MARIE^ANNE", id: "IPP-SR-1", birthDate: "1962-04-15", sex: "F" },
  study: { studyInstanceUid: study, accessionNumber: "ACC-42", date: "2026-11-15" },
  algorithm: { name: "nexus-densenet", version: "1.2.0", sha256: "ab".repeat(32), clinical: false },
  views,
  at: new Date("2026-11-30T09:00:00Z"),
  sopInstanceUid: derivedUid("test:cad", study),
  seriesInstanceUid: derivedUid("test:cad-series", study),
});

describe("the CAD SR (Mammography CAD SR, TID 4000)", () => {
  it("passes dciodvfy with zero errors", { timeout: 60_000 }, async (ctx) => {
    if (missing("dciodvfy")) {
      console.log("skipped: dciodvfy (dicom3tools) is not installed");
      return ctx.skip();
    }
    const checked = await dciodvfy(cad);
    expect(checked.errors, checked.output).toEqual([]);
    expect(checked.output).toMatch(/Mammography ?CAD ?SR/i);
  });

  it("dsrdump shows the tree: library of the four views, algorithm, per-view, per-breast and exam scores", { timeout: 60_000 }, async (ctx) => {
    if (missing("dsrdump")) {
      console.log("skipped: dsrdump (DCMTK) is not installed");
      return ctx.skip();
    }
    const dump = await runOnDicom("dsrdump", ["+Pc", "+Pl", "+Pu", "+Pt"], cad);
    expect(dump.code, dump.output).toBe(0);
    expect(dump.output).toMatch(/Mammography CAD SR/);
    expect(dump.output).toContain('(111036,DCM,"Mammography CAD Report")');
    expect(dump.output).toContain('(111028,DCM,"Image Library")');
    for (const v of views) expect(dump.output).toContain(v.sopInstanceUid);
    expect(dump.output).toContain('(111031,DCM,"Image View")=(399368009,SCT,"medio-lateral oblique")');
    expect(dump.output).toContain('TEXT:(111001,DCM,"Algorithm Name")="nexus-densenet"');
    expect(dump.output).toContain('TEXT:(111003,DCM,"Algorithm Version")="1.2.0"');
    expect(dump.output).toContain(`weights SHA-256 ${"ab".repeat(32)}`);
    // Exam 87.4 %, left breast 87.4 % (its highest view), right breast 31 %, each view's own score.
    expect(dump.output.match(/"Probability of cancer"\)="87\.4" \(%/g)).toHaveLength(3);
    expect(dump.output.match(/"Probability of cancer"\)="31" \(%/g)).toHaveLength(2);
    expect(dump.output).toContain('"Probability of cancer")="12" (%');
    expect(dump.output).toContain('"Probability of cancer")="50" (%');
    // No warnings about the content tree's relationships (the IOD's constraints).
    expect(dump.output).not.toMatch(/not allowed|invalid|error/i);
  });

  it("the same input gives the same bytes (stable UIDs: a re-sent report replaces itself)", () => {
    const twice = cadSr({
      patient: { name: "DUPONT^MARIE^ANNE", id: "IPP-SR-1", birthDate: "1962-04-15", sex: "F" },
      study: { studyInstanceUid: study, accessionNumber: "ACC-42", date: "2026-11-15" },
      algorithm: { name: "nexus-densenet", version: "1.2.0", sha256: "ab".repeat(32), clinical: false },
      views,
      at: new Date("2026-11-30T09:00:00Z"),
      sopInstanceUid: derivedUid("test:cad", study),
      seriesInstanceUid: derivedUid("test:cad-series", study),
    });
    expect(twice.equals(cad)).toBe(true);
    expect(derivedUid("test:cad", study)).toMatch(/^2\.25\.\d{1,39}$/);
  });
});

describe("a technical recall's reading SR", () => {
  it("has no assessment per breast, says why, and passes dciodvfy", { timeout: 60_000 }, async (ctx) => {
    const recall = readingSr({
      patient: { name: "DUPONT^MARIE", id: "IPP-SR-2" },
      study: { studyInstanceUid: uid() },
      reader: "MARTIN^CLAIRE",
      breasts: null,
      at: new Date("2026-11-30T10:00:00Z"),
    });
    if (missing("dciodvfy") || missing("dsrdump")) {
      console.log("skipped: dciodvfy (dicom3tools) or dsrdump (DCMTK) is not installed");
      return ctx.skip();
    }
    const checked = await dciodvfy(recall);
    expect(checked.errors, checked.output).toEqual([]);
    const dump = await runOnDicom("dsrdump", ["+Pl"], recall);
    expect(dump.output).toContain("Technically inadequate images");
    expect(dump.output).not.toContain("Assessment Category");
  });
});

describe("pushing the SR to the PACS", () => {
  it("C-STOREs it into Orthanc, retrying after a refused attempt, each attempt reported", { timeout: 90_000 }, async (ctx) => {
    const absent = missing(ORTHANC, DICOMWEB_PLUGIN);
    if (absent) {
      console.log(`skipped: ${absent} (Orthanc) is not installed`);
      return ctx.skip();
    }
    const orthanc = await startOrthanc({ httpPort: 27312, dicomPort: 27313 });
    try {
      const attempts: { attempt: number; ok: boolean; detail: string }[] = [];
      // A wrong port first: the attempt fails and is reported, then the right one.
      const refused = await pushToPacs(sr, { host: "127.0.0.1", port: 27319, calledAe: "ORTHANC", callingAe: "NEXUS" }, {
        attempts: 2,
        backoffMs: 50,
        onAttempt: (attempt, o) => void attempts.push({ attempt, ...o }),
      });
      expect(refused.ok).toBe(false);
      expect(attempts.map((a) => a.attempt)).toEqual([1, 2]);
      const pushed = await pushToPacs(sr, { host: "127.0.0.1", port: 27313, calledAe: "ORTHANC", callingAe: "NEXUS" }, { backoffMs: 50 });
      expect(pushed, JSON.stringify(pushed)).toMatchObject({ ok: true, attempts: 1 });
      const found = await orthanc.rest("POST", "/tools/find", { Level: "Instance", Query: { StudyInstanceUID: study, Modality: "SR" } });
      expect(found.body).toHaveLength(1);
    } finally {
      await orthanc.stop();
    }
  });
});
