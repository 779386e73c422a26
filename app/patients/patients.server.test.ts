/**
 * Patient lists page by keyset (newest first, the id breaking ties) against a real database (PostgreSQL with
 * DATABASE_URL, PGlite otherwise): every patient once, in order, across pages, even when several share their
 * creation time to the microsecond.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createUser } from "../accounts/users.server";
import { db } from "../db/db.server";
import { careTeam, patients } from "../db/schema";
import { listPatients, type PatientSummary } from "./patients.server";

let doctorId: string;
const ids: string[] = [];

beforeAll(async () => {
  ({ id: doctorId } = await createUser({ email: `pager-${randomUUID()}@test.nexus`, name: "Dr Pager", role: "doctor", password: "correct-horse-battery" }));
  // Three arrivals at the same instant, two before and two after it.
  const times = ["2026-01-01T08:00:00.000001Z", "2026-01-01T08:00:00.000002Z", ...Array(3).fill("2026-01-01T09:00:00.123456Z"), "2026-01-02T10:00:00Z", "2026-01-03T10:00:00Z"];
  for (const [i, at] of times.entries()) {
    const [row] = await db
      .insert(patients)
      .values({ displayName: `Paginée ${i}`, createdBy: doctorId, createdAt: new Date(at), ipp: `PAGE-${randomUUID()}` })
      .returning({ id: patients.id });
    await db.insert(careTeam).values({ doctorId, patientId: row!.id });
    ids.push(row!.id);
  }
  // Microseconds apart (a Date keeps milliseconds only: both were stored at 08:00:00.000).
  await db.execute(sql`update patients set created_at = '2026-01-01T08:00:00.000002Z' where id = ${ids[1]}`);
});

async function walk(limit: number, q?: string): Promise<{ pages: number; seen: PatientSummary[] }> {
  const seen: PatientSummary[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await listPatients({ kind: "careTeam", doctorId }, { limit, cursor, q });
    expect(page.patients.length).toBeLessThanOrEqual(limit);
    seen.push(...page.patients);
    cursor = page.nextCursor ?? undefined;
    pages++;
  } while (cursor && pages < 20);
  return { pages, seen };
}

describe("patient lists, page by page", () => {
  it("gives every patient once, newest first, whatever the page size", async () => {
    const all = (await listPatients({ kind: "careTeam", doctorId })).patients;
    expect(all).toHaveLength(7);
    expect(new Set(all.map((p) => p.id))).toEqual(new Set(ids));
    for (const [a, b] of all.slice(1).map((p, i) => [all[i]!, p] as const)) expect(a.createdAt >= b.createdAt).toBe(true);
    for (const limit of [1, 2, 3, 6, 7]) {
      const { pages, seen } = await walk(limit);
      expect(seen.map((p) => p.id), `limit ${limit}`).toEqual(all.map((p) => p.id));
      expect(pages).toBe(Math.ceil(7 / limit));
    }
    // The last page says so.
    expect((await listPatients({ kind: "careTeam", doctorId }, { limit: 7 })).nextCursor).toBeNull();
  });

  it("pages a search, and the admin directory, the same way", async () => {
    const { seen } = await walk(2, "Paginée");
    expect(seen.map((p) => p.id).sort()).toEqual([...ids].sort());
    const first = await listPatients({ kind: "directory" }, { limit: 1 });
    const second = await listPatients({ kind: "directory" }, { limit: 1, cursor: first.nextCursor! });
    expect(second.patients[0]!.id).not.toBe(first.patients[0]!.id);
    expect(second.patients[0]!.createdAt <= first.patients[0]!.createdAt).toBe(true);
  });

  it("answers nothing for a scope without a list, and an empty page after an unknown cursor", async () => {
    expect(await listPatients({ kind: "none" })).toEqual({ patients: [], nextCursor: null });
    expect(await listPatients({ kind: "careTeam", doctorId }, { cursor: randomUUID() })).toEqual({ patients: [], nextCursor: null });
  });
});
