/** Password hashing with argon2id at (at least) OWASP's minimum: m = 19 MiB, t = 2, p = 1. */
import argon2 from "argon2";

export const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
export { MIN_PASSWORD_LENGTH } from "./password-policy";

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, ARGON2_OPTIONS);
}

/** A hash of nothing, verified when the e-mail is unknown so both paths cost the same time. */
const dummyHash = hashPassword("nexus-timing-equaliser-not-a-password");

export async function verifyPassword(hash: string | null, password: string): Promise<boolean> {
  try {
    const matches = await argon2.verify(hash ?? (await dummyHash), password);
    return matches && hash !== null;
  } catch {
    return false;
  }
}
