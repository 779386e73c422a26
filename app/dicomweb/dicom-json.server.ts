/**
 * The DICOM JSON model (PS3.18 F.2): attributes keyed by their 8-hex-digit tag, `{vr, Value}`. Builders for the
 * Store Instances Response, the QIDO-RS result attributes, and the WADO-RS metadata of a stored instance.
 */
import dcmjs from "dcmjs";

export interface JsonAttribute {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}
export type DicomJson = Record<string, JsonAttribute>;

/** An attribute; empty (`{vr}` only, as PS3.18 wants for a known-but-empty value) when the value is absent. */
export function attr(vr: string, ...values: (string | number | null | undefined | DicomJson | { Alphabetic: string })[]): JsonAttribute {
  const present = values.filter((v) => v !== undefined && v !== null && v !== "");
  return present.length ? { vr, Value: present } : { vr };
}

export const personName = (name: string | null | undefined): JsonAttribute =>
  name ? { vr: "PN", Value: [{ Alphabetic: name }] } : { vr: "PN" };

// ---- Store Instances Response (PS3.18 10.5.3, PS3.4 Table CC.2.3-1) --------------------------------------------

/** Failure reasons (0008,1197): the standard's codes where one fits, 0xC4xx (the "cannot understand" range) else. */
export const FAILURE = {
  /** Processing failure (storage unavailable, unexpected). */
  processing: 0x0110,
  /** Refused: not authorised (care team, scope). */
  notAuthorized: 0x0124,
  /** Out of resources: the instance is over the size limit. */
  tooLarge: 0xa700,
  /** The instance does not belong to the study named in the URL. */
  studyMismatch: 0xa900,
  /** Cannot understand: not DICOM Part 10, unreadable header, unsupported media type. */
  notDicom: 0xc000,
  /** The header's identity contradicts the patient's record (the API's 409 identity_mismatch). */
  identityMismatch: 0xc409,
  /** No patient with this PatientID: held in the reconciliation queue, not filed. */
  unknownPatient: 0xc404,
} as const;

export interface StoredInstance {
  sopClassUid?: string;
  sopInstanceUid?: string;
  retrieveUrl?: string;
}
export interface FailedInstance {
  sopClassUid?: string;
  sopInstanceUid?: string;
  reason: number;
  /** Human words (French first): a DICOM JSON client shows FailureReason; this travels alongside it. */
  comment: string;
}

export function storeInstancesResponse(input: {
  studyUrl?: string;
  stored: StoredInstance[];
  failed: FailedInstance[];
}): DicomJson {
  const out: DicomJson = {};
  if (input.studyUrl) out["00081190"] = attr("UR", input.studyUrl);
  if (input.failed.length)
    out["00081198"] = {
      vr: "SQ",
      Value: input.failed.map((f) => ({
        "00081150": attr("UI", f.sopClassUid),
        "00081155": attr("UI", f.sopInstanceUid),
        "00081197": attr("US", f.reason),
        // Error Comment (0000,0902): the reason in words, so an operator reading the response knows what to fix
        // (longer than LO's 64 characters when the reason needs it: a JSON reader takes it whole).
        "00000902": attr("LO", f.comment.slice(0, 512)),
      })),
    };
  if (input.stored.length)
    out["00081199"] = {
      vr: "SQ",
      Value: input.stored.map((s) => ({
        "00081150": attr("UI", s.sopClassUid),
        "00081155": attr("UI", s.sopInstanceUid),
        ...(s.retrieveUrl ? { "00081190": attr("UR", s.retrieveUrl) } : {}),
      })),
    };
  return out;
}

// ---- WADO-RS metadata -------------------------------------------------------------------------------------------

const BULK_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "UN"]);

/**
 * The whole data set of a stored instance as DICOM JSON (file meta information left out), bulk data (pixel data,
 * other binary values over 1 KiB) replaced by BulkDataURIs under `instanceUrl`.
 */
export function instanceMetadata(bytes: Uint8Array, instanceUrl: string): DicomJson {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const message = dcmjs.data.DicomMessage.readFile(buffer, { untilTag: "7FE00010", includeUntilTagValue: false });
  const dict = message.dict as DicomJson;
  const out: DicomJson = {};
  for (const [tag, element] of Object.entries(dict)) out[tag] = bulkless(tag, element, instanceUrl);
  // Pixel data was not parsed (untilTag): announce it as bulk data.
  out["7FE00010"] = { vr: "OW", BulkDataURI: `${instanceUrl}/frames/1` };
  return out;
}

function bulkless(tag: string, element: JsonAttribute, instanceUrl: string): JsonAttribute {
  if (element.vr === "SQ" && element.Value) {
    return {
      vr: "SQ",
      Value: (element.Value as DicomJson[]).map((item) =>
        Object.fromEntries(Object.entries(item).map(([t, e]) => [t, bulkless(t, e, instanceUrl)])),
      ),
    };
  }
  if (BULK_VRS.has(element.vr)) {
    const size = (element.Value ?? []).reduce<number>((n, v) => n + ((v as ArrayBuffer)?.byteLength ?? 0), 0);
    if (size > 1024 || tag.toUpperCase() === "7FE00010") return { vr: element.vr, BulkDataURI: `${instanceUrl}/bulk/${tag}` };
    const bytes = Buffer.concat((element.Value ?? []).map((v) => Buffer.from(v as ArrayBuffer)));
    return bytes.length ? { vr: element.vr, InlineBinary: bytes.toString("base64") } : { vr: element.vr };
  }
  return element;
}
