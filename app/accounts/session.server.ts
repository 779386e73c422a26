/**
 * Browser sessions. The cookie (HttpOnly, SameSite=Lax, Secure when the request came over HTTPS, signed with
 * SESSION_SECRET) carries a random id; the sessions table keeps only its SHA-256, the user and the expiry, so a
 * logout, an expiry or a disabled account ends the session on the server, not just in the browser.
 */
import { createHash, randomBytes } from "node:crypto";
import { createCookie, createSessionStorage, type SessionStorage } from "@remix-run/node";
import { eq, lt, sql } from "drizzle-orm";
import { config } from "../config.server";
import { batchedReads } from "../db/batched-reads.server";
import { db } from "../db/db.server";
import { sessions } from "../db/schema";
import type { Actor } from "./actor";
import { persistentSecret } from "./secrets.server";
import { loadActor } from "./users.server";

export const sessionSecret = persistentSecret(config.SESSION_SECRET, config.DATA_DIR, "session-secret");
const ttlSeconds = config.SESSION_TTL_HOURS * 3600;

/**
 * A session in a restricted stage lets its user do one thing before anything else: choose a new password (after
 * logging in with a temporary one: stored with the session) or enrol a second factor (MFA_REQUIRED: derived, on
 * every request, from the account — so a policy change applies to sessions already open). Every other page sends
 * her there.
 */
export type SessionStage = "password_change" | "mfa_enrol";

interface SessionData {
  userId: string;
  stage?: "password_change";
  /** Signed in through the identity provider (Pro Santé Connect): strong authentication, no local code asked. */
  strong?: boolean;
  /** The OpenID Connect ID token of a provider sign-in, kept for the provider's logout (id_token_hint). */
  idToken?: string;
  /** Only to fill the row's columns (shown on the user's list of her sessions); not kept in `data`. */
  userAgent?: string | null;
  ip?: string | null;
}

const hashId = (id: string) => createHash("sha256").update(id).digest("hex");

/**
 * Read on every page request: built and planned once (a prepared statement), for all the sessions asked for in one
 * turn of the event loop (app/db/batched-reads.server.ts).
 */
const sessionsByIds = db
  .select()
  .from(sessions)
  .where(sql`${sessions.idHash} = any(${sql.placeholder("idHashes")}::text[])`)
  .prepare("nexus_sessions_by_ids");
const sessionRow = batchedReads(async (idHashes: string[]) =>
  (await sessionsByIds.execute({ idHashes })).map((row) => [row.idHash, row] as const),
);

function storage(secure: boolean): SessionStorage<SessionData> {
  const cookie = createCookie("nexus_session", {
    httpOnly: true,
    sameSite: "lax",
    secure,
    path: "/",
    secrets: [sessionSecret],
    maxAge: ttlSeconds,
  });
  return createSessionStorage<SessionData>({
    cookie,
    async createData(data, expires) {
      const id = randomBytes(32).toString("base64url");
      const { userAgent, ip, ...kept } = data;
      await db.insert(sessions).values({
        idHash: hashId(id),
        userId: data.userId ?? null,
        data: JSON.stringify(kept),
        expiresAt: expires ?? new Date(Date.now() + ttlSeconds * 1000),
        userAgent: userAgent?.slice(0, 300) ?? null,
        ip: ip ?? null,
      });
      return id;
    },
    async readData(id) {
      const row = await sessionRow(hashId(id));
      if (!row) return null;
      if (row.expiresAt.getTime() <= Date.now()) {
        await db.delete(sessions).where(eq(sessions.idHash, row.idHash));
        return null;
      }
      return JSON.parse(row.data) as SessionData;
    },
    async updateData(id, data, expires) {
      const { userAgent: _ua, ip: _ip, ...kept } = data;
      await db
        .update(sessions)
        .set({ data: JSON.stringify(kept), userId: data.userId ?? null, ...(expires ? { expiresAt: expires } : {}) })
        .where(eq(sessions.idHash, hashId(id)));
    },
    async deleteData(id) {
      await db.delete(sessions).where(eq(sessions.idHash, hashId(id)));
    },
  });
}

