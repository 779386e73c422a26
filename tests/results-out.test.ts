/**
 * Results out: the final reading as a Comprehensive SR validated by dciodvfy (dicom3tools: zero errors) and shown by
 * dsrdump (DCMTK), then pushed by C-STORE to a real Orthanc, with a failed attempt retried after back-off.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readingSr } from "../app/dicomweb/sr.server";
import { pushToPacs } from "../app/dimse/scu.server";
import { uid } from "./helpers/dicom";
import { DICOMWEB_PLUGIN, missing, ORTHANC, run, startOrthanc } from "./helpers/peers";

const dir = mkdtempSync(path.join(tmpdir(), "nexus-sr-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
    const file = path.join(dir, "reading-sr.dcm");
    writeFileSync(file, sr);
    const checked = await run("dciodvfy", [file]);
    const errors = checked.output.split("\n").filter((l) => l.startsWith("Error"));
    expect(errors, checked.output).toEqual([]);
    expect(checked.output).toMatch(/Comprehensive ?SR/i);
  });

  it("dsrdump shows the tree: per breast, the finding site, the density and the ACR category", { timeout: 60_000 }, async (ctx) => {
    if (missing("dsrdump")) {
      console.log("skipped: dsrdump (DCMTK) is not installed");
      return ctx.skip();
    }
    const file = path.join(dir, "reading-sr-dump.dcm");
    writeFileSync(file, sr);
    const dump = await run("dsrdump", [file]);
    expect(dump.code, dump.output).toBe(0);
    expect(dump.output).toContain('(73056007,SCT,"Right breast")');
    expect(dump.output).toContain('(129717001,SCT,"Scattered fibroglandular densities")');
    expect(dump.output).toContain('(ACR4,99NEXUS,"ACR 4 - suspicious")');
    expect(dump.output).toContain('(129718006,SCT,"Heterogeneously dense")');
  });
});

describe("pushing the SR to the PACS", () => {
  it("C-STOREs it into Orthanc, retrying after a refused attempt, each attempt reported", { timeout: 90_000 }, async (ctx) => {
    const absent = missing(ORTHANC, DICOMWEB_PLUGIN);
    if (absent) {
      console.log(`skipped: ${absent} (Orthanc) is not installed`);
      return ctx.skip();
    }
    const orthanc = await startOrthanc({ httpPort: 47152, dicomPort: 47153 });
    try {
      const attempts: { attempt: number; ok: boolean; detail: string }[] = [];
      // A wrong port first: the attempt fails and is reported, then the right one.
      const refused = await pushToPacs(sr, { host: "127.0.0.1", port: 47159, calledAe: "ORTHANC", callingAe: "NEXUS" }, {
        attempts: 2,
        backoffMs: 50,
        onAttempt: (attempt, o) => void attempts.push({ attempt, ...o }),
      });
      expect(refused.ok).toBe(false);
      expect(attempts.map((a) => a.attempt)).toEqual([1, 2]);
      const pushed = await pushToPacs(sr, { host: "127.0.0.1", port: 47153, calledAe: "ORTHANC", callingAe: "NEXUS" }, { backoffMs: 50 });
      expect(pushed, JSON.stringify(pushed)).toMatchObject({ ok: true, attempts: 1 });
      const found = await orthanc.rest("POST", "/tools/find", { Level: "Instance", Query: { StudyInstanceUID: study, Modality: "SR" } });
      expect(found.body).toHaveLength(1);
    } finally {
      await orthanc.stop();
    }
  });
});
