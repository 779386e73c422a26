import { describe, expect, it } from "vitest";
import { batchedReads } from "./batched-reads.server";

/** A reader over a mutable table that records the keys of every statement it was asked to run. */
function tableReader(table: Map<string, number>) {
  const statements: string[][] = [];
  const read = batchedReads(async (keys: string[]) => {
    statements.push(keys);
    // The statement's snapshot, then its round trip.
    const rows = keys.filter((k) => table.has(k)).map((k) => [k, table.get(k)!] as const);
    await new Promise((r) => setTimeout(r, 5));
    return rows;
  });
  return { read, statements };
}

describe("batchedReads", () => {
  it("reads the keys asked for in one turn in one statement, each caller getting its own answer", async () => {
    const { read, statements } = tableReader(new Map([["a", 1], ["b", 2]]));
    const answers = await Promise.all([read("a"), read("b"), read("a"), read("missing")]);
    expect(answers).toEqual([1, 2, 1, undefined]);
    expect(statements).toEqual([["a", "b", "missing"]]);
  });

  it("keeps nothing: a read asked after a change sees it", async () => {
    const table = new Map([["token", 1]]);
    const { read, statements } = tableReader(table);
    expect(await read("token")).toBe(1);
    table.delete("token"); // revoked
    expect(await read("token")).toBeUndefined();
    expect(statements).toEqual([["token"], ["token"]]);
  });

  it("asked while a statement is in flight, a key goes in the next one", async () => {
    const table = new Map([["a", 1]]);
    const { read, statements } = tableReader(table);
    const first = read("a");
    await new Promise((r) => setImmediate(r)); // the first statement has left
    table.set("a", 2);
    const second = read("a");
    expect(await first).toBe(1);
    expect(await second).toBe(2);
    expect(statements).toEqual([["a"], ["a"]]);
  });

  it("a failed statement rejects every caller of its batch, and the next batch is read", async () => {
    let fail = true;
    const read = batchedReads(async (keys: string[]) => {
      if (fail) throw new Error("database busy");
      return keys.map((k) => [k, k.length] as const);
    });
    const results = await Promise.allSettled([read("x"), read("yy")]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect((results[0] as PromiseRejectedResult).reason.message).toBe("database busy");
    fail = false;
    expect(await read("yy")).toBe(2);
  });

  it("splits a turn of more than 256 keys into several statements", async () => {
    const keys = Array.from({ length: 600 }, (_, i) => `k${i}`);
    const { read, statements } = tableReader(new Map(keys.map((k, i) => [k, i])));
    const answers = await Promise.all(keys.map((k) => read(k)));
    expect(answers).toEqual(keys.map((_, i) => i));
    expect(statements.map((s) => s.length)).toEqual([256, 256, 88]);
  });
});
