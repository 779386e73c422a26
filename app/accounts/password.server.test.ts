import { describe, expect, it } from "vitest";
import { hashPassword, verifyPassword } from "./password.server";

describe("password hashing", () => {
  it("uses argon2id with at least OWASP's parameters (m = 19 MiB, t = 2, p = 1) and a random salt", async () => {
    const a = await hashPassword("correct horse battery staple");
    const b = await hashPassword("correct horse battery staple");
    const [, type, , params] = a.split("$");
    expect(type).toBe("argon2id");
    const p = Object.fromEntries(params!.split(",").map((kv) => kv.split("=")).map(([k, v]) => [k, Number(v)]));
    expect(p.m).toBeGreaterThanOrEqual(19_456);
    expect(p.t).toBeGreaterThanOrEqual(2);
    expect(p.p).toBe(1);
    expect(a).not.toBe(b);
  });

  it("verifies the right password only, and never an unknown account", async () => {
    const hash = await hashPassword("s3cret-passphrase");
    expect(await verifyPassword(hash, "s3cret-passphrase")).toBe(true);
    expect(await verifyPassword(hash, "s3cret-passphrasE")).toBe(false);
    expect(await verifyPassword(null, "s3cret-passphrase")).toBe(false);
    expect(await verifyPassword("not-a-phc-string", "x")).toBe(false);
  });
});
