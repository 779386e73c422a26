/**
 * Credentials that end and a second factor that holds (issue 16), against the running server:
 * TOTP enrolment and sign-in by API and by the pages, replay and throttling of codes, recovery codes, temporary
 * passwords that work once, password changes and resets that end every other session and token, per-address
 * throttling that a stranger cannot turn into a lock-out, and the CSRF token rotated at sign-in.
 */
import { generate } from "otplib";
import { describe, expect, it } from "vitest";
import { activateAccount, createAccount, uniqueEmail } from "./helpers/fixtures";
import { api, BrowserSession, tokenFor } from "./helpers/http";

/** The code of the step `offset` periods from now (the server accepts one step either side of its clock). */
const codeAt = (secret: string, offset = 0) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + offset * 30 });

async function enrolByApi(token: string): Promise<string> {
  const begun = await api<{ secret: string; otpauthUrl: string }>("POST", "/api/v1/me/totp", { token });
  expect(begun.status).toBe(201);
  expect(begun.body.otpauthUrl).toMatch(/^otpauth:\/\/totp\/Nexus:.+secret=/);
  const confirmed = await api("POST", "/api/v1/me/totp/confirm", { token, json: { otp: await codeAt(begun.body.secret) } });
  expect(confirmed.status).toBe(204);
  return begun.body.secret;
}

describe("second factor (TOTP) through the API", () => {
  it("asks for a code once it is on, accepts a code once, and refuses wrong ones the same way", async () => {
    const { email, password } = await createAccount("doctor");
    const secret = await enrolByApi(await tokenFor(email, password));

    const without = await api("POST", "/api/v1/tokens", { json: { email, password } });
    expect(without.status).toBe(401);
    expect(without.body.error.code).toBe("otp_required");

    // The confirmation used this period's code; the next period's is accepted once.
    const otp = await codeAt(secret, 1);
    const ok = await api("POST", "/api/v1/tokens", { json: { email, password, otp } });
    expect(ok.status).toBe(201);
    const replay = await api("POST", "/api/v1/tokens", { json: { email, password, otp } });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe("invalid_otp");
    const earlier = await api("POST", "/api/v1/tokens", { json: { email, password, otp: await codeAt(secret, -1) } });
    expect(earlier.status).toBe(401);
    expect(earlier.body.error.message).toBe(replay.body.error.message);
  });

  it("throttles wrong codes with 429 and Retry-After, and refuses a confirmation with a wrong code", async () => {
    const { email, password } = await createAccount("doctor");
    const token = await tokenFor(email, password);
    const begun = await api<{ secret: string }>("POST", "/api/v1/me/totp", { token });
    const wrong = await api("POST", "/api/v1/me/totp/confirm", { token, json: { otp: "000000" === (await codeAt(begun.body.secret)) ? "111111" : "000000" } });
    expect(wrong.status).toBe(401);
    const malformed = await api("POST", "/api/v1/me/totp/confirm", { token, json: { otp: "12ab" } });
    expect(malformed.status).toBe(400);
    await api("POST", "/api/v1/me/totp/confirm", { token, json: { otp: await codeAt(begun.body.secret) } });

    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await api("POST", "/api/v1/tokens", { json: { email, password, otp: String(100000 + i) } });
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
    }
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses.at(-1)).toBe(429);
  });
});

