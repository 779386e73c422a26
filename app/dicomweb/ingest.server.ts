/**
 * One DICOM instance arriving by STOW-RS or C-STORE: the same path as an upload. Read the header from the first
 * bytes → match the patient (PatientID = IPP, or the INS when IssuerOfPatientID names the INS authority) → for a
 * known patient, perform("dicom.store") → identity check → vault (encrypted while streaming) → exam filing; for an
 * unknown one, perform("dicom.store", inbox) → the reconciliation queue (encrypted too), never filed. Each instance
 * leaves one audit event naming its study, its patient and the outcome.
 */
import { randomUUID } from "node:crypto";
import { and, eq, isNull } from "drizzle-orm";
import { db } from "../db/db.server";
import { dicomInbox, images, patients } from "../db/schema";
import { readDicomHeaders, type DicomHeaders } from "../exams/dicom-header.server";
import type { Actor } from "../accounts/actor";
import { examAdmission } from "../exams/exams.server";
import { checkIdentity, type IdentityField } from "../exams/identity.server";
import { HttpError, perform, type Ctx } from "../http/context.server";
import { vault } from "../vault/instance.server";
import { peek } from "../vault/vault.server";
import { MAX_UPLOAD_BYTES } from "../vault/messages";
import { FAILURE } from "./dicom-json.server";

/** OIDs of the INS authority (INS-NIR and INS-NIA) as IssuerOfPatientID (or its universal entity id) carries them. */
export const INS_AUTHORITY_OIDS = ["1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.10"];

const HEAD_BYTES = 1024 * 1024;

export interface Arrival {
  source: "stow" | "dimse";
  /** STOW-RS to /studies/{study}: every instance must belong to it. */
  studyInstanceUid?: string;
  /** DIMSE: the calling AE title. */
  callingAe?: string;
}

export type InstanceResult =
  | {
      ok: true;
      sopClassUid?: string;
      sopInstanceUid?: string;
      studyInstanceUid: string;
      seriesInstanceUid?: string;
      imageId: string;
      patientId: string;
    }
  | {
      ok: false;
      sopClassUid?: string;
      sopInstanceUid?: string;
      reason: number;
      code: string;
      message: string;
      /** The rest of the instance was not read (over the size limit): the caller must stop the whole request. */
      stop?: boolean;
    };

/** Reads and drops the rest of an instance, never past the size limit (then false: stop the request). */
export async function drain(source: AsyncIterable<Uint8Array>): Promise<boolean> {
  let seen = 0;
  for await (const chunk of source) {
    seen += chunk.length;
    if (seen > MAX_UPLOAD_BYTES) return false;
  }
  return true;
}

const isPart10 = (head: Buffer) => head.length >= 132 && head.toString("latin1", 128, 132) === "DICM";

/** The patient a header names: by INS when its issuer is the INS authority, by IPP otherwise. */
export async function matchPatient(identity: DicomHeaders["identity"]) {
  const id = identity.patientId?.replace(/\s+/g, "");
  if (!id) return null;
  const issuer = identity.issuerOfPatientId ?? "";
  const byIns = INS_AUTHORITY_OIDS.some((oid) => issuer.includes(oid));
  const [row] = await db
    .select()
    .from(patients)
    .where(and(byIns ? eq(patients.ins, id.toUpperCase()) : eq(patients.ipp, id), isNull(patients.erasedAt)));
  return row ?? null;
}

