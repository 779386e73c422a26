/** API bearer tokens: random, shown once, stored as SHA-256, with an expiry; revocable by their owner. */
import { createHash, randomBytes } from "node:crypto";
import { and, eq, gt, isNull, sql } from "drizzle-orm";
import { config } from "../config.server";
import { batchedReads } from "../db/batched-reads.server";
import { db } from "../db/db.server";
import { apiTokens, patients, users } from "../db/schema";
import type { Actor } from "./actor";
import { ACTOR_COLUMNS, actorOf } from "./users.server";

const TOKEN_PREFIX = "nxs_";
const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

export async function issueToken(userId: string, ttlHours = config.API_TOKEN_TTL_HOURS): Promise<{ id: string; token: string; expiresAt: Date }> {
  const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
  const expiresAt = new Date(Date.now() + ttlHours * 3600_000);
  const [row] = await db
    .insert(apiTokens)
    .values({ userId, tokenHash: hashToken(token), expiresAt })
    .returning({ id: apiTokens.id });
  return { id: row!.id, token, expiresAt };
}

export function bearerToken(request: Request): string | null {
  const header = request.headers.get("Authorization");
  const match = header?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1] ?? null;
}

/**
 * Read on every API request: built and planned once (a prepared statement), for all the tokens asked for in one turn
 * of the event loop (app/db/batched-reads.server.ts).
 */
const actorsByTokenHashes = db
  .select({ tokenHash: apiTokens.tokenHash, tokenId: apiTokens.id, ...ACTOR_COLUMNS })
  .from(apiTokens)
  .innerJoin(users, eq(users.id, apiTokens.userId))
  .leftJoin(patients, eq(patients.userId, users.id))
  .where(
    and(
      sql`${apiTokens.tokenHash} = any(${sql.placeholder("tokenHashes")}::text[])`,
      isNull(apiTokens.revokedAt),
      gt(apiTokens.expiresAt, sql.placeholder("now")),
      isNull(users.disabledAt),
    ),
  )
  .prepare("nexus_actors_by_token_hashes");

const liveTokenRow = batchedReads(async (tokenHashes: string[]) =>
  (await actorsByTokenHashes.execute({ tokenHashes, now: new Date() })).map((row) => [row.tokenHash, row] as const),
);

/** The actor and token id behind a live (unexpired, unrevoked) token of an enabled account, or null. */
export async function actorFromToken(token: string): Promise<{ actor: Actor; tokenId: string } | null> {
  if (!token.startsWith(TOKEN_PREFIX)) return null;
  // One round trip (issue 15): the live token, its enabled account and the account's patient record, read together
  // on every request — no cache, so a revocation, a logout or a disabled account holds from the very next request.
  const row = await liveTokenRow(hashToken(token));
  if (!row) return null;
  return { actor: actorOf(row), tokenId: row.tokenId };
}

export async function revokeToken(tokenId: string): Promise<void> {
  await db.update(apiTokens).set({ revokedAt: new Date() }).where(eq(apiTokens.id, tokenId));
}