describe("second factor in the browser (no JavaScript)", () => {
  it("enrols with a QR code, signs in with a code, then with a single-use recovery code", async () => {
    const { email, password } = await createAccount("researcher");
    const session = await BrowserSession.login(email, password);
    const begun = await session.post("/compte/double-authentification", { intent: "begin" }, { csrf: await session.csrf("/compte/double-authentification") });
    expect(begun.status).toBe(200);
    expect(begun.html).toContain("<svg");
    const secret = /data-testid="totp-secret"[^>]*>([A-Z2-7]+)</.exec(begun.html)![1]!;
    const confirmed = await session.post(
      "/compte/double-authentification",
      { intent: "confirm", code: await codeAt(secret) },
      { csrf: await session.csrf("/compte/double-authentification") },
    );
    expect(confirmed.status).toBe(200);
    const codes = [...confirmed.html.matchAll(/<li[^>]*>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})<\/li>/g)].map((m) => m[1]!);
    expect(codes).toHaveLength(10);

    // A password alone no longer opens a session: the code page comes next.
    const next = new BrowserSession();
    const first = await next.post("/connexion", { email, password });
    expect(first.status).toBe(302);
    expect(first.headers.get("Location")).toBe("/connexion/code");
    expect(next.cookies.has("nexus_session")).toBe(false);
    expect((await next.get("/compte")).status).toBe(302);
    const wrong = await next.post("/connexion/code", { code: "999999" === (await codeAt(secret, 1)) ? "888888" : "999999" }, { csrf: await next.csrf("/connexion/code") });
    expect(wrong.status).toBe(401);
    const done = await next.post("/connexion/code", { code: await codeAt(secret, 1) }, { csrf: await next.csrf("/connexion/code") });
    expect(done.status).toBe(302);
    expect((await next.get("/compte")).status).toBe(200);

    // Without the phone: a recovery code works once.
    const lost = new BrowserSession();
    await lost.post("/connexion", { email, password });
    const recovered = await lost.post("/connexion/code", { code: codes[0]! }, { csrf: await lost.csrf("/connexion/code") });
    expect(recovered.status).toBe(302);
    const again = new BrowserSession();
    await again.post("/connexion", { email, password });
    const reused = await again.post("/connexion/code", { code: codes[0]! }, { csrf: await again.csrf("/connexion/code") });
    expect(reused.status).toBe(401);
    expect(again.cookies.has("nexus_session")).toBe(false);

    // Turning it off takes the password and a code.
    const csrf = () => next.csrf("/compte/double-authentification");
    const badPassword = await next.post("/compte/double-authentification", { intent: "disable", password: "wrong", code: codes[1]! }, { csrf: await csrf() });
    expect(badPassword.status).toBe(400);
    const off = await next.post("/compte/double-authentification", { intent: "disable", password, code: codes[1]! }, { csrf: await csrf() });
    expect(off.status).toBe(200);
    expect(off.html).toContain("La double authentification est désactivée.");
    const plain = new BrowserSession();
    expect((await plain.post("/connexion", { email, password })).headers.get("Location")).toBe("/");
  });

  it("sends the code page back to the login page without a pending sign-in", async () => {
    const res = await new BrowserSession().get("/connexion/code");
    expect(res.status).toBe(302);
    expect(res.headers.get("Location")).toBe("/connexion");
  });
});