/** Turns what perform() throws (a JSON Response on the API channel, or an HttpError) into a per-instance failure. */
async function refusal(err: unknown): Promise<{ status: number; code: string; message: string } | null> {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
  if (err instanceof Response) {
    const body = (await err.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    return { status: err.status, code: body?.error?.code ?? "refused", message: body?.error?.message ?? `HTTP ${err.status}` };
  }
  return null;
}

function reasonFor(status: number, code: string): number {
  if (code === "identity_mismatch") return FAILURE.identityMismatch;
  if (status === 401 || status === 403) return FAILURE.notAuthorized;
  if (status === 413) return FAILURE.tooLarge;
  if (status >= 500) return FAILURE.processing;
  return FAILURE.notDicom;
}

/**
 * Receives one instance. Never throws for a problem of the instance itself (it becomes a failure with a reason);
 * throws only for a problem of the whole request (e.g. anonymous caller: perform's 401).
 */
export async function receiveInstance(ctx: Ctx, data: AsyncIterable<Uint8Array>, arrival: Arrival): Promise<InstanceResult> {
  // The header lies in the first megabyte; the size limit is the vault's, applied while the rest streams in.
  const { head, all } = await peek(data, HEAD_BYTES);
  if (!isPart10(head)) {
    return { ok: false, reason: FAILURE.notDicom, code: "not_dicom", message: "Ce n'est pas un fichier DICOM Part 10 (préfixe DICM absent)." };
  }
  const headers = readDicomHeaders(head);
  const { sopClassUid, sopInstanceUid, studyInstanceUid } = headers.exam;
  const ids = { sopClassUid, sopInstanceUid };
  if (!sopInstanceUid || !studyInstanceUid) {
    return { ok: false, ...ids, reason: FAILURE.notDicom, code: "bad_dicom", message: "En-tête DICOM illisible ou incomplet (SOP Instance UID, Study Instance UID)." };
  }
  if (arrival.studyInstanceUid && arrival.studyInstanceUid !== studyInstanceUid) {
    return {
      ok: false,
      ...ids,
      reason: FAILURE.studyMismatch,
      code: "study_mismatch",
      message: `L'instance appartient à l'examen ${studyInstanceUid}, pas à ${arrival.studyInstanceUid}.`,
    };
  }

  const patient = await matchPatient(headers.identity);
  try {
    if (!patient) {
      const id = await perform(ctx, "dicom.store", { type: "inbox" }, () => queue(ctx, all, headers, arrival), {
        describe: (id) => ({ resourceType: "inbox", resourceId: id }),
      });
      return {
        ok: false,
        ...ids,
        reason: FAILURE.unknownPatient,
        code: "unknown_patient",
        message: `Patient inconnu (PatientID ${headers.identity.patientId ? "sans correspondance" : "absent"}) : instance mise en file de rapprochement (${id}).`,
      };
    }
    const stored = await perform(
      ctx,
      "dicom.store",
      { type: "study", id: studyInstanceUid, patientId: patient.id },
      // The event names the study (StudyInstanceUID) and the patient.
      () => storeForPatient(ctx.actor!, patient, headers, all),
    );
    return { ok: true, ...ids, studyInstanceUid, seriesInstanceUid: headers.exam.seriesInstanceUid, imageId: stored.id, patientId: patient.id };
  } catch (err) {
    const refused = await refusal(err);
    if (!refused) throw err;
    if (refused.status === 401) throw err;
    if (refused.status === 413) return tooLargeResult(ids);
    return { ok: false, ...ids, reason: reasonFor(refused.status, refused.code), code: refused.code, message: refused.message };
  }
}

type PatientRow = typeof patients.$inferSelect;

/**
 * A doctor's override of an identity mismatch, offered by the browser forms only (the upload form, the
 * reconciliation page): the typed reason (at least 10 characters, or the mismatch stands) and a callback that gets
 * the fields filed despite it, for the request's audit event.
 */
export interface IdentityOverride {
  reason: string;
  onOverride: (fields: IdentityField[], reason: string) => void;
}

/**
 * The known-patient path shared by STOW-RS, C-STORE and attaching a queued instance: identity check (a mismatch is
 * a 409 and nothing is stored), a re-sent instance recognised, then the vault and the exam.
 */
export async function storeForPatient(
  actor: Actor,
  patient: PatientRow,
  headers: DicomHeaders,
  all: AsyncIterable<Uint8Array>,
  override?: IdentityOverride,
): Promise<{ id: string }> {
  const sopInstanceUid = headers.exam.sopInstanceUid!;
  // A PACS re-sending an instance already filed (a retry) gets success without a second copy (same identity only).
  const [existing] = await db
    .select({ id: images.id })
    .from(images)
    .where(and(eq(images.patientId, patient.id), eq(images.sopInstanceUid, sopInstanceUid), isNull(images.erasedAt)));
  if (existing && checkIdentity(headers.identity, patient).result !== "mismatch") {
    if (!(await drain(all))) throw new HttpError(413, "too_large", "Instance trop volumineuse.");
    return { id: existing.id };
  }
  // The exam model's admission: the one identity check (409 identity_mismatch, nothing stored) and the filing.
  // The doctor's override exists on the browser form only (attaching from the reconciliation page), as for uploads.
  const admit = examAdmission({
    patientId: patient.id,
    actor,
    fields: override ? { identityOverride: override.reason.trim().slice(0, 500) || undefined } : {},
    allowOverride: Boolean(override),
    onOverride: override?.onOverride,
    record: patient,
  });
  return vault.storeImage({ patientId: patient.id, uploadedBy: actor.id, fileName: null, data: all, admit });
}

function tooLargeResult(ids: { sopClassUid?: string; sopInstanceUid?: string }): InstanceResult {
  return {
    ok: false,
    ...ids,
    reason: FAILURE.tooLarge,
    code: "too_large",
    message: `Instance trop volumineuse : la limite est de ${MAX_UPLOAD_BYTES / 1024 / 1024} Mo (lecture arrêtée).`,
    stop: true,
  };
}

/** Holds an instance for an unknown patient: encrypted under its own key, the header's identity sealed with it. */
async function queue(ctx: Ctx, data: AsyncIterable<Uint8Array>, headers: DicomHeaders, arrival: Arrival): Promise<string> {
  const id = randomUUID();
  const key = `inbox/${id}`;
  const sealed = await vault.putSealedStream(key, id, data, JSON.stringify(headers.identity));
  try {
    await db.insert(dicomInbox).values({
      id,
      source: arrival.source,
      callingAe: arrival.callingAe ?? null,
      receivedBy: ctx.actor!.id,
      studyInstanceUid: headers.exam.studyInstanceUid,
      seriesInstanceUid: headers.exam.seriesInstanceUid,
      sopInstanceUid: headers.exam.sopInstanceUid,
      sopClassUid: headers.exam.sopClassUid,
      modality: headers.exam.modality,
      studyDate: headers.exam.studyDate,
      size: sealed.size,
      sha256: sealed.sha256,
      storageKey: key,
      keyId: sealed.keyId,
      wrappedKey: sealed.wrappedKey,
      encryptedIdentity: sealed.sealedText,
    });
  } catch (err) {
    await vault.deleteSealed(key);
    throw err;
  }
  return id;
}
