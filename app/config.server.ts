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
});

export type Config = z.infer<typeof schema> & {
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
  return { ...parsed.data, embedded, demo: embedded || parsed.data.NEXUS_DEMO };
}

export const config = readConfig();