describe("credentials that end", () => {
  it("a password change ends the user's other sessions and every API token, and keeps the one that changed it", async () => {
    const { email, password } = await createAccount("doctor");
    const here = await BrowserSession.login(email, password);
    const elsewhere = await BrowserSession.login(email, password);
    const token = await tokenFor(email, password);
    expect((await elsewhere.get("/compte")).status).toBe(200);

    const changed = await here.post("/compte", { current: password, next: "a-brand-new-password" });
    expect(changed.status).toBe(200);
    expect((await here.get("/compte")).status).toBe(200);
    expect((await elsewhere.get("/compte")).status).toBe(302);
    expect((await api("GET", "/api/v1/me", { token })).status).toBe(401);
  });

  it("a temporary password works once, and only together with the new password on the API", async () => {
    const doctor = await tokenFor("doctor@demo.nexus");
    const email = uniqueEmail("tmp");
    const created = await api("POST", "/api/v1/patients", { token: doctor, json: { displayName: "Temporaire", email } });
    const temporary = created.body.account.temporaryPassword as string;
    const refused = await api("POST", "/api/v1/tokens", { json: { email, password: temporary } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("password_change_required");
    const mine = await activateAccount(email, temporary);
    expect((await api("POST", "/api/v1/tokens", { json: { email, password: temporary } })).status).toBe(401);
    expect((await api("POST", "/api/v1/tokens", { json: { email, password: mine } })).status).toBe(201);
  });

  it("an admin's reset ends the user's sessions and tokens and hands out a temporary password; edits are audited", async () => {
    const { email, password } = await createAccount("researcher");
    const user = await BrowserSession.login(email, password);
    const token = await tokenFor(email, password);
    const me = await api("GET", "/api/v1/me", { token });
    const admin = await BrowserSession.login("admin@demo.nexus");
    const reset = await admin.post("/admin/comptes", { intent: "reset", userId: me.body.id, email }, { csrf: await admin.csrf("/admin/comptes") });
    expect(reset.status).toBe(200);
    const temporary = /data-testid="temporary-password"[^>]*>([^<]+)</.exec(reset.html)![1]!;
    expect((await user.get("/compte")).status).toBe(302);
    expect((await api("GET", "/api/v1/me", { token })).status).toBe(401);
    expect((await api("POST", "/api/v1/tokens", { json: { email, password } })).status).toBe(401);
    const first = await BrowserSession.login(email, temporary);
    expect((await first.get("/compte")).headers.get("Location")).toBe("/compte/nouveau-mot-de-passe");

    const edited = await admin.post(
      "/admin/comptes",
      { intent: "update", userId: me.body.id, name: "Nouveau Nom", role: "doctor" },
      { csrf: await admin.csrf("/admin/comptes") },
    );
    expect(edited.status).toBe(200);
    const adminToken = await tokenFor("admin@demo.nexus");
    const audit = await api("GET", `/api/v1/audit?action=account.update&limit=5`, { token: adminToken });
    expect(audit.body.events.some((e: { resourceId: string; outcome: string }) => e.resourceId === me.body.id && e.outcome === "allowed")).toBe(true);
    const self = await api("GET", "/api/v1/me", { token: adminToken });
    const own = await admin.post("/admin/comptes", { intent: "update", userId: self.body.id, name: "Admin", role: "doctor" }, { csrf: await admin.csrf("/admin/comptes") });
    expect(own.status).toBe(403);
  });

  it("lists one's sessions and tokens and ends another session", async () => {
    const { email, password } = await createAccount("doctor");
    const here = await BrowserSession.login(email, password);
    const other = await BrowserSession.login(email, password, { "User-Agent": "Autre-Navigateur/1.0" });
    await tokenFor(email, password);
    const page = await here.get("/compte");
    expect(page.html).toContain("Autre-Navigateur/1.0");
    const ids = [...page.html.matchAll(/name="id" value="([0-9a-f]{64})"/g)].map((m) => m[1]!);
    expect(ids).toHaveLength(1);
    expect(page.html).toMatch(/name="intent" value="end-token"/);
    const ended = await here.post("/compte", { intent: "end-session", id: ids[0]! });
    expect(ended.status).toBe(200);
    expect((await other.get("/compte")).status).toBe(302);
    expect((await here.get("/compte")).status).toBe(200);
    // Another user's session id is not hers to end.
    const stranger = await BrowserSession.login("doctor@demo.nexus");
    const refused = await stranger.post("/compte", { intent: "end-session", id: "a".repeat(64) });
    expect(refused.status).toBe(404);
  });
});

describe("sign-in throttling and CSRF rotation", () => {
  it("locks a stranger's address, not the owner's", async () => {
    const { email, password } = await createAccount("doctor");
    const from = (ip: string, pw: string) => api("POST", "/api/v1/tokens", { json: { email, password: pw }, headers: { "X-Forwarded-For": ip } });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await from("203.0.113.66", "wrong-password")).status);
    expect(statuses.at(-1)).toBe(429);
    expect((await from("203.0.113.66", password)).status).toBe(429);
    expect((await from("198.51.100.7", password)).status).toBe(201);
  });

  it("rotates the CSRF token at sign-in", async () => {
    const session = new BrowserSession();
    await session.get("/connexion");
    const before = session.cookies.get("nexus_csrf");
    expect(before).toBeTruthy();
    const res = await session.post("/connexion", { email: "doctor@demo.nexus", password: "nexus-demo-2026" });
    expect(res.status).toBe(302);
    expect(session.cookies.get("nexus_csrf")).toBeTruthy();
    expect(session.cookies.get("nexus_csrf")).not.toBe(before);
  });
});
