/**
 * Browser sessions. The cookie (HttpOnly, SameSite=Lax, Secure when the request came over HTTPS, signed with
 * SESSION_SECRET) carries a random id; the sessions table keeps only its SHA-256, the user and the expiry, so a
 * logout, an expiry or a disabled account ends the session on the server, not just in the browser.
 */
import { createHash, randomBytes } from "node:crypto";
import { createCookie, createSessionStorage, type SessionStorage } from "@remix-run/node";
import { eq, lt } from "drizzle-orm";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { sessions } from "../db/schema";
import type { Actor } from "./actor";
import { persistentSecret } from "./secrets.server";
import { loadActor } from "./users.server";

export const sessionSecret = persistentSecret(config.SESSION_SECRET, config.DATA_DIR, "session-secret");
const ttlSeconds = config.SESSION_TTL_HOURS * 3600;

interface SessionData {
  userId: string;
}

const hashId = (id: string) => createHash("sha256").update(id).digest("hex");

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
      await db.insert(sessions).values({
        idHash: hashId(id),
        userId: data.userId ?? null,
        data: JSON.stringify(data),
        expiresAt: expires ?? new Date(Date.now() + ttlSeconds * 1000),
      });
      return id;
    },
    async readData(id) {
      const [row] = await db.select().from(sessions).where(eq(sessions.idHash, hashId(id)));
      if (!row) return null;
      if (row.expiresAt.getTime() <= Date.now()) {
        await db.delete(sessions).where(eq(sessions.idHash, row.idHash));
        return null;
      }
      return JSON.parse(row.data) as SessionData;
    },
    async updateData(id, data, expires) {
      await db
        .update(sessions)
        .set({ data: JSON.stringify(data), userId: data.userId ?? null, ...(expires ? { expiresAt: expires } : {}) })
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

export async function actorFromSession(request: Request): Promise<Actor | null> {
  const session = await storageFor(request).getSession(request.headers.get("Cookie"));
  const userId = session.get("userId");
  return userId ? loadActor(userId) : null;
}

/** Starts a fresh session (a new id: no fixation) and returns its Set-Cookie header. */
export async function startSession(request: Request, userId: string): Promise<string> {
  const store = storageFor(request);
  const old = await store.getSession(request.headers.get("Cookie"));
  if (old.id) await store.destroySession(old);
  const session = await store.getSession();
  session.set("userId", userId);
  return store.commitSession(session, { expires: new Date(Date.now() + ttlSeconds * 1000) });
}

/** Ends the session on the server and returns the Set-Cookie header that clears the cookie. */
export async function endSession(request: Request): Promise<string> {
  const store = storageFor(request);
  const session = await store.getSession(request.headers.get("Cookie"));
  return store.destroySession(session);
}

export async function pruneExpiredSessions(): Promise<void> {
  await db.delete(sessions).where(lt(sessions.expiresAt, new Date()));
}
