/**
 * The database schema (drizzle-orm). PostgreSQL holds metadata only: never image bytes, never secrets in clear.
 * Migrations are generated from this file into drizzle/ (`npm run db:generate`); triggers that drizzle cannot
 * express live in hand-written migrations there.
 */
import {
  bigint,
  bigserial,
  boolean,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { EXAM_STATUSES, OUTCOMES, PURPOSES, ROLES } from "../vocabulary";
import type { DicomMetadata } from "../vault/sniff.server";
import type { Finding } from "../reading/reading-schema";

export { EXAM_STATUSES, OUTCOMES, PURPOSES, ROLES, type ExamStatus, type Outcome, type Purpose, type Role } from "../vocabulary";

export const roleEnum = pgEnum("role", ROLES);

export const purposeEnum = pgEnum("purpose", PURPOSES);

export const outcomeEnum = pgEnum("audit_outcome", OUTCOMES);

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();

export const users = pgTable(
  "users",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    /** Always stored lower-cased and trimmed. */
    email: text("email").notNull(),
    name: text("name").notNull(),
    role: roleEnum("role").notNull(),
    /** argon2id PHC string. */
    passwordHash: text("password_hash").notNull(),
    /** A temporary password (handed out by a doctor or an admin): it works once and forces a new one at that login. */
    mustChangePassword: boolean("must_change_password").notNull().default(false),
    /** TOTP secret (RFC 6238), AES-256-GCM-sealed with a key derived from the session secret; null: none. */
    totpSecret: text("totp_secret"),
    /** Set once the user confirmed the secret with a valid code: from then on every login asks for a code. */
    totpEnabledAt: timestamp("totp_enabled_at", { withTimezone: true }),
    /** The last accepted time step: a code is accepted once (replay refused). */
    totpLastStep: bigint("totp_last_step", { mode: "number" }),
    /** OpenID Connect link: `issuer|subject` of the identity provider (Pro Santé Connect), never the e-mail alone. */
    oidcSubject: text("oidc_subject"),
    disabledAt: timestamp("disabled_at", { withTimezone: true }),
    /** Machine accounts (`system`) only: `store`, `query` (see MACHINE_SCOPES). */
    scopes: text("scopes").array(),
    /** Machine accounts only: the DICOM AE title the device calls with (DIMSE associations map to this account). */
    aeTitle: text("ae_title"),
    createdAt: createdAt(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex("users_email_key").on(t.email), uniqueIndex("users_oidc_subject_key").on(t.oidcSubject)],
);

/** Single-use recovery codes of the second factor, stored as SHA-256 (they are random, 50 bits and more). */
export const recoveryCodes = pgTable(
  "recovery_codes",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    codeHash: text("code_hash").notNull(),
    usedAt: timestamp("used_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [index("recovery_codes_user_idx").on(t.userId)],
);

/**
 * Failed-attempt counters and lock-outs. The key (column `email`, kept for compatibility) is one of:
 * `<email>|<client address>` (a stranger's guesses lock only their own address), `<email>` (a slower global limit
 * per e-mail), `otp:<user id>` (second-factor codes). Unknown addresses are throttled exactly like real ones.
 */
export const loginThrottle = pgTable("login_throttle", {
  email: text("email").primaryKey(),
  failures: integer("failures").notNull().default(0),
  lockedUntil: timestamp("locked_until", { withTimezone: true }),
  lastFailureAt: timestamp("last_failure_at", { withTimezone: true }),
});

/** Browser sessions: the cookie carries a random id, the table keeps only its SHA-256. */
export const sessions = pgTable(
  "sessions",
  {
    idHash: text("id_hash").primaryKey(),
    userId: uuid("user_id").references(() => users.id, { onDelete: "cascade" }),
    data: text("data").notNull().default("{}"),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    createdAt: createdAt(),
    /** Shown on the user's own list of active sessions, so she can recognise and end one. */
    userAgent: text("user_agent"),
    ip: text("ip"),
  },
  (t) => [index("sessions_user_idx").on(t.userId), index("sessions_expires_idx").on(t.expiresAt)],
);

export const apiTokens = pgTable(
  "api_tokens",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** SHA-256 (hex) of the bearer token; the token itself is shown once and never stored. */
    tokenHash: text("token_hash").notNull(),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
  },
  (t) => [uniqueIndex("api_tokens_hash_key").on(t.tokenHash), index("api_tokens_user_idx").on(t.userId)],
);

export const patients = pgTable(
  "patients",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    displayName: text("display_name").notNull(),
    /** The patient's own account, when one was opened. */
    userId: uuid("user_id").references(() => users.id, { onDelete: "set null" }),
    createdBy: uuid("created_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    /** GDPR art. 17: images crypto-shredded, name replaced, account unlinked and disabled. */
    erasedAt: timestamp("erased_at", { withTimezone: true }),
    /** Identifiant permanent du patient: the hospital's own id (DICOM PatientID for this site). */
    ipp: text("ipp"),
    /** Identifiant national de santé (NIR, 15 characters with its key), validated before it is stored. */
    ins: text("ins"),
    /** ISO date `YYYY-MM-DD`. */
    birthDate: text("birth_date"),
    /** `F`, `M` or `U` (DICOM PatientSex F/M/O). */
    sex: text("sex"),
  },
  (t) => [
    uniqueIndex("patients_user_key").on(t.userId),
    uniqueIndex("patients_ipp_key").on(t.ipp),
    uniqueIndex("patients_ins_key").on(t.ins),
    index("patients_birth_date_idx").on(t.birthDate),
    // Lists page newest first from a patient's position (keyset): the directory walks this index backwards.
    index("patients_created_idx").on(t.createdAt, t.id),
  ],
);

export const examStatusEnum = pgEnum("exam_status", EXAM_STATUSES);

/**
 * A screening exam: the images of one visit (normally four views: R-CC, L-CC, R-MLO, L-MLO). DICOM files join their
 * exam by StudyInstanceUID; JPEG/PNG uploads choose one or start today's (which gets a generated UID).
 */
export const exams = pgTable(
  "exams",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    patientId: uuid("patient_id")
      .notNull()
      .references(() => patients.id, { onDelete: "restrict" }),
    /** ISO date `YYYY-MM-DD` (DICOM StudyDate, else the day it was started). */
    date: text("date").notNull(),
    accessionNumber: text("accession_number"),
    studyInstanceUid: text("study_instance_uid").notNull(),
    status: examStatusEnum("status").notNull().default("awaiting_first_reading"),
    createdBy: uuid("created_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    /** When the exam entered its current status (worklists sort by it). */
    statusSince: timestamp("status_since", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("exams_patient_study_key").on(t.patientId, t.studyInstanceUid),
    index("exams_patient_idx").on(t.patientId, t.date),
    index("exams_status_idx").on(t.status, t.statusSince),
  ],
);

export const careTeam = pgTable(
  "care_team",
  {
    doctorId: uuid("doctor_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    patientId: uuid("patient_id")
      .notNull()
      .references(() => patients.id, { onDelete: "cascade" }),
    addedAt: timestamp("added_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.doctorId, t.patientId] }), index("care_team_patient_idx").on(t.patientId)],
);

/** Current consent state, one row per (patient, purpose) once anything was recorded; no row means never given. */
export const consents = pgTable(
  "consents",
  {
    patientId: uuid("patient_id")
      .notNull()
      .references(() => patients.id, { onDelete: "cascade" }),
    purpose: purposeEnum("purpose").notNull(),
    granted: boolean("granted").notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    updatedBy: uuid("updated_by").references(() => users.id, { onDelete: "set null" }),
  },
  (t) => [primaryKey({ columns: [t.patientId, t.purpose] })],
);

/** Append-only history of every consent change (a trigger refuses UPDATE and DELETE). */
export const consentHistory = pgTable(
  "consent_history",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    patientId: uuid("patient_id")
      .notNull()
      .references(() => patients.id, { onDelete: "cascade" }),
    purpose: purposeEnum("purpose").notNull(),
    /** null: never given before. */
    fromGranted: boolean("from_granted"),
    toGranted: boolean("to_granted").notNull(),
    changedBy: uuid("changed_by").references(() => users.id, { onDelete: "set null" }),
    changedByRole: roleEnum("changed_by_role").notNull(),
    /** `patient` (portal or API), `intake` (recorded by a doctor from a signed form). */
    source: text("source").notNull(),
    at: timestamp("at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("consent_history_patient_idx").on(t.patientId, t.id)],
);

/**
 * The audit trail: append-only (triggers refuse UPDATE, DELETE and TRUNCATE) and hash-chained: `hash` is the
 * SHA-256 of `prev_hash` and the row's canonical JSON (see app/audit/chain.server.ts).
 */
export const auditEvents = pgTable(
  "audit_events",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    at: timestamp("at", { withTimezone: true }).notNull(),
    actorId: uuid("actor_id"),
    actorRole: text("actor_role"),
    actorName: text("actor_name"),
    action: text("action").notNull(),
    resourceType: text("resource_type"),
    resourceId: text("resource_id"),
    patientId: uuid("patient_id"),
    outcome: outcomeEnum("outcome").notNull(),
    reason: text("reason"),
    purpose: text("purpose"),
    requestId: text("request_id"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    prevHash: text("prev_hash").notNull(),
    hash: text("hash").notNull(),
  },
  (t) => [
    index("audit_events_at_idx").on(t.at),
    index("audit_events_actor_idx").on(t.actorId, t.id),
    index("audit_events_patient_idx").on(t.patientId, t.id),
    index("audit_events_action_idx").on(t.action, t.id),
    index("audit_events_outcome_idx").on(t.outcome, t.id),
  ],
);

const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => "bytea",
  fromDriver: (value) => Buffer.from(value),
});

/**
 * Mammograms. The bytes live encrypted in object storage under `storage_key`; this row holds metadata only: the
 * data key wrapped by a master key (`key_id`), the plaintext size and SHA-256, and the original file name encrypted
 * with the data key. Erasure deletes the wrapped key first (crypto-shredding), then the object, then marks the row.
 */
export const images = pgTable(
  "images",
  {
    id: uuid("id").primaryKey(),
    patientId: uuid("patient_id")
      .notNull()
      .references(() => patients.id, { onDelete: "restrict" }),
    uploadedBy: uuid("uploaded_by").references(() => users.id, { onDelete: "set null" }),
    contentType: text("content_type").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    sha256: text("sha256").notNull(),
    width: integer("width"),
    height: integer("height"),
    bitDepth: integer("bit_depth"),
    dicom: jsonb("dicom").$type<DicomMetadata>(),
    storageKey: text("storage_key").notNull(),
    ciphertextSize: bigint("ciphertext_size", { mode: "number" }).notNull(),
    formatVersion: integer("format_version").notNull(),
    keyId: text("key_id"),
    wrappedKey: bytea("wrapped_key"),
    /** The original file name, AES-256-GCM under the data key (gone with it at erasure). */
    encryptedName: bytea("encrypted_name"),
    createdAt: createdAt(),
    erasedAt: timestamp("erased_at", { withTimezone: true }),
    erasedBy: uuid("erased_by").references(() => users.id, { onDelete: "set null" }),
    objectDeletedAt: timestamp("object_deleted_at", { withTimezone: true }),
    /** The exam the image belongs to (null only for images stored before exams existed). */
    examId: uuid("exam_id").references(() => exams.id, { onDelete: "restrict" }),
    /** `R` or `L`. */
    laterality: text("laterality"),
    /** `CC`, `MLO`, `ML`, `LM`, `XCCL`, `SPOT`, `MAG`. */
    view: text("view"),
    /** DICOM identifiers (null for JPEG/PNG). */
    studyInstanceUid: text("study_instance_uid"),
    seriesInstanceUid: text("series_instance_uid"),
    sopInstanceUid: text("sop_instance_uid"),
    sopClassUid: text("sop_class_uid"),
    modality: text("modality"),
    /** (0008,0068) `FOR PRESENTATION` / `FOR PROCESSING`; the AI reads only the former. */
    presentationIntent: text("presentation_intent"),
    /**
     * How the identity check went when the file arrived: `missing:<fields>` (header fields absent, accepted with a
     * notice) or `override:<fields>` (a mismatch a doctor filed anyway; the reason is in the audit trail).
     */
    identityNotice: text("identity_notice"),
  },
  (t) => [
    index("images_patient_idx").on(t.patientId, t.createdAt),
    index("images_exam_idx").on(t.examId),
    index("images_sop_idx").on(t.sopInstanceUid),
    index("images_key_idx").on(t.keyId),
    uniqueIndex("images_storage_key").on(t.storageKey),
  ],
);

/**
 * AI readings. The probabilities and label are medical data about the patient: only the care team, the patient and
 * (pseudonymised) researchers see them. The heatmap is derived medical data: stored encrypted in the object store
 * like an image (own data key, wrapped like the image's).
 */
export const predictions = pgTable(
  "predictions",
  {
    id: uuid("id").primaryKey(),
    imageId: uuid("image_id")
      .notNull()
      .references(() => images.id, { onDelete: "restrict" }),
    patientId: uuid("patient_id")
      .notNull()
      .references(() => patients.id, { onDelete: "restrict" }),
    requestedBy: uuid("requested_by").references(() => users.id, { onDelete: "set null" }),
    label: text("label").notNull(),
    probability: doublePrecision("probability").notNull(),
    probabilities: jsonb("probabilities").$type<Record<string, number>>().notNull(),
    modelName: text("model_name").notNull(),
    modelVersion: text("model_version").notNull(),
    modelSha256: text("model_sha256").notNull(),
    modelClinical: boolean("model_clinical").notNull(),
    durationMs: doublePrecision("duration_ms").notNull(),
    heatmapKey: text("heatmap_key"),
    heatmapKeyId: text("heatmap_key_id"),
    heatmapWrappedKey: bytea("heatmap_wrapped_key"),
    createdAt: createdAt(),
    /** Set when the image is erased: the heatmap's key goes with it. */
    erasedAt: timestamp("erased_at", { withTimezone: true }),
  },
  (t) => [
    index("predictions_image_idx").on(t.imageId, t.createdAt),
    index("predictions_patient_idx").on(t.patientId, t.createdAt),
    index("predictions_created_idx").on(t.createdAt),
  ],
);

/**
 * The reconciliation queue: DICOM instances that arrived (STOW-RS or C-STORE) for a patient Nexus does not know.
 * Never filed automatically: a doctor attaches one to a patient (the upload path runs again, identity check
 * included) or rejects it. The bytes are in the object store encrypted like an image (`inbox/<id>`, own data key);
 * the header's identity (PatientID, name, birth date, sex), needed to decide, is sealed under the same key.
 */
export const dicomInbox = pgTable(
  "dicom_inbox",
  {
    id: uuid("id").primaryKey(),
    /** `pending`, `attached`, `rejected`. */
    status: text("status").notNull().default("pending"),
    /** `stow` or `dimse`. */
    source: text("source").notNull(),
    /** The DIMSE calling AE title, when it came that way. */
    callingAe: text("calling_ae"),
    receivedBy: uuid("received_by").references(() => users.id, { onDelete: "set null" }),
    receivedAt: timestamp("received_at", { withTimezone: true }).notNull().defaultNow(),
    studyInstanceUid: text("study_instance_uid"),
    seriesInstanceUid: text("series_instance_uid"),
    sopInstanceUid: text("sop_instance_uid"),
    sopClassUid: text("sop_class_uid"),
    modality: text("modality"),
    studyDate: text("study_date"),
    size: bigint("size", { mode: "number" }).notNull(),
    sha256: text("sha256").notNull(),
    storageKey: text("storage_key").notNull(),
    keyId: text("key_id"),
    wrappedKey: bytea("wrapped_key"),
    encryptedIdentity: bytea("encrypted_identity"),
    resolvedBy: uuid("resolved_by").references(() => users.id, { onDelete: "set null" }),
    resolvedAt: timestamp("resolved_at", { withTimezone: true }),
    /** Attached: the patient and the image the instance became. */
    patientId: uuid("patient_id").references(() => patients.id, { onDelete: "set null" }),
    imageId: uuid("image_id").references(() => images.id, { onDelete: "set null" }),
  },
  (t) => [index("dicom_inbox_status_idx").on(t.status, t.receivedAt)],
);

/** Kinds of reading in the double-reading workflow (app/reading/workflow.ts). */
export const readingKindEnum = pgEnum("reading_kind", ["first", "workup", "second", "arbitration"]);

/**
 * Radiologists' readings of an exam (ACR and density per breast, findings, conclusion): medical data, shown only to
 * their author until the exam's result is final. One reading per kind per exam (the unique index also settles two
 * readers submitting at once). `exam_status` is where that reading sent the exam.
 */
export const readings = pgTable(
  "readings",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    examId: uuid("exam_id")
      .notNull()
      .references(() => exams.id, { onDelete: "restrict" }),
    patientId: uuid("patient_id")
      .notNull()
      .references(() => patients.id, { onDelete: "restrict" }),
    kind: readingKindEnum("kind").notNull(),
    readerId: uuid("reader_id")
      .notNull()
      .references(() => users.id, { onDelete: "restrict" }),
    acrRight: integer("acr_right"),
    acrLeft: integer("acr_left"),
    densityRight: text("density_right"),
    densityLeft: text("density_left"),
    technicallyInadequate: boolean("technically_inadequate").notNull().default(false),
    findings: jsonb("findings").$type<Finding[]>().notNull().default([]),
    conclusion: text("conclusion"),
    examStatus: examStatusEnum("exam_status").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("readings_exam_kind_key").on(t.examId, t.kind),
    index("readings_exam_reader_idx").on(t.examId, t.readerId),
    index("readings_reader_idx").on(t.readerId, t.createdAt),
    index("readings_created_idx").on(t.createdAt),
  ],
);

/**
 * Results out (issue 17.4): structured reports waiting to be sent to the PACS (PACS_PUSH) once an exam is final. A
 * durable outbox: a row is written in the same transaction as the final reading, and survives a restart; it holds
 * identifiers only — the SR is rebuilt from the database at send time (app/results/outbox.server.ts), never stored.
 * Every attempt is in the audit trail (`result.push`).
 */
export const resultOutbox = pgTable(
  "result_outbox",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    examId: uuid("exam_id")
      .notNull()
      .references(() => exams.id, { onDelete: "restrict" }),
    patientId: uuid("patient_id")
      .notNull()
      .references(() => patients.id, { onDelete: "restrict" }),
    /** `reading_sr` (Comprehensive SR of the final reading) or `cad_sr` (Mammography CAD SR of the exam AI). */
    kind: text("kind").notNull(),
    /** `AET@host:port`, as PACS_PUSH named it when the row was queued. */
    destination: text("destination").notNull(),
    /** `pending`, `sent`, `failed` (gave up after PACS_PUSH_ATTEMPTS), `cancelled` (nothing left to send). */
    status: text("status").notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).notNull().defaultNow(),
    /** The SOP Instance UID of the last SR built for this row. */
    sopInstanceUid: text("sop_instance_uid"),
    /** The last attempt's outcome (a DIMSE status or a network error; never medical content). */
    lastError: text("last_error"),
    createdAt: createdAt(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    sentAt: timestamp("sent_at", { withTimezone: true }),
  },
  (t) => [
    uniqueIndex("result_outbox_exam_kind_key").on(t.examId, t.kind, t.destination),
    index("result_outbox_due_idx").on(t.status, t.nextAttemptAt),
  ],
);

export const GENESIS_HASH = "0".repeat(64);
