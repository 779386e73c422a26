/**
 * Configuration, read and validated once at start-up. Every variable is documented in the README's
 * configuration table; a wrong value stops the process with a message naming it.
 */
import { z } from "zod";

const bool = z
  .enum(["1", "0", "true", "false", "yes", "no", ""])
  .optional()
  .transform((v) => v === "1" || v === "true" || v === "yes");

/** A switch that is on unless set to 0/false/no. */
const onByDefault = z
  .enum(["1", "0", "true", "false", "yes", "no", ""])
  .optional()
  .transform((v) => !(v === "0" || v === "false" || v === "no"));

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const schema = z.object({
  NODE_ENV: z.string().default("production"),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default("127.0.0.1"),
  DATABASE_URL: z.string().url().optional().or(z.literal("").transform(() => undefined)),
  DATA_DIR: z.string().default("./data"),
  NEXUS_MIGRATE: onByDefault,
  SESSION_SECRET: z.string().min(32, "SESSION_SECRET must be at least 32 characters").optional(),
  PSEUDONYM_SECRET: z.string().min(32, "PSEUDONYM_SECRET must be at least 32 characters").optional(),
  SESSION_TTL_HOURS: positiveInt(8),
  API_TOKEN_TTL_HOURS: positiveInt(12),
  LOGIN_MAX_FAILURES: positiveInt(5),
  LOGIN_LOCK_MINUTES: positiveInt(15),
  LOGIN_GLOBAL_MAX_FAILURES: positiveInt(50),
  MFA_REQUIRED: z.enum(["staff", "all", "none"], { message: "MFA_REQUIRED must be staff, all or none" }).optional(),
  OIDC_ISSUER: z.string().url("OIDC_ISSUER must be the identity provider's issuer URL").optional(),
  OIDC_CLIENT_ID: z.string().min(1).optional(),
  OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  OIDC_SCOPES: z.string().default("openid"),
  OIDC_ID_CLAIM: z.string().min(1).default("sub"),
  OIDC_LABEL: z.string().min(1).default("Pro Santé Connect"),
  OIDC_ALLOW_HTTP: bool,
  NEXUS_DEMO: bool,
  NEXUS_DEMO_PASSWORD: z.string().min(8).default("nexus-demo-2026"),
  TRUST_PROXY: z.string().default("loopback"),
  PUBLIC_URL: z.string().url().optional(),
  AUDIT_RETENTION_DAYS: z.coerce
    .number({ message: "AUDIT_RETENTION_DAYS must be a whole number of days" })
    .int("AUDIT_RETENTION_DAYS must be a whole number of days")
    .min(1, "AUDIT_RETENTION_DAYS must be at least 1")
    .max(36_500, "AUDIT_RETENTION_DAYS must be at most 36500 (100 years)")
    .default(3650),
  AUDIT_ARCHIVE_DIR: z.string().min(1).optional(),
  // Image decoding (app/imaging/decode-pool.server.ts): worker threads, waiting jobs, pixel budget, time limit.
  DECODE_WORKERS: z.coerce.number().int().min(1).max(64).optional(),
  DECODE_QUEUE_LIMIT: z.coerce.number().int().min(0).max(10_000).default(16),
  DECODE_PIXEL_LIMIT_MP: z.coerce.number().positive().max(1000).default(60),
  DECODE_TIMEOUT_SECONDS: z.coerce.number().positive().max(3600).default(30),
  /** L1/L2 disagreement: `recall` (the French programme) or `arbitration` (a third reader decides). */
  READING_DISAGREEMENT: z
    .enum(["recall", "arbitration"], { message: "READING_DISAGREEMENT must be recall or arbitration" })
    .default("recall"),
  /** Who signs the result letters and whom the woman calls. */
  LETTER_CENTRE_NAME: z.string().min(1).default("Centre de dépistage Nexus"),
  LETTER_CENTRE_PHONE: z.string().min(1).default("01 00 00 00 00"),
  /**
   * When readers see AI results on an exam: `after_reading` (default: each reader only after submitting her own
   * reading) or `concurrent` (at once). Patients never see them.
   */
  AI_DISPLAY: z.enum(["after_reading", "concurrent"], { message: "AI_DISPLAY must be after_reading or concurrent" }).default("after_reading"),
  /** Lifetime of a machine account's (modality, PACS) bearer token. */
  MACHINE_TOKEN_TTL_DAYS: positiveInt(365),
  /** DIMSE: the C-STORE/C-ECHO SCP listens on this port when set (AE title NEXUS). */
  DICOM_PORT: z.coerce.number().int().min(0).max(65535).optional().or(z.literal("").transform(() => undefined)),
  DICOM_HOST: z.string().default("127.0.0.1"),
  DICOM_AE_TITLE: z.string().regex(/^[\x20-\x5b\x5d-\x7e]{1,16}$/, "DICOM_AE_TITLE: 1 to 16 ASCII characters").default("NEXUS"),
  /** Calling AE titles accepted (comma-separated); unset: any calling AE title, from a loopback address only. */
  DICOM_ALLOWED_AETS: z.string().optional(),
  /** Simultaneous DIMSE associations. */
  DICOM_MAX_ASSOCIATIONS: positiveInt(8),
  /**
   * Results out (issue 17.4): once an exam is final, its reading SR (and the exam AI's CAD SR) go by C-STORE to this
   * PACS, `AET@host:port`, calling as DICOM_AE_TITLE. Unset: nothing is pushed.
   */
  PACS_PUSH: z
    .string()
    .regex(/^[\x20-\x5b\x5d-\x7e]{1,16}@[^\s@:]+:\d{1,5}$/, "PACS_PUSH must be AET@host:port (e.g. PACS@10.0.0.5:104)")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  /** Attempts per report before giving up (the outbox row is then `failed`). */
  PACS_PUSH_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
  /** First back-off delay, doubled after each failed attempt (capped at one hour). */
  PACS_PUSH_BACKOFF_MS: z.coerce.number().int().min(10).max(3_600_000).default(30_000),
  /** How often the push worker looks for due reports. */
  PACS_PUSH_POLL_MS: z.coerce.number().int().min(50).max(3_600_000).default(5_000),
  /** FHIR Patient.identifier system of the IPP (the site's assigning authority, e.g. `urn:oid:…`). */
  FHIR_IPP_SYSTEM: z.string().min(1).default("urn:nexus:ipp"),
  // Issue 15 / 11.5: how long a PostgreSQL statement may wait for a lock (the audit chain's included) and run, before
  // the request is answered 503 with Retry-After instead of waiting forever.
  DB_LOCK_TIMEOUT_MS: positiveInt(5_000),
  DB_STATEMENT_TIMEOUT_MS: positiveInt(60_000),
  // Issue 11.6: signed checkpoints of the audit chain's head, outside the database.
  AUDIT_CHECKPOINT_KEY: z.string().min(32, "AUDIT_CHECKPOINT_KEY must be at least 32 characters").optional(),
  AUDIT_CHECKPOINT_SECONDS: positiveInt(60),
});

export type Config = Omit<z.infer<typeof schema>, "MFA_REQUIRED"> & {
  /** Who must have a second factor: `staff` by default, `none` on the demo unless set. */
  MFA_REQUIRED: "staff" | "all" | "none";
  /** Embedded PGlite (no DATABASE_URL): the zero-configuration default. */
  embedded: boolean;
  /** Demo accounts are seeded on the embedded default or when NEXUS_DEMO=1. */
  demo: boolean;
};

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  - ${i.path.join(".")}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join("\n")}`);
  }
  const embedded = !parsed.data.DATABASE_URL;
  const demo = embedded || parsed.data.NEXUS_DEMO;
  if (Boolean(parsed.data.OIDC_ISSUER) !== Boolean(parsed.data.OIDC_CLIENT_ID)) {
    throw new Error("Invalid configuration:\n  - OIDC_ISSUER and OIDC_CLIENT_ID go together (OpenID Connect sign-in)");
  }
  return { ...parsed.data, embedded, demo, MFA_REQUIRED: parsed.data.MFA_REQUIRED ?? (demo ? "none" : "staff") };
}

export const config = readConfig();
