import { afterEach, describe, expect, it, vi } from "vitest";
import { reasonCode, reasonText } from "./reasons";
import { fieldMessage, issueMessage } from "./fields";

afterEach(() => vi.restoreAllMocks());

describe("numbers, sizes and dates through Intl", () => {
  it("writes French and English notation", async () => {
    const f = await import("./format");
    expect(f.formatBytes(6656, "fr")).toBe("6,5 Ko");
    expect(f.formatBytes(6656, "en")).toBe("6.5 kB");
    expect(f.formatBytes(3 * 1024 * 1024, "fr")).toBe("3,0 Mo");
    expect(f.formatBytes(512, "en")).toBe("512 B");
    expect(f.formatPercent(0.8679, "fr")).toMatch(/^86,8\s%$/);
    expect(f.formatPercent(0.8679, "en")).toBe("86.8%");
    expect(f.formatDicomDate("20260310", "fr")).toBe("10 mars 2026");
    expect(f.formatDicomDate("20260310", "en")).toBe("10 March 2026");
    expect(f.formatDicomDate("20261399", "fr")).toBe("20261399");
    expect(f.formatTransferSyntax("1.2.840.10008.1.2.4.90", "fr")).toBe("JPEG 2000 sans perte");
    expect(f.formatTransferSyntax("1.2.3.4", "en")).toBe("1.2.3.4");
    expect(f.formatContentType("application/dicom")).toBe("DICOM");
    expect(f.formatDate("2026-03-10T09:05:00Z", "fr")).toBe("10 mars 2026, 10:05");
  });

  it("builds each formatter once per language, not once per call", async () => {
    vi.resetModules();
    const counts = { date: 0, number: 0 };
    const RealDate = Intl.DateTimeFormat;
    const RealNumber = Intl.NumberFormat;
    // Counting subclasses stand in for the constructors while the module is loaded and used.
    Intl.DateTimeFormat = class extends RealDate {
      constructor(...args: ConstructorParameters<typeof RealDate>) {
        super(...args);
        counts.date++;
      }
    } as typeof Intl.DateTimeFormat;
    Intl.NumberFormat = class extends RealNumber {
      constructor(...args: ConstructorParameters<typeof RealNumber>) {
        super(...args);
        counts.number++;
      }
    } as typeof Intl.NumberFormat;
    try {
      const f = await import("./format");
      for (let i = 0; i < 500; i++) {
        f.formatDate(new Date(i * 1e9), i % 2 ? "fr" : "en");
        f.formatDateSeconds(new Date(i * 1e9), "fr");
        f.formatBytes(i * 4096, "fr");
        f.formatPercent(i / 500, "en");
      }
    } finally {
      Intl.DateTimeFormat = RealDate;
      Intl.NumberFormat = RealNumber;
    }
    expect(counts.date).toBe(3);
    expect(counts.number).toBeLessThanOrEqual(3);
  });
});

describe("messages as codes, translated at the edge", () => {
  it("turns zod's English into codes and shows them in either language", () => {
    const code = issueMessage({ code: "invalid_type", message: "Invalid input: expected string, received undefined", input: undefined });
    expect(code).toBe("field.required");
    expect(fieldMessage(code, "fr")).toBe("Ce champ est obligatoire.");
    expect(fieldMessage(code, "en")).toBe("This field is required.");
    expect(issueMessage({ code: "too_small", message: "Too small: expected string to have >=12 characters", origin: "string", minimum: 12 })).toBe("field.tooShort:12");
    expect(fieldMessage("field.tooShort:12", "fr")).toBe("Au moins 12 caractères.");
    // A schema's own French sentence stays, and is translated for English pages.
    expect(issueMessage({ code: "too_small", message: "Saisissez votre adresse e-mail.", origin: "string", minimum: 1 })).toBe("Saisissez votre adresse e-mail.");
    expect(fieldMessage("Saisissez votre adresse e-mail.", "en")).toBe("Enter your e-mail address.");
  });

  it("stores policy reasons as codes and reads old French rows in either language", () => {
    expect(reasonCode("Consentement retiré pour l'analyse IA.")).toBe("policy.aiRevoked");
    expect(reasonCode("csrf")).toBe("csrf");
    expect(reasonText("policy.aiRevoked", "en")).toBe("Consent to AI analysis withdrawn.");
    expect(reasonText("Consentement retiré pour l'analyse IA.", "en")).toBe("Consent to AI analysis withdrawn.");
    expect(reasonText("internal error", "fr")).toBe("internal error");
  });
});

describe("the policy's reasons all have words", () => {
  it("matches every REASONS sentence with its French translation", async () => {
    const { REASONS } = await import("../policy/policy.server");
    const { REASON_TEXT } = await import("./reasons");
    for (const [key, text] of Object.entries(REASONS)) expect(REASON_TEXT[key as keyof typeof REASON_TEXT]?.fr, key).toBe(text);
  });
});
