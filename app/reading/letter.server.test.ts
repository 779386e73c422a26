import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { renderPatientLetter, renderReferrerReport, type LetterData } from "./letter.server";

const pdftotext = spawnSync("pdftotext", ["-v"]).error ? null : "pdftotext";
if (!pdftotext) console.log("skipped: letter text checks need pdftotext (Debian package poppler-utils)");

/** The PDF's text as poppler reads it (a real, independent PDF reader). */
function textOf(pdf: Uint8Array): string {
  const out = spawnSync("pdftotext", ["-layout", "-enc", "UTF-8", "-", "-"], { input: Buffer.from(pdf) });
  if (out.status !== 0) throw new Error(`pdftotext failed: ${out.stderr.toString()}`);
  return out.stdout.toString().replace(/\s+/g, " ");
}

const base: LetterData = {
  centre: { name: "Centre de dépistage Nexus", phone: "01 23 45 67 89" },
  patient: { displayName: "Camille Martin", birthDate: "1968-04-12", ipp: "IPP0001" },
  exam: { date: "2026-11-30", accessionNumber: "ACC-42", status: "final_normal" },
  readings: [
    { kind: "first", readerName: "Alice Durand", at: new Date("2026-11-30T09:00:00Z"), technicallyInadequate: false, breasts: { R: { acr: 1, density: "B" }, L: { acr: 2, density: "B" } }, findings: [] },
    {
      kind: "second",
      readerName: "Bruno Lefèvre",
      at: new Date("2026-12-02T10:00:00Z"),
      technicallyInadequate: false,
      breasts: { R: { acr: 4, density: "B" }, L: { acr: 1, density: "B" } },
      findings: [{ laterality: "R", type: "mass", quadrant: "UOQ", clock: 10, sizeMm: 14 }],
      conclusion: "Masse spiculée QSE droit.",
    },
  ],
  generatedAt: new Date("2026-12-02T12:00:00Z"),
};

describe.skipIf(!pdftotext)("result letters (pdf-lib, read back with pdftotext)", () => {
  it("normal: plain words, next invitation in two years, the patient's identity, no reader detail", async () => {
    const text = textOf(await renderPatientLetter(base));
    expect(text).toContain("Camille Martin");
    expect(text).toContain("née le 12/04/1968");
    expect(text).toContain("IPP IPP0001");
    expect(text).toContain("le résultat est normal");
    expect(text).toContain("nouvelle invitation au dépistage dans deux ans");
    expect(text).not.toMatch(/ACR|%|probabilit|score|IA\b/i);
  });

  it("recall: what happens next and whom to call", async () => {
    const text = textOf(await renderPatientLetter({ ...base, exam: { ...base.exam, status: "recall" } }));
    expect(text).toContain("examens complémentaires sont nécessaires");
    expect(text).toContain("Ce qui va se passer");
    expect(text).toContain("appelez le Centre de dépistage Nexus au 01 23 45 67 89");
    expect(text).not.toMatch(/ACR|%|score/i);
  });

  it("technical recall: new images", async () => {
    const text = textOf(await renderPatientLetter({ ...base, exam: { ...base.exam, status: "technical_recall" } }));
    expect(text).toContain("De nouvelles images sont nécessaires");
  });

  it("the referrer's report: ACR and density per breast, findings, both readers and dates, the demo model's status", async () => {
    const pdf = await renderReferrerReport({
      ...base,
      exam: { ...base.exam, status: "recall" },
      ai: { modelName: "nexus-demo-densenet121", modelVersion: "0.1.0", clinical: false, examProbability: 0.716 },
    });
    const text = textOf(pdf);
    expect(text).toContain("Dépistage positif");
    expect(text).toContain("Première lecture (L1) — Dr Alice Durand, le 30/11/2026");
    expect(text).toContain("Deuxième lecture (L2) — Dr Bruno Lefèvre, le 02/12/2026");
    expect(text).toContain("Sein droit : ACR 4, densité B");
    expect(text).toContain("Sein gauche : ACR 2, densité B");
    expect(text).toContain("Anomalie : masse, sein droit, quadrant supéro-externe, 10 h, 14 mm");
    expect(text).toContain("Modèle nexus-demo-densenet121, version 0.1.0");
    expect(text).toContain("non validé cliniquement");
  });

  it("characters the standard font cannot draw do not break the letter", async () => {
    const text = textOf(await renderPatientLetter({ ...base, patient: { displayName: "Zoë Nguyễn 李" } }));
    expect(text).toContain("Zoë Nguy?n ?");
  });
});
