import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { IntegrityError } from "./format.server";
import {
  generateDataKey,
  KEY_FILE_NAME,
  KeyringError,
  loadKeyring,
  rewrapKey,
  rotateMasterKey,
  unwrapKey,
  wrapKey,
} from "./keys.server";

const b64 = () => randomBytes(32).toString("base64");
const OBJECT = "5b0d9a64-3f8e-4a39-9d7c-1c2b3a4d5e6f";

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "nexus-keys-test-"));
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
  vi.restoreAllMocks();
});

function quietGenerate() {
  const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
  const keyring = loadKeyring({ env: {}, dataDir, allowGenerate: true });
  return { keyring, warn };
}

describe("loadKeyring from NEXUS_MASTER_KEYS", () => {
  it("reads several keys and makes the last one active by default", () => {
    const keyring = loadKeyring({ env: { NEXUS_MASTER_KEYS: `old:${b64()}, new:${b64()}` } });
    expect(keyring.activeId).toBe("new");
    expect([...keyring.keys.keys()]).toEqual(["old", "new"]);
    expect(keyring.source).toEqual({ kind: "env" });
  });

  it("honours NEXUS_MASTER_KEY_ACTIVE", () => {
    const env = { NEXUS_MASTER_KEYS: `a:${b64()},b:${b64()}`, NEXUS_MASTER_KEY_ACTIVE: "a" };
    expect(loadKeyring({ env }).activeId).toBe("a");
  });

  it.each([
    ["a key of the wrong length", `k1:${randomBytes(16).toString("base64")}`, /must be 32 bytes, got 16/],
    ["invalid base64", `k1:not*base64*at*all`, /not valid .*base64/],
    ["an entry without a colon", `k1${b64()}`, /entry 1 is not of the form id:base64key/],
    ["an id with bad characters", `bad id:${b64()}`, /key id "bad id" must be 1-32 characters/],
    ["an id too long", `${"x".repeat(33)}:${b64()}`, /must be 1-32 characters/],
    ["a duplicated id", `k1:${b64()},k1:${b64()}`, /"k1" appears twice/],
  ])("refuses %s", (_what, value, message) => {
    expect(() => loadKeyring({ env: { NEXUS_MASTER_KEYS: value } })).toThrow(message);
  });

  it("refuses an active id that is not in the list", () => {
    const env = { NEXUS_MASTER_KEYS: `a:${b64()}`, NEXUS_MASTER_KEY_ACTIVE: "zzz" };
    expect(() => loadKeyring({ env })).toThrow(/NEXUS_MASTER_KEY_ACTIVE="zzz" is not one of the ids/);
  });

  it("never puts key material in error messages", () => {
    const key = randomBytes(31).toString("base64");
    try {
      loadKeyring({ env: { NEXUS_MASTER_KEYS: `k:${key}` } });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(KeyringError);
      expect((error as Error).message).not.toContain(key);
    }
  });
});

describe("loadKeyring from a key file", () => {
  it("refuses to run without any key unless generation is allowed", () => {
    expect(() => loadKeyring({ env: {}, dataDir })).toThrow(/no master key configured/);
  });

  it("generates a 0600 key file once, with a loud warning, and reuses it", () => {
    const { keyring, warn } = quietGenerate();
    const path = join(dataDir, KEY_FILE_NAME);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(warn).toHaveBeenCalledTimes(1);
    const message = String(warn.mock.calls[0]![0]);
    expect(message.split("\n").length).toBeGreaterThan(5);
    expect(message).toMatch(/DEMO/);
    expect(message).toMatch(/Back it up/);
    expect(keyring.source).toEqual({ kind: "file", path });

    const again = loadKeyring({ env: {}, dataDir, allowGenerate: true });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(again.activeId).toBe(keyring.activeId);
    expect(again.keys.get(again.activeId)!.equals(keyring.keys.get(keyring.activeId)!)).toBe(true);
  });

  it("reads an explicit NEXUS_MASTER_KEY_FILE", () => {
    const path = join(dataDir, "elsewhere.json");
    writeFileSync(path, JSON.stringify({ active: "k2", keys: { k1: b64(), k2: b64() } }), { mode: 0o600 });
    const keyring = loadKeyring({ env: { NEXUS_MASTER_KEY_FILE: path } });
    expect(keyring.activeId).toBe("k2");
    expect(keyring.keys.size).toBe(2);
  });

  it("says so when NEXUS_MASTER_KEY_FILE points nowhere, even if generation is allowed", () => {
    const path = join(dataDir, "missing.json");
    expect(() => loadKeyring({ env: { NEXUS_MASTER_KEY_FILE: path }, allowGenerate: true })).toThrow(/does not exist/);
  });

  it.each([
    ["not JSON", "{", /is not valid JSON/],
    ["the wrong shape", JSON.stringify({ keys: [] }), /must look like/],
    ["an unknown active id", JSON.stringify({ active: "x", keys: { k: b64() } }), /"active" names key "x"/],
    ["no keys", JSON.stringify({ active: "x", keys: {} }), /holds no key/],
  ])("refuses a key file with %s", (_what, text, message) => {
    writeFileSync(join(dataDir, KEY_FILE_NAME), text, { mode: 0o600 });
    expect(() => loadKeyring({ env: {}, dataDir })).toThrow(message);
  });
});

