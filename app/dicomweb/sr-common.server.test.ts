import { describe, expect, it } from "vitest";
import { readConfig } from "../config.server";
import { parseDestination } from "../dimse/scu.server";
import { derivedUid, personName } from "./sr-common.server";

describe("SR helpers", () => {
  it("writes display names as DICOM person names", () => {
    expect(personName("Dr Claire Martin")).toBe("Martin^Claire^^Dr");
    expect(personName("Camille Dupont")).toBe("Dupont^Camille");
    expect(personName("Marie Anne de Sousa")).toBe("Sousa^Marie Anne de");
    expect(personName("Dupont")).toBe("Dupont");
    expect(personName("DUPONT^CAMILLE")).toBe("DUPONT^CAMILLE");
    expect(personName("  ")).toBe("");
  });

  it("derives stable 2.25 UIDs of at most 64 characters, different for different parts", () => {
    const a = derivedUid("nexus:reading-sr", "5b0c1f7e-0000-4000-8000-000000000001");
    expect(a).toBe(derivedUid("nexus:reading-sr", "5b0c1f7e-0000-4000-8000-000000000001"));
    expect(a).not.toBe(derivedUid("nexus:reading-sr", "5b0c1f7e-0000-4000-8000-000000000002"));
    expect(a).toMatch(/^2\.25\.[1-9]\d*$/);
    expect(a.length).toBeLessThanOrEqual(64);
  });
});

describe("the PACS destination (PACS_PUSH)", () => {
  it("parses AET@host:port", () => {
    expect(parseDestination("PACS_CHU@10.0.0.5:104", "NEXUS")).toEqual({ calledAe: "PACS_CHU", host: "10.0.0.5", port: 104, callingAe: "NEXUS" });
    expect(parseDestination("ORTHANC@pacs.example:4242", "NEXUS")?.host).toBe("pacs.example");
    for (const bad of ["PACS", "PACS@host", "@host:104", "PACS@host:0", "PACS@host:70000", "PACS@:104"]) expect(parseDestination(bad, "NEXUS"), bad).toBeNull();
  });

  it("refuses a malformed PACS_PUSH at start-up with a message naming it", () => {
    const env = (vars: Record<string, string>) => ({ NODE_ENV: "test", ...vars }) as NodeJS.ProcessEnv;
    expect(() => readConfig(env({ PACS_PUSH: "pacs.example:104" }))).toThrow(/PACS_PUSH must be AET@host:port/);
    expect(() => readConfig(env({ PACS_PUSH: "WAY_TOO_LONG_AE_TITLE@host:104" }))).toThrow(/PACS_PUSH/);
    expect(() => readConfig(env({ PACS_PUSH_ATTEMPTS: "0" }))).toThrow(/PACS_PUSH_ATTEMPTS/);
    expect(readConfig(env({ PACS_PUSH: "PACS@10.0.0.5:104" })).PACS_PUSH).toBe("PACS@10.0.0.5:104");
    expect(readConfig(env({ PACS_PUSH: "" })).PACS_PUSH).toBeUndefined();
  });
});