const secureStorage = storage(true);
const plainStorage = storage(false);

/** The Secure attribute is set when the request reached us over HTTPS (directly or through the trusted proxy). */
export function isHttps(request: Request): boolean {
  return new URL(request.url).protocol === "https:";
}

const storageFor = (request: Request) => (isHttps(request) ? secureStorage : plainStorage);

/** The signed-in actor of a full session (a session in a restricted stage has none: see `sessionState`). */
export async function actorFromSession(request: Request): Promise<Actor | null> {
  const state = await sessionState(request);
  return state && !state.stage ? state.actor : null;
}

export interface SessionState {
  actor: Actor;
  stage: SessionStage | null;
  /** SHA-256 of the session id (the sessions table's key): marks "this session" in the user's list. */
  idHash: string;
}

/**
 * The session behind a request, read once per request: the root loader and the route's own loader (or action) get
 * the same answer from one read of the session and its account (two round trips fewer per page). They get the same
 * Request object thanks to patches/@remix-run+server-runtime+2.17.5.patch (without it each loader got a copy, and
 * the session was read once per loader). Starting or ending the session within the request forgets it.
 */
const statesByRequest = new WeakMap<Request, Promise<SessionState | null>>();

export function sessionState(request: Request): Promise<SessionState | null> {
  let state = statesByRequest.get(request);
  if (state === undefined) {
    state = readSessionState(request);
    statesByRequest.set(request, state);
  }
  return state;
}

async function readSessionState(request: Request): Promise<SessionState | null> {
  const session = await storageFor(request).getSession(request.headers.get("Cookie"));
  const userId = session.get("userId");
  if (!userId || !session.id) return null;
  const actor = await loadActor(userId);
  if (!actor) return null;
  const stage = session.get("stage") ?? (actor.secondFactorMissing && !session.get("strong") ? "mfa_enrol" : null);
  return { actor, stage, idHash: hashId(session.id) };
}

/** The page a session in a restricted stage must finish first. */
export const STAGE_PAGES: Record<SessionStage, string> = {
  password_change: "/compte/nouveau-mot-de-passe",
  mfa_enrol: "/compte/double-authentification",
};

/**
 * Starts a fresh session (a new id: no fixation) and returns its Set-Cookie header. `stage` restricts it until the
 * user has chosen a new password or enrolled a second factor.
 */
export async function startSession(
  request: Request,
  userId: string,
  options: { stage?: "password_change"; ip?: string | null; idToken?: string; strong?: boolean } = {},
): Promise<string> {
  statesByRequest.delete(request);
  const store = storageFor(request);
  const old = await store.getSession(request.headers.get("Cookie"));
  if (old.id) await store.destroySession(old);
  const session = await store.getSession();
  session.set("userId", userId);
  if (options.stage) session.set("stage", options.stage);
  if (options.idToken) session.set("idToken", options.idToken);
  if (options.strong) session.set("strong", true);
  session.set("userAgent", request.headers.get("User-Agent"));
  session.set("ip", options.ip ?? null);
  return store.commitSession(session, { expires: new Date(Date.now() + ttlSeconds * 1000) });
}

/**
 * Ends the session on the server; returns the Set-Cookie header that clears the cookie and, for a provider sign-in,
 * the ID token to hand to the provider's logout.
 */
export async function endSession(request: Request): Promise<{ cookie: string; idToken: string | undefined }> {
  statesByRequest.delete(request);
  const store = storageFor(request);
  const session = await store.getSession(request.headers.get("Cookie"));
  const idToken = session.get("idToken");
  return { cookie: await store.destroySession(session), idToken };
}

export async function pruneExpiredSessions(): Promise<void> {
  await db.delete(sessions).where(lt(sessions.expiresAt, new Date()));
}
