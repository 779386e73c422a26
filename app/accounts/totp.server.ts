/**
 * The second factor: TOTP (RFC 6238: SHA-1, 6 digits, 30 s) with otplib, and ten single-use recovery codes.
 * - The secret is sealed (AES-256-GCM, key derived from the session secret) before it reaches the database.
 * - A code is accepted once: the accepted time step is stored and any code of that step or earlier is refused.
 * - Wrong codes are throttled per user (`otp:<user id>` in login_throttle): after OTP_MAX_FAILURES the account's
 *   second factor is locked for LOGIN_LOCK_MINUTES (429 with Retry-After).
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, randomInt } from "node:crypto";
import { and, eq, isNull } from "drizzle-orm";
import { generateSecret, generateURI, verify } from "otplib";
import QRCode from "qrcode";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { recoveryCodes, users } from "../db/schema";
import { clearFailures, lockedFor, registerFailure } from "./throttle.server";
import { sessionSecret } from "./session.server";

const ISSUER = "Nexus";
const OTP_MAX_FAILURES = 5;
const sealKey = Buffer.from(hkdfSync("sha256", sessionSecret, "nexus", "totp-secret-v1", 32));

function seal(secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", sealKey, iv);
  const body = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return ["v1", iv.toString("base64url"), body.toString("base64url"), cipher.getAuthTag().toString("base64url")].join(".");
}

function unseal(sealed: string): string {
  const [version, iv, body, tag] = sealed.split(".");
  if (version !== "v1" || !iv || !body || !tag) throw new Error("unreadable TOTP secret");
  const decipher = createDecipheriv("aes-256-gcm", sealKey, Buffer.from(iv, "base64url"));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
}

const hashCode = (code: string) => createHash("sha256").update(normaliseRecoveryCode(code)).digest("hex");
const normaliseRecoveryCode = (code: string) => code.replace(/[\s-]/g, "").toLowerCase();

export interface Enrolment {
  secret: string;
  otpauthUrl: string;
  /** The otpauth URL as an SVG QR code (server-rendered: the page needs no JavaScript). */
  qrSvg: string;
}

/** Starts (or restarts) enrolment: a new secret, not active until confirmed with a code. */
export async function beginEnrolment(userId: string, email: string): Promise<Enrolment> {
  const [user] = await db.select({ enabled: users.totpEnabledAt }).from(users).where(eq(users.id, userId));
  if (user?.enabled) throw new TotpError("already_enabled");
  const secret = generateSecret();
  await db.update(users).set({ totpSecret: seal(secret), totpLastStep: null, updatedAt: new Date() }).where(eq(users.id, userId));
  return enrolmentOf(secret, email);
}

async function enrolmentOf(secret: string, email: string): Promise<Enrolment> {
  const otpauthUrl = generateURI({ issuer: ISSUER, label: email, secret });
  const qrSvg = await QRCode.toString(otpauthUrl, { type: "svg", errorCorrectionLevel: "M", margin: 2 });
  return { secret, otpauthUrl, qrSvg };
}

/** The pending (unconfirmed) enrolment, to show the same QR code again after a wrong confirmation code. */
export async function pendingEnrolment(userId: string, email: string): Promise<Enrolment | null> {
  const [user] = await db.select({ secret: users.totpSecret, enabled: users.totpEnabledAt }).from(users).where(eq(users.id, userId));
  if (!user?.secret || user.enabled) return null;
  return enrolmentOf(unseal(user.secret), email);
}

export type TotpFailure = "invalid_code" | "throttled" | "not_enrolled" | "already_enabled";

export class TotpError extends Error {
  constructor(
    readonly reason: TotpFailure,
    readonly retryAfterSeconds = 0,
  ) {
    super(reason);
  }
}

export const TOTP_MESSAGES: Record<TotpFailure, string> = {
  invalid_code: "Code incorrect ou déjà utilisé.",
  throttled: "Trop de codes incorrects. Réessayez dans quelques minutes.",
  not_enrolled: "Aucune double authentification en cours d'activation.",
  already_enabled: "La double authentification est déjà active.",
};

/**
 * Checks a 6-digit code (or, when `allowRecovery`, a recovery code) for a user with a secret; throws TotpError.
 * On success the time step is stored (replay refused) or the recovery code is marked used.
 */
