import { describe, expect, it } from "vitest";
import { parseReading, readingFromForm } from "./reading-schema";
import { discordant, isFinal, transition, type ExamState, type ReadingOutcome } from "./workflow";

const normal: ReadingOutcome = { technicallyInadequate: false, breasts: { R: { acr: 1 }, L: { acr: 2 } } };
const acr = (r: number, l: number): ReadingOutcome => ({ technicallyInadequate: false, breasts: { R: { acr: r }, L: { acr: l } } });
const inadequate: ReadingOutcome = { technicallyInadequate: true };
const A = "reader-a";
const B = "reader-b";
const C = "reader-c";

describe("the double-reading state machine", () => {
  describe("first reading (L1)", () => {
    const s: ExamState = { status: "awaiting_first_reading" };
    it("normal or benign on both breasts → awaiting_second_reading", () => {
      expect(transition(s, A, acr(1, 1))).toEqual({ ok: true, kind: "first", next: "awaiting_second_reading" });
      expect(transition(s, A, acr(2, 1))).toEqual({ ok: true, kind: "first", next: "awaiting_second_reading" });
    });
    it.each([0, 3, 4, 5])("ACR %i on either breast → immediate_workup", (a) => {
      expect(transition(s, A, acr(a, 1))).toEqual({ ok: true, kind: "first", next: "immediate_workup" });
      expect(transition(s, A, acr(1, a))).toEqual({ ok: true, kind: "first", next: "immediate_workup" });
    });
    it("technically inadequate → technical_recall", () => {
      expect(transition(s, A, inadequate)).toEqual({ ok: true, kind: "first", next: "technical_recall" });
    });
  });

  describe("immediate work-up", () => {
    const s: ExamState = { status: "immediate_workup", firstReaderId: A };
    it("the same reader concludes normal/benign → awaiting_second_reading", () => {
      expect(transition(s, A, normal)).toEqual({ ok: true, kind: "workup", next: "awaiting_second_reading" });
    });
    it("the work-up confirms an abnormality → recall", () => {
      expect(transition(s, A, acr(4, 1))).toEqual({ ok: true, kind: "workup", next: "recall" });
    });
    it("inadequate → technical_recall", () => {
      expect(transition(s, A, inadequate)).toEqual({ ok: true, kind: "workup", next: "technical_recall" });
    });
    it("another reader is refused (409 not_first_reader)", () => {
      expect(transition(s, B, normal)).toMatchObject({ ok: false, status: 409, code: "not_first_reader" });
    });
  });

  describe("second reading (L2)", () => {
    const s: ExamState = { status: "awaiting_second_reading", firstReaderId: A };
    it("normal → final_normal", () => {
      expect(transition(s, B, normal)).toEqual({ ok: true, kind: "second", next: "final_normal" });
    });
    it.each([0, 3, 4, 5])("ACR %i → recall", (a) => {
      expect(transition(s, B, acr(a, 1))).toEqual({ ok: true, kind: "second", next: "recall" });
    });
    it("inadequate → technical_recall", () => {
      expect(transition(s, B, inadequate)).toEqual({ ok: true, kind: "second", next: "technical_recall" });
    });
    it("the first reader is refused (409 same_reader)", () => {
      expect(transition(s, A, normal)).toMatchObject({ ok: false, status: 409, code: "same_reader" });
    });
    it("READING_DISAGREEMENT=arbitration sends a disagreement to a third reader", () => {
      expect(transition(s, B, acr(1, 4), "arbitration")).toEqual({ ok: true, kind: "second", next: "awaiting_arbitration" });
      expect(transition(s, B, normal, "arbitration")).toEqual({ ok: true, kind: "second", next: "final_normal" });
      expect(transition(s, B, inadequate, "arbitration")).toEqual({ ok: true, kind: "second", next: "technical_recall" });
    });
  });

  describe("arbitration", () => {
    const s: ExamState = { status: "awaiting_arbitration", firstReaderId: A, secondReaderId: B };
    it("a third reader decides: normal → final_normal, abnormal → recall, inadequate → technical_recall", () => {
      expect(transition(s, C, normal, "arbitration")).toEqual({ ok: true, kind: "arbitration", next: "final_normal" });
      expect(transition(s, C, acr(5, 1), "arbitration")).toEqual({ ok: true, kind: "arbitration", next: "recall" });
      expect(transition(s, C, inadequate, "arbitration")).toEqual({ ok: true, kind: "arbitration", next: "technical_recall" });
    });
    it("neither earlier reader may arbitrate (409 same_reader)", () => {
      expect(transition(s, A, normal)).toMatchObject({ ok: false, code: "same_reader" });
      expect(transition(s, B, normal)).toMatchObject({ ok: false, code: "same_reader" });
    });
  });

  it.each(["final_normal", "recall", "technical_recall"] as const)("a final exam (%s) takes no reading (409 wrong_state)", (status) => {
    expect(isFinal(status)).toBe(true);
    expect(transition({ status, firstReaderId: A, secondReaderId: B }, C, normal)).toMatchObject({ ok: false, status: 409, code: "wrong_state" });
  });

  it("discordance: one reading normal, the other not", () => {
    expect(discordant(normal, acr(4, 1))).toBe(true);
    expect(discordant(normal, acr(2, 2))).toBe(false);
    expect(discordant(normal, inadequate)).toBe(true);
  });
});

