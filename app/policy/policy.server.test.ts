/**
 * The one policy, in process, against a real database (PostgreSQL with DATABASE_URL, PGlite otherwise): who may
 * read exams and model output, purpose of use and list scope per action, and `perform()` — the pipeline every
 * route goes through: authorise → run → exactly one audit event (allowed, denied, or error) with its purpose.
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "../accounts/actor";
import { auditEvents, careTeam, patients, users } from "../db/schema";
import { db } from "../db/db.server";
import { recordConsentChange } from "../consent/consent.server";
import { context, perform, type Ctx } from "../http/context.server";
import { HttpError } from "../http/errors.server";
import { reasonCode } from "../i18n/reasons";
import { authorize, listScope, purposeOfUse, REASONS, type Action } from "./policy.server";

async function user(role: Actor["role"], patientId: string | null = null): Promise<Actor> {
  const email = `${role}-${randomUUID().slice(0, 8)}@policy.test`;
  const [row] = await db.insert(users).values({ email, name: `Test ${role}`, role, passwordHash: "x" }).returning({ id: users.id });
  return { id: row!.id, email, name: `Test ${role}`, role, patientId };
}

let doctor: Actor;
let otherDoctor: Actor;
let admin: Actor;
let researcher: Actor;
let patient: Actor;
let patientId = "";
let noConsentPatientId = "";

beforeAll(async () => {
  doctor = await user("doctor");
  otherDoctor = await user("doctor");
  admin = await user("admin");
  researcher = await user("researcher");
  const [p] = await db.insert(patients).values({ displayName: "Politique Test", createdBy: doctor.id }).returning({ id: patients.id });
  patientId = p!.id;
  const [q] = await db.insert(patients).values({ displayName: "Sans Consentement", createdBy: doctor.id }).returning({ id: patients.id });
  noConsentPatientId = q!.id;
  await db.insert(careTeam).values([
    { doctorId: doctor.id, patientId },
    { doctorId: doctor.id, patientId: noConsentPatientId },
  ]);
  await db.transaction(async (tx) => {
    await recordConsentChange(tx, { patientId, purpose: "care", granted: true, by: doctor, source: "intake" });
    await recordConsentChange(tx, { patientId, purpose: "ai_analysis", granted: true, by: doctor, source: "intake" });
  });
  patient = await user("patient", patientId);
  await db.update(patients).set({ userId: patient.id }).where(eq(patients.id, patientId));
});

describe("authorize()", () => {
  const exam = () => ({ type: "exam", id: randomUUID(), patientId }) as const;

  it("lets the care team read an exam and its model output while care consent is live, nobody else", async () => {
    expect(await authorize(doctor, "exam.read", exam())).toEqual({ allowed: true });
    expect(await authorize(doctor, "prediction.read", exam())).toEqual({ allowed: true });
    expect(await authorize(otherDoctor, "exam.read", exam())).toEqual({ allowed: false, reason: REASONS.careTeam });
    expect(await authorize(admin, "exam.read", exam())).toEqual({ allowed: false, reason: REASONS.role });
    expect(await authorize(null, "exam.read", exam())).toEqual({ allowed: false, reason: REASONS.anonymous });
    const never = { type: "exam", patientId: noConsentPatientId } as const;
    expect(await authorize(doctor, "exam.read", never)).toEqual({ allowed: false, reason: REASONS.careNeverGiven });
    expect(await authorize(doctor, "exam.analyse", never)).toEqual({ allowed: false, reason: REASONS.aiNeverGiven });
  });

  it("never gives the patient model output, while she sees her own exam list", async () => {
    expect(await authorize(patient, "exam.list", { type: "patient", id: patientId })).toEqual({ allowed: true });
    expect(await authorize(patient, "prediction.read", { type: "image", patientId })).toEqual({ allowed: false, reason: REASONS.noModelOutput });
    expect(await authorize(patient, "exam.read", exam())).toEqual({ allowed: false, reason: REASONS.role });
    expect(await authorize(patient, "exam.analyse", exam())).toMatchObject({ allowed: false });
  });

  it("refuses a resource without its patient (an unknown exam) and an action absent from the table", async () => {
    expect(await authorize(doctor, "exam.read", { type: "exam", id: randomUUID() })).toMatchObject({ allowed: false });
    expect(await authorize(doctor, "no.such.action" as Action, { type: "app" })).toEqual({ allowed: false, reason: REASONS.role });
  });

  it("owns purpose of use and list scope per action", () => {
    expect(purposeOfUse("exam.analyse", "doctor")).toBe("TREAT");
    expect(purposeOfUse("exam.list", "patient")).toBe("PATRQT");
    expect(purposeOfUse("patient.erase", "admin")).toBe("HOPERAT");
    expect(purposeOfUse("research.image", "researcher")).toBe("HRESCH");
    expect(purposeOfUse("audit.read", "admin")).toBe("HOPERAT");
    expect(listScope(doctor, "patient.list")).toEqual({ kind: "careTeam", doctorId: doctor.id });
    expect(listScope(admin, "patient.list")).toEqual({ kind: "directory" });
    expect(listScope(admin, "stats.view")).toEqual({ kind: "none" });
    expect(listScope(researcher, "stats.view")).toEqual({ kind: "research" });
    expect(listScope(researcher, "patient.list")).toEqual({ kind: "none" });
  });
});

describe("perform()", () => {
  const ctxOf = async (actor: Actor | null, channel: "api" | "page" = "api"): Promise<Ctx> => {
    const request = new Request("http://nexus.test/examens/x");
    const ctx = await context(request, { requestId: randomUUID(), clientIp: "127.0.0.1" } as never, channel);
    return { ...ctx, actor };
  };
  const eventsOf = (requestId: string | null) => db.select().from(auditEvents).where(eq(auditEvents.requestId, requestId!));

  it("runs an allowed action and records one allowed event with the policy's purpose", async () => {
    const ctx = await ctxOf(doctor);
    let ran = 0;
    const result = await perform(ctx, "exam.read", { type: "exam", id: "e1", patientId }, async () => ++ran);
    expect(result).toBe(1);
    const events = await eventsOf(ctx.info.requestId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ action: "exam.read", outcome: "allowed", purpose: "TREAT", patientId, actorId: doctor.id });
  });

  it("does not run a denied action: 403 JSON on the API, one denied event with the reason", async () => {
    const ctx = await ctxOf(otherDoctor);
    let ran = false;
    const thrown = await perform(ctx, "exam.read", { type: "exam", id: "e2", patientId }, async () => (ran = true)).catch((e: unknown) => e);
    expect(ran).toBe(false);
    expect(thrown).toBeInstanceOf(Response);
    expect((thrown as Response).status).toBe(403);
    expect(await (thrown as Response).json()).toEqual({ error: { code: "forbidden", message: REASONS.careTeam } });
    const events = await eventsOf(ctx.info.requestId);
    // The audit stores the reason's code (translated where it is shown: app/i18n/reasons.ts).
    expect(events.map((e) => [e.outcome, e.reason])).toEqual([["denied", reasonCode(REASONS.careTeam)]]);
  });

  it("records a refusal found while running (identity mismatch) as denied, and a failure as error", async () => {
    const mismatch = await ctxOf(doctor);
    const refused = await perform(mismatch, "image.upload", { type: "patient", id: patientId }, async () => {
      throw new HttpError(409, "identity_mismatch", "Identité discordante.", undefined, undefined, true);
    }).catch((e: unknown) => e);
    expect((refused as Response).status).toBe(409);
    expect((await eventsOf(mismatch.info.requestId)).map((e) => e.outcome)).toEqual(["denied"]);

    const failing = await ctxOf(doctor);
    await perform(failing, "exam.analyse", { type: "exam", id: "e3", patientId }, async () => {
      throw new HttpError(422, "no_readable_view", "Aucune incidence lisible.");
    }).catch(() => undefined);
    const [event] = await eventsOf(failing.info.requestId);
    expect(event).toMatchObject({ outcome: "error", reason: "422 Aucune incidence lisible." });
  });

  it("sends an anonymous page request to the login page, audited as denied", async () => {
    const ctx = await ctxOf(null, "page");
    const thrown = (await perform(ctx, "exam.read", { type: "exam", id: "e4", patientId }, async () => 1).catch((e: unknown) => e)) as Response;
    expect(thrown.status).toBe(302);
    expect(thrown.headers.get("Location")).toBe("/connexion?redirectTo=%2Fexamens%2Fx");
    expect((await eventsOf(ctx.info.requestId)).map((e) => e.outcome)).toEqual(["denied"]);
  });
});