export async function verifySecondFactor(userId: string, code: string, { allowRecovery = true } = {}): Promise<"totp" | "recovery"> {
  const key = `otp:${userId}`;
  const locked = await lockedFor(key);
  if (locked > 0) throw new TotpError("throttled", locked);
  const [user] = await db
    .select({ secret: users.totpSecret, lastStep: users.totpLastStep })
    .from(users)
    .where(eq(users.id, userId));
  if (!user?.secret) throw new TotpError("not_enrolled");
  const trimmed = code.trim();
  if (/^\d{6}$/.test(trimmed)) {
    const result = await verify({
      secret: unseal(user.secret),
      token: trimmed,
      epochTolerance: 30,
      ...(user.lastStep !== null ? { afterTimeStep: user.lastStep } : {}),
    }).catch(() => ({ valid: false as const }));
    if (result.valid && "timeStep" in result) {
      // Conditional update: two concurrent requests with the same code cannot both pass.
      const updated = await db
        .update(users)
        .set({ totpLastStep: result.timeStep })
        .where(
          and(
            eq(users.id, userId),
            user.lastStep === null ? isNull(users.totpLastStep) : eq(users.totpLastStep, user.lastStep),
          ),
        )
        .returning({ id: users.id });
      if (updated.length === 1) {
        await clearFailures(key);
        return "totp";
      }
    }
  } else if (allowRecovery && normaliseRecoveryCode(trimmed).length >= 10) {
    const used = await db
      .update(recoveryCodes)
      .set({ usedAt: new Date() })
      .where(and(eq(recoveryCodes.userId, userId), eq(recoveryCodes.codeHash, hashCode(trimmed)), isNull(recoveryCodes.usedAt)))
      .returning({ id: recoveryCodes.id });
    if (used.length === 1) {
      await clearFailures(key);
      return "recovery";
    }
  }
  const lock = await registerFailure(key, OTP_MAX_FAILURES, config.LOGIN_LOCK_MINUTES);
  throw new TotpError(lock > 0 ? "throttled" : "invalid_code", lock);
}

/** Ten recovery codes like `k7pq-3xzt-m9wd`: shown once, stored hashed; any earlier ones are void. */
async function newRecoveryCodes(userId: string, tx: Pick<typeof db, "insert" | "delete"> = db): Promise<string[]> {
  const alphabet = "abcdefghjkmnpqrstuvwxyz23456789";
  const codes = Array.from({ length: 10 }, () =>
    Array.from({ length: 3 }, () => Array.from({ length: 4 }, () => alphabet[randomInt(alphabet.length)]).join("")).join("-"),
  );
  await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  await tx.insert(recoveryCodes).values(codes.map((c) => ({ userId, codeHash: hashCode(c) })));
  return codes;
}

/** Confirms the pending secret with a code: the second factor is on, and ten recovery codes are returned once. */
export async function confirmEnrolment(userId: string, code: string): Promise<string[]> {
  const [user] = await db.select({ secret: users.totpSecret, enabled: users.totpEnabledAt }).from(users).where(eq(users.id, userId));
  if (!user?.secret) throw new TotpError("not_enrolled");
  if (user.enabled) throw new TotpError("already_enabled");
  await verifySecondFactor(userId, code, { allowRecovery: false });
  return db.transaction(async (tx) => {
    await tx.update(users).set({ totpEnabledAt: new Date(), updatedAt: new Date() }).where(eq(users.id, userId));
    return newRecoveryCodes(userId, tx);
  });
}

/** Turns the second factor off (the caller checked the password and a code). */
export async function disableTotp(userId: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx
      .update(users)
      .set({ totpSecret: null, totpEnabledAt: null, totpLastStep: null, updatedAt: new Date() })
      .where(eq(users.id, userId));
    await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  });
}

export async function totpState(userId: string): Promise<{ enabled: boolean; recoveryCodesLeft: number }> {
  const [user] = await db.select({ enabled: users.totpEnabledAt }).from(users).where(eq(users.id, userId));
  const codes = await db
    .select({ id: recoveryCodes.id })
    .from(recoveryCodes)
    .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt)));
  return { enabled: Boolean(user?.enabled), recoveryCodesLeft: codes.length };
}

export { mfaRequiredFor } from "./mfa-policy.server";
