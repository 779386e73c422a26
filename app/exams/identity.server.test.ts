import { describe, expect, it } from "vitest";
import { checkIdentity, describeFields, nameTokens, namesAgree, normaliseDate, validateIns } from "./identity.server";

/** Builds a valid INS from its 13 digits (the key computed independently here, with BigInt). */
function withKey(body: string): string {
  const numeric = body.replace(/^(\d{5})2A/, "$119").replace(/^(\d{5})2B/, "$118");
  const key = 97n - (BigInt(numeric) % 97n);
  return body + String(key).padStart(2, "0");
}

describe("validateIns", () => {
  it("accepts a NIR whose key is 97 − (number mod 97), with or without spaces", () => {
    // 2 84 05 75 123 456: key 97 − (2840575123456 mod 97) = 72.
    expect(2840575123456 % 97).toBe(25);
    expect(validateIns("284057512345672")).toEqual({ ok: true, ins: "284057512345672" });
    expect(validateIns("2 84 05 75 123 456 72")).toEqual({ ok: true, ins: "284057512345672" });
    expect(validateIns(withKey("1690199123456")).ok).toBe(true);
  });

  it("counts Corsica's 2A as 19 and 2B as 18 for the key", () => {
    const a = withKey("28505" + "2A" + "004123");
    const b = withKey("28505" + "2B" + "004123");
    expect(validateIns(a)).toEqual({ ok: true, ins: a });
    expect(validateIns(b.toLowerCase())).toEqual({ ok: true, ins: b });
    expect(a.slice(13)).not.toBe(b.slice(13));
    // The key of 2A is not the one of plain digits 20 or 2A read as hex.
    expect(validateIns(a.slice(0, 13) + b.slice(13))).toEqual({ ok: false, reason: "key" });
  });

  it("refuses a wrong key, a wrong length and letters elsewhere", () => {
    expect(validateIns("284057512345673")).toEqual({ ok: false, reason: "key" });
    expect(validateIns("28405751234567")).toEqual({ ok: false, reason: "length" });
    expect(validateIns("2840575123456721")).toEqual({ ok: false, reason: "length" });
    expect(validateIns("2840X7512345672")).toEqual({ ok: false, reason: "format" });
    expect(validateIns("")).toEqual({ ok: false, reason: "length" });
  });
});

describe("normalisation", () => {
  it("reads DICOM, ISO, ACR-NEMA and French dates, and refuses impossible ones", () => {
    expect(normaliseDate("19620415")).toBe("1962-04-15");
    expect(normaliseDate("1962-04-15")).toBe("1962-04-15");
    expect(normaliseDate("1962.04.15")).toBe("1962-04-15");
    expect(normaliseDate("15/04/1962")).toBe("1962-04-15");
    expect(normaliseDate("19620231")).toBeNull();
    expect(normaliseDate("1962")).toBeNull();
    expect(normaliseDate(undefined)).toBeNull();
  });

  it("compares names without case, accents, order or DICOM separators", () => {
    expect(nameTokens("DUPONT^Hélène^^^")).toEqual(["dupont", "helene"]);
    expect(namesAgree("DUPONT^HELENE", "Hélène Dupont")).toBe(true);
    expect(namesAgree("LE GOFF-KERBRAT^Anne Marie", "Anne-Marie Le Goff Kerbrat")).toBe(true);
    expect(namesAgree("DUPONT^HELENE^CLAIRE", "Hélène Dupont")).toBe(true);
    expect(namesAgree("MARTIN^JEANNE", "Hélène Dupont")).toBe(false);
    expect(namesAgree("DUPONT^JEANNE", "Hélène Dupont")).toBe(false);
    // Ideographic/phonetic groups after "=" are ignored.
    expect(namesAgree("DUPONT^HELENE=デュポン", "Hélène Dupont")).toBe(true);
  });
});

describe("checkIdentity", () => {
  const record = { displayName: "Hélène Dupont", ipp: "IPP-000123", ins: "284057512345672", birthDate: "1962-04-15", sex: "F" };
  const same = { patientId: "IPP-000123", patientName: "DUPONT^HELENE", patientBirthDate: "19620415", patientSex: "F" };

  it("agrees when the header names the same woman, by IPP or by INS", () => {
    expect(checkIdentity(same, record)).toEqual({ result: "ok" });
    expect(checkIdentity({ ...same, patientId: " ipp-000123 " }, record)).toEqual({ result: "ok" });
    expect(checkIdentity({ ...same, patientId: "284057512345672", issuerOfPatientId: "INS-NIR" }, record)).toEqual({ result: "ok" });
    expect(checkIdentity({ ...same, patientId: "IPP-000123", issuerOfPatientId: "1.2.250.1.213.1.4.8" }, record).result).toBe("mismatch");
  });

  it("names every contradicting field", () => {
    const other = { patientId: "IPP-999", patientName: "MARTIN^JEANNE", patientBirthDate: "19700101", patientSex: "M" };
    expect(checkIdentity(other, record)).toEqual({
      result: "mismatch",
      fields: ["PatientID", "PatientName", "PatientBirthDate", "PatientSex"],
      missing: [],
    });
    expect(checkIdentity({ ...same, patientBirthDate: "19620416" }, record)).toEqual({ result: "mismatch", fields: ["PatientBirthDate"], missing: [] });
    expect(checkIdentity({ ...same, patientBirthDate: "garbage" }, record)).toMatchObject({ result: "mismatch", fields: ["PatientBirthDate"] });
  });

  it("reports missing header fields without refusing, and skips what the record lacks", () => {
    expect(checkIdentity({ patientName: "DUPONT^HELENE" }, record)).toEqual({
      result: "missing",
      fields: ["PatientID", "PatientBirthDate", "PatientSex"],
    });
    expect(checkIdentity({ ...same, patientName: "^^^" }, record)).toEqual({ result: "missing", fields: ["PatientName"] });
    expect(checkIdentity({ ...same, patientSex: "O" }, record)).toEqual({ result: "ok" });
    expect(checkIdentity(same, { displayName: "Hélène Dupont" })).toEqual({ result: "ok" });
  });

  it("describes fields in French and English", () => {
    expect(describeFields(["PatientName", "PatientBirthDate"])).toBe("nom (PatientName), date de naissance (PatientBirthDate)");
    expect(describeFields(["PatientID"], "en")).toBe("patient id (PatientID)");
  });
});