describe("the reading schema (shared by the form and the API)", () => {
  const body = { breasts: { R: { acr: 1, density: "B" }, L: { acr: 2, density: "C" } } };
  it("accepts a complete reading and fills the defaults", () => {
    const r = parseReading(body);
    expect(r).toEqual({ ok: true, data: { ...body, technicallyInadequate: false, findings: [] } });
  });
  it("refuses ACR outside 0–5, density outside A–D and a finding without side, naming each field", () => {
    const r = parseReading({
      breasts: { R: { acr: 6, density: "E" }, L: { acr: -1, density: "A" } },
      findings: [{ type: "mass", sizeMm: 12 }],
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(Object.keys(r.errors).sort()).toEqual(["breasts.L.acr", "breasts.R.acr", "breasts.R.density", "findings.0.laterality"]);
    expect(r.errors["findings.0.laterality"]).toMatch(/Côté/);
    expect(r.errors["breasts.R.density"]).toMatch(/A, B, C ou D/);
  });
  it("requires both breasts unless the images are declared inadequate", () => {
    expect(parseReading({}).ok).toBe(false);
    expect(parseReading({ technicallyInadequate: true })).toMatchObject({ ok: true });
  });
  it("refuses unknown fields, clock positions outside 1–12 and non-positive sizes", () => {
    expect(parseReading({ ...body, score: 3 }).ok).toBe(false);
    const r = parseReading({ ...body, findings: [{ laterality: "R", type: "mass", clock: 13, sizeMm: 0 }] });
    expect(r.ok ? {} : r.errors).toMatchObject({ "findings.0.clock": expect.any(String), "findings.0.sizeMm": expect.any(String) });
  });
  it("reads the form's flat fields into the same shape, skipping blank finding rows", () => {
    const form = new FormData();
    for (const [k, v] of Object.entries({ "R.acr": "4", "R.density": "B", "L.acr": "1", "L.density": "B", "finding.0.laterality": "R", "finding.0.type": "mass", "finding.0.clock": "10", "finding.0.sizeMm": "14", "finding.1.laterality": "", conclusion: " Masse QSE droit " })) form.set(k, v);
    const r = parseReading(readingFromForm(form));
    expect(r).toEqual({
      ok: true,
      data: {
        breasts: { R: { acr: 4, density: "B" }, L: { acr: 1, density: "B" } },
        technicallyInadequate: false,
        findings: [{ laterality: "R", type: "mass", clock: 10, sizeMm: 14 }],
        conclusion: "Masse QSE droit",
      },
    });
  });
  it("an empty form names every missing breast field", () => {
    const r = parseReading(readingFromForm(new FormData()));
    expect(r.ok ? [] : Object.keys(r.errors).sort()).toEqual(["breasts.L.acr", "breasts.L.density", "breasts.R.acr", "breasts.R.density"]);
  });
});