describe("data key wrapping", () => {
  const keyring = loadKeyring({ env: { NEXUS_MASTER_KEYS: `k1:${b64()},k2:${b64()}` } });

  it("wraps and unwraps a data key under the active master key", () => {
    const dataKey = generateDataKey();
    expect(dataKey.length).toBe(32);
    const { wrappedKey, keyId } = wrapKey(keyring, dataKey, OBJECT);
    expect(keyId).toBe("k2");
    expect(wrappedKey.length).toBe(12 + 32 + 16);
    expect(unwrapKey(keyring, wrappedKey, keyId, OBJECT).equals(dataKey)).toBe(true);
  });

  it("gives a fresh data key each time and a fresh nonce each wrap", () => {
    expect(generateDataKey().equals(generateDataKey())).toBe(false);
    const dataKey = generateDataKey();
    expect(wrapKey(keyring, dataKey, OBJECT).wrappedKey.equals(wrapKey(keyring, dataKey, OBJECT).wrappedKey)).toBe(
      false,
    );
  });

  it("names an unknown key id clearly", () => {
    const { wrappedKey } = wrapKey(keyring, generateDataKey(), OBJECT);
    expect(() => unwrapKey(keyring, wrappedKey, "gone", OBJECT)).toThrow(KeyringError);
    expect(() => unwrapKey(keyring, wrappedKey, "gone", OBJECT)).toThrow(/unknown master key id "gone"/);
  });

  it("refuses a tampered wrapped key, another object id, or the wrong master key", () => {
    const { wrappedKey, keyId } = wrapKey(keyring, generateDataKey(), OBJECT);
    for (let offset = 0; offset < wrappedKey.length; offset += 7) {
      const tampered = Buffer.from(wrappedKey);
      tampered[offset]! ^= 0x80;
      expect(() => unwrapKey(keyring, tampered, keyId, OBJECT)).toThrow(IntegrityError);
    }
    expect(() => unwrapKey(keyring, wrappedKey, keyId, "another-object")).toThrow(IntegrityError);
    expect(() => unwrapKey(keyring, wrappedKey, "k1", OBJECT)).toThrow(IntegrityError);
    expect(() => unwrapKey(keyring, wrappedKey.subarray(1), keyId, OBJECT)).toThrow(IntegrityError);
  });
});

describe("master key rotation", () => {
  it("adds a key to the file, makes it active, and keeps old wraps readable", () => {
    const { keyring: before } = quietGenerate();
    const dataKey = generateDataKey();
    const oldWrap = wrapKey(before, dataKey, OBJECT);

    const { keyId, path } = rotateMasterKey({ env: {}, dataDir, newKeyId: "k-rotated" });
    expect(keyId).toBe("k-rotated");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const file = JSON.parse(readFileSync(path, "utf8")) as { active: string; keys: Record<string, string> };
    expect(file.active).toBe("k-rotated");
    expect(Object.keys(file.keys).sort()).toEqual([before.activeId, "k-rotated"].sort());

    const after = loadKeyring({ env: {}, dataDir });
    expect(after.activeId).toBe("k-rotated");
    expect(unwrapKey(after, oldWrap.wrappedKey, oldWrap.keyId, OBJECT).equals(dataKey)).toBe(true);
    expect(wrapKey(after, dataKey, OBJECT).keyId).toBe("k-rotated");

    const rewrapped = rewrapKey(after, oldWrap.wrappedKey, oldWrap.keyId, OBJECT);
    expect(rewrapped.keyId).toBe("k-rotated");
    expect(unwrapKey(after, rewrapped.wrappedKey, rewrapped.keyId, OBJECT).equals(dataKey)).toBe(true);
  });

  it("generates a valid id by default and refuses a duplicate id", () => {
    const { keyring } = quietGenerate();
    const { keyId } = rotateMasterKey({ env: {}, dataDir });
    expect(keyId).toMatch(/^k\d{8}-[0-9a-f]{6}$/);
    expect(() => rotateMasterKey({ env: {}, dataDir, newKeyId: keyring.activeId })).toThrow(/already exists/);
    expect(() => rotateMasterKey({ env: {}, dataDir, newKeyId: "no spaces" })).toThrow(/must be 1-32 characters/);
  });

  it("tells the operator what to set when keys come from the environment", () => {
    const env = { NEXUS_MASTER_KEYS: `k1:${b64()}` };
    expect(() => rotateMasterKey({ env, dataDir })).toThrow(/NEXUS_MASTER_KEY_ACTIVE=<new-id>/);
  });
});
