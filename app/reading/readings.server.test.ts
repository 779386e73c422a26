/**
 * The reading workflow against the real database: every transition and refusal through recordReading(), what each
 * viewer sees of the readings, and both worklists (care team, consent, same reader, oldest first, completeness).
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "../accounts/actor";
import { db } from "../db/db.server";
import { careTeam, consents, exams, images, patients, predictions, readings, users } from "../db/schema";
import { programmeStats } from "./programme.server";
import { HttpError } from "../http/errors.server";
import type { ReadingInput } from "./reading-schema";
import {
  aiVisibleTo,
  examRef,
  firstReadingWorklist,
  recordReading,
  secondReadingWorklist,
  visibleReadings,
} from "./readings.server";

async function doctor(name: string): Promise<Actor> {
  const id = randomUUID();
  const email = `${name.toLowerCase().replace(/\W/g, "")}-${id.slice(0, 6)}@test.nexus`;
  await db.insert(users).values({ id, email, name, role: "doctor", passwordHash: "x" });
  return { id, email, name, role: "doctor", patientId: null };
}

let A: Actor, B: Actor, C: Actor, outsider: Actor;
let patientId: string;

async function exam(opts: { patient?: string; views?: string[]; since?: Date } = {}): Promise<string> {
  const [row] = await db
    .insert(exams)
    .values({ patientId: opts.patient ?? patientId, date: "2026-11-30", studyInstanceUid: `2.25.${Date.now()}${Math.floor(Math.random() * 1e9)}`, statusSince: opts.since ?? new Date() })
    .returning({ id: exams.id });
  for (const v of opts.views ?? []) {
    const [laterality, view] = v.split("-");
    await db.insert(images).values({
      id: randomUUID(),
      patientId: opts.patient ?? patientId,
      contentType: "application/dicom",
      size: 1,
      sha256: "0",
      storageKey: `test/${randomUUID()}`,
      ciphertextSize: 1,
      formatVersion: 1,
      examId: row!.id,
      laterality,
      view,
    });
  }
  return row!.id;
}

const read = (r: number, l: number): ReadingInput => ({
  breasts: { R: { acr: r, density: "B" }, L: { acr: l, density: "C" } },
  technicallyInadequate: false,
  findings: [],
});
const inadequate: ReadingInput = { technicallyInadequate: true, findings: [] };

async function refusal(p: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HttpError) return { status: err.status, code: err.code };
    throw err;
  }
  throw new Error("expected a refusal");
}

beforeAll(async () => {
  [A, B, C, outsider] = await Promise.all([doctor("Alice Durand"), doctor("Bruno Lefèvre"), doctor("Chloé Petit"), doctor("Hors Équipe")]);
  const [p] = await db.insert(patients).values({ displayName: "Camille Martin", birthDate: "1968-04-12", ipp: `IPP-${randomUUID().slice(0, 8)}` }).returning({ id: patients.id });
  patientId = p!.id;
  await db.insert(careTeam).values([A, B, C].map((d) => ({ doctorId: d.id, patientId })));
  await db.insert(consents).values({ patientId, purpose: "care", granted: true });
});

describe("recordReading: the state machine on the database", () => {
  it("L1 normal → awaiting_second_reading; L2 by another reader normal → final_normal", async () => {
    const id = await exam();
    expect(await recordReading(id, A, read(1, 2), "recall")).toMatchObject({ kind: "first", examStatus: "awaiting_second_reading" });
    expect(await refusal(recordReading(id, A, read(1, 1), "recall"))).toEqual({ status: 409, code: "same_reader" });
    expect(await recordReading(id, B, read(1, 1), "recall")).toMatchObject({ kind: "second", examStatus: "final_normal" });
    expect((await examRef(id))!.status).toBe("final_normal");
    expect(await refusal(recordReading(id, C, read(1, 1), "recall"))).toEqual({ status: 409, code: "wrong_state" });
    expect(await db.select().from(readings).where(eq(readings.examId, id))).toHaveLength(2);
  });

  it("L1 ACR 4 → immediate_workup; only the first reader concludes it; normal → L2; L2 ACR 4 → recall", async () => {
    const id = await exam();
    expect(await recordReading(id, A, read(4, 1), "recall")).toMatchObject({ kind: "first", examStatus: "immediate_workup" });
    expect(await refusal(recordReading(id, B, read(1, 1), "recall"))).toEqual({ status: 409, code: "not_first_reader" });
    expect(await recordReading(id, A, read(2, 1), "recall")).toMatchObject({ kind: "workup", examStatus: "awaiting_second_reading" });
    expect(await recordReading(id, B, read(4, 1), "recall")).toMatchObject({ kind: "second", examStatus: "recall" });
  });

  it("a work-up that confirms the abnormality → recall; inadequate images → technical_recall", async () => {
    const a = await exam();
    await recordReading(a, A, read(0, 1), "recall");
    expect(await recordReading(a, A, read(5, 1), "recall")).toMatchObject({ examStatus: "recall" });
    const b = await exam();
    expect(await recordReading(b, A, inadequate, "recall")).toMatchObject({ examStatus: "technical_recall" });
    const c = await exam();
    await recordReading(c, A, read(1, 1), "recall");
    expect(await recordReading(c, B, inadequate, "recall")).toMatchObject({ examStatus: "technical_recall" });
  });

  it("READING_DISAGREEMENT=arbitration: L2 abnormal → awaiting_arbitration → a third reader decides", async () => {
    const id = await exam();
    await recordReading(id, A, read(1, 1), "arbitration");
    expect(await recordReading(id, B, read(1, 4), "arbitration")).toMatchObject({ examStatus: "awaiting_arbitration" });
    expect(await refusal(recordReading(id, A, read(1, 1), "arbitration"))).toEqual({ status: 409, code: "same_reader" });
    expect(await refusal(recordReading(id, B, read(1, 1), "arbitration"))).toEqual({ status: 409, code: "same_reader" });
    expect(await recordReading(id, C, read(1, 2), "arbitration")).toMatchObject({ kind: "arbitration", examStatus: "final_normal" });
  });

  it("two second readers at once: one wins, the other gets 409 and nothing half-written", async () => {
    const id = await exam();
    await recordReading(id, A, read(1, 1), "recall");
    const results = await Promise.allSettled([recordReading(id, B, read(1, 1), "recall"), recordReading(id, C, read(4, 1), "recall")]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(HttpError);
    expect((rejected.reason as HttpError).status).toBe(409);
    expect(await db.select().from(readings).where(eq(readings.examId, id))).toHaveLength(2);
  });
});

describe("who sees the readings", () => {
  it("before the result is final, each reader sees only her own; once final, everyone of the care team sees all", async () => {
    const id = await exam();
    await recordReading(id, A, read(1, 1), "recall");
    expect((await visibleReadings(id, "awaiting_second_reading", B.id)).length).toBe(0);
    expect((await visibleReadings(id, "awaiting_second_reading", A.id)).map((r) => r.reader.name)).toEqual(["Alice Durand"]);
    expect(await aiVisibleTo({ id, status: "awaiting_second_reading" }, B.id, "after_reading")).toBe(false);
    expect(await aiVisibleTo({ id, status: "awaiting_second_reading" }, A.id, "after_reading")).toBe(true);
    expect(await aiVisibleTo({ id, status: "awaiting_second_reading" }, B.id, "concurrent")).toBe(true);
    await recordReading(id, B, read(2, 1), "recall");
    const all = await visibleReadings(id, "final_normal", C.id);
    expect(all.map((r) => [r.kind, r.reader.name, r.breasts?.R.acr])).toEqual([
      ["first", "Alice Durand", 1],
      ["second", "Bruno Lefèvre", 2],
    ]);
  });
});

describe("worklists", () => {
  it("first reading: the care team's exams awaiting L1, oldest first, with completeness; work-ups only for their first reader", async () => {
    const older = await exam({ views: ["R-CC", "L-CC", "R-MLO", "L-MLO"], since: new Date(Date.now() - 3 * 86400_000) });
    const newer = await exam({ views: ["R-CC", "L-CC", "R-MLO"], since: new Date(Date.now() - 2 * 86400_000) });
    const ids = (await firstReadingWorklist(B.id)).exams.map((e) => e.id);
    expect(ids.indexOf(older)).toBeGreaterThanOrEqual(0);
    expect(ids.indexOf(older)).toBeLessThan(ids.indexOf(newer));
    const list = (await firstReadingWorklist(B.id)).exams;
    expect(list.find((e) => e.id === older)).toMatchObject({ complete: true, patientName: "Camille Martin" });
    expect(list.find((e) => e.id === newer)).toMatchObject({ complete: false, views: ["L-CC", "R-CC", "R-MLO"] });
    expect((await firstReadingWorklist(outsider.id)).exams).toHaveLength(0);

    await recordReading(newer, A, read(3, 1), "recall");
    expect((await firstReadingWorklist(A.id)).exams.map((e) => e.id)).toContain(newer);
    expect((await firstReadingWorklist(B.id)).exams.map((e) => e.id)).not.toContain(newer);
  });

  it("second reading: never the caller's own first reading; no exam of a patient whose care consent is withdrawn", async () => {
    const id = await exam();
    await recordReading(id, A, read(1, 1), "recall");
    expect((await secondReadingWorklist(A.id)).exams.map((e) => e.id)).not.toContain(id);
    expect((await secondReadingWorklist(B.id)).exams.map((e) => e.id)).toContain(id);
    await db.update(consents).set({ granted: false }).where(eq(consents.patientId, patientId));
    try {
      expect((await secondReadingWorklist(B.id)).exams.map((e) => e.id)).not.toContain(id);
    } finally {
      await db.update(consents).set({ granted: true }).where(eq(consents.patientId, patientId));
    }
  });
});

describe("programme statistics", () => {
  it("counts statuses, the L2 backlog against 15 days, readers, recall rate, discordance and AI agreement in the doctor's scope", async () => {
    const [D, E] = await Promise.all([doctor("Denise Stat"), doctor("Émile Stat")]);
    const [p] = await db.insert(patients).values({ displayName: "Patiente Statistique" }).returning({ id: patients.id });
    const pid = p!.id;
    await db.insert(careTeam).values([D, E].map((d) => ({ doctorId: d.id, patientId: pid })));
    await db.insert(consents).values({ patientId: pid, purpose: "care", granted: true });
    // 1: normal/normal; 2: normal then ACR 4 at L2 (recall, discordant); 3: waiting L2 for 20 days; 4: waiting L1.
    const e1 = await exam({ patient: pid, views: ["R-CC"] });
    await recordReading(e1, D, read(1, 1), "recall");
    await recordReading(e1, E, read(1, 2), "recall");
    const e2 = await exam({ patient: pid, views: ["R-CC"] });
    await recordReading(e2, D, read(1, 1), "recall");
    await recordReading(e2, E, read(4, 1), "recall");
    const e3 = await exam({ patient: pid });
    await recordReading(e3, D, read(2, 2), "recall");
    await db.update(exams).set({ statusSince: new Date(Date.now() - 20 * 86400_000) }).where(eq(exams.id, e3));
    await exam({ patient: pid });
    // The AI called both finals "positive": it agrees with the recall (e2), not with the normal (e1).
    for (const [e, probability] of [[e1, 0.8], [e2, 0.9]] as const) {
      const [img] = await db.select({ id: images.id }).from(images).where(eq(images.examId, e));
      await db.insert(predictions).values({
        id: randomUUID(), imageId: img!.id, patientId: pid, label: "Positive", probability, probabilities: { Positive: probability },
        modelName: "demo", modelVersion: "1", modelSha256: "0", modelClinical: false, durationMs: 1,
      });
    }
    const stats = await programmeStats(D);
    expect(Object.fromEntries(stats.byStatus.map((s) => [s.status, s.count]))).toMatchObject({
      awaiting_first_reading: 1, awaiting_second_reading: 1, final_normal: 1, recall: 1, technical_recall: 0,
    });
    expect(stats.backlog).toMatchObject({ count: 1, overdue: 1, oldestDays: 20, oldest: [{ examId: e3, days: 20, patientName: "Patiente Statistique" }] });
    expect(stats.perReader.map((r) => [r.name, r.first, r.second])).toEqual([["Denise Stat", 3, 0], ["Émile Stat", 0, 2]]);
    expect(stats.finals).toEqual({ total: 2, recall: 1, technicalRecall: 0, recallRate: 0.5 });
    expect(stats.discordance).toEqual({ pairs: 2, discordant: 1, rate: 0.5 });
    expect(stats.ai).toMatchObject({ exams: 2, agree: 1, aiRecallFinalNormal: 1, aiNormalFinalRecall: 0 });
    // An admin sees the whole programme and no patient name.
    const admin = await programmeStats({ ...D, id: randomUUID(), role: "admin" });
    expect(admin.backlog.count).toBeGreaterThanOrEqual(1);
    expect(admin.backlog.oldest.every((o) => o.patientName === null)).toBe(true);
  });
});
