/**
 * Pro Santé Connect-style sign-in (OpenID Connect) against a real provider: the npm `oidc-provider` on loopback,
 * and a Nexus server of this file's own configured for it. Accounts are linked by an admin to the provider's
 * subject; every refusal (unlinked identity, wrong state, replayed code, forged ID tokens) lands back on the login
 * page with a message and a denied audit event, and never opens a session.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { generate } from "otplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { hasChromium, launchChromium } from "./helpers/browser";
import { api, BrowserSession } from "./helpers/http";
import { freePort, signInAtProvider, startTestProvider, type Fault, type TestProvider } from "./helpers/oidc-provider";
import { startServer, type RunningServer } from "./helpers/server";

let provider: TestProvider;
let server: RunningServer;
let base = "";
let adminToken = "";
const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-oidc-"));
const subject = `rpps-${Date.now().toString(36)}`;

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  provider = await startTestProvider({
    clientId: "nexus-test",
    clientSecret: "nexus-test-secret-0123456789",
    redirectUri: `${base}/connexion/oidc/retour`,
    postLogoutUri: `${base}/connexion`,
  });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: "production",
    PORT: String(port),
    HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    NEXUS_DEMO: "1",
    NEXUS_ACCESS_LOG: "0",
    NEXUS_MASTER_KEYS: inject("masterKeys"),
    OIDC_ISSUER: provider.issuer,
    OIDC_CLIENT_ID: "nexus-test",
    OIDC_CLIENT_SECRET: "nexus-test-secret-0123456789",
    OIDC_ALLOW_HTTP: "1",
    // As in production: staff must have a second factor (the provider's sign-in counts as one).
    MFA_REQUIRED: "staff",
  };
  delete env.DATABASE_URL;
  server = await startServer(env);

  // The admin's first password sign-in must enrol a second factor before anything else.
  const admin = await BrowserSession.login("admin@demo.nexus", undefined, {}, base);
  expect((await admin.get("/admin/comptes")).headers.get("Location")).toBe("/compte/double-authentification");
  const begun = await admin.post("/compte/double-authentification", { intent: "begin" }, { csrf: await admin.csrf("/compte/double-authentification") });
  const secret = /data-testid="totp-secret"[^>]*>([A-Z2-7]+)</.exec(begun.html)![1]!;
  const confirmed = await admin.post(
    "/compte/double-authentification",
    { intent: "confirm", code: await generate({ secret }) },
    { csrf: await admin.csrf("/compte/double-authentification") },
  );
  expect(confirmed.status).toBe(200);
  expect((await admin.get("/admin/comptes")).status).toBe(200);
  // One API token for the audit checks (the next period's code: the confirmation used this one's).
  const otp = await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 });
  adminToken = (await api("POST", "/api/v1/tokens", { base, json: { email: "admin@demo.nexus", password: "nexus-demo-2026", otp } })).body.token;
  expect(adminToken).toBeTruthy();

  // The admin links the demo doctor's account to the provider's subject (never by e-mail).
  const token = (await api("POST", "/api/v1/tokens", { base, json: { email: "doctor@demo.nexus", password: "nexus-demo-2026" } })).body.token;
  const doctor = await api("GET", "/api/v1/me", { base, token });
  const linked = await admin.post(
    "/admin/comptes",
    { intent: "update", userId: doctor.body.id, name: "Dr Demo", role: "doctor", oidcSubject: subject },
    { csrf: await admin.csrf("/admin/comptes") },
  );
  expect(linked.status).toBe(200);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await provider?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Starts a sign-in at Nexus and plays the user at the provider; returns the session and the callback URL. */
async function toCallback(who: string): Promise<{ session: BrowserSession; callback: string }> {
  const session = new BrowserSession(base);
  const page = await session.get("/connexion");
  expect(page.html).toContain("Se connecter avec Pro Santé Connect");
  const start = await session.post("/connexion/oidc", { redirectTo: "/compte" }, { csrf: await session.csrf("/connexion") });
  expect(start.status).toBe(302);
  const authorization = start.headers.get("Location")!;
  const url = new URL(authorization);
  expect(url.origin).toBe(provider.issuer);
  expect(url.searchParams.get("code_challenge_method")).toBe("S256");
  expect(url.searchParams.get("state")).toBeTruthy();
  expect(url.searchParams.get("nonce")).toBeTruthy();
  const callback = await signInAtProvider(authorization, who, `${base}/connexion/oidc/retour`);
  return { session, callback };
}

async function lastLoginEvent(): Promise<{ outcome: string; reason: string | null }> {
  const events = await api("GET", "/api/v1/audit?action=auth.login&limit=5", { base, token: adminToken });
  return events.body.events.find((e: { reason: string | null }) => e.reason?.startsWith("oidc"));
}

describe("OpenID Connect sign-in (oidc-provider on loopback)", () => {
  it("signs a linked professional in, then logs out at the provider too", async () => {
    const { session, callback } = await toCallback(subject);
    const done = await session.get(callback.slice(base.length));
    expect(done.status).toBe(302);
    expect(done.headers.get("Location")).toBe("/compte");
    const account = await session.get("/compte");
    expect(account.status).toBe(200);
    expect(account.html).toContain("doctor@demo.nexus");
    expect((await lastLoginEvent()).outcome).toBe("allowed");

    const logout = await session.post("/deconnexion", {}, { csrf: await session.csrf("/compte") });
    expect(logout.status).toBe(302);
    const end = new URL(logout.headers.get("Location")!);
    expect(end.origin).toBe(provider.issuer);
    expect(end.searchParams.get("id_token_hint")).toBeTruthy();
    expect(end.searchParams.get("post_logout_redirect_uri")).toBe(`${base}/connexion`);
    expect((await session.get("/compte")).status).toBe(302);
  });

  it("refuses an identity linked to no account, with a clear message, audited", async () => {
    const { session, callback } = await toCallback("someone-unknown");
    const done = await session.get(callback.slice(base.length));
    expect(done.headers.get("Location")).toBe("/connexion?erreur=oidc-compte");
    expect(session.cookies.has("nexus_session")).toBe(false);
    expect((await session.get("/connexion?erreur=oidc-compte")).html).toContain("aucun compte Nexus");
    const event = await lastLoginEvent();
    expect(event.outcome).toBe("denied");
    expect(event.reason).toContain("someone-unknown");
  });

  it("refuses a wrong state and a replayed code", async () => {
    const first = await toCallback(subject);
    const tampered = new URL(first.callback);
    tampered.searchParams.set("state", "not-the-state");
    const wrongState = await first.session.get(tampered.pathname + tampered.search);
    expect(wrongState.headers.get("Location")).toBe("/connexion?erreur=oidc");
    expect(first.session.cookies.has("nexus_session")).toBe(false);

    const second = await toCallback(subject);
    const saved = new Map(second.session.cookies);
    expect((await second.session.get(second.callback.slice(base.length))).headers.get("Location")).toBe("/compte");
    const replay = new BrowserSession(base);
    for (const [k, v] of saved) replay.cookies.set(k, v);
    const replayed = await replay.get(second.callback.slice(base.length));
    expect(replayed.headers.get("Location")).toBe("/connexion?erreur=oidc");
    expect((await replay.get("/compte")).status).toBe(302);
  });

  // Each forged token must be refused for its own reason (the audit keeps the check that failed).
  const faults: [Fault, string][] = [
    ["wrong-audience", '"aud"'],
    ["expired", '"exp"'],
    ["other-nonce", '"nonce"'],
    ["alg-none", '"alg"'],
    ["unknown-key", "signature verification failed"],
  ];
  for (const [fault, why] of faults) {
    it(`refuses an ID token with ${fault}`, async () => {
      const { session, callback } = await toCallback(subject);
      provider.fault = fault;
      try {
        const done = await session.get(callback.slice(base.length));
        expect(done.headers.get("Location")).toBe("/connexion?erreur=oidc");
        expect(session.cookies.has("nexus_session")).toBe(false);
        const event = await lastLoginEvent();
        expect(event.outcome).toBe("denied");
        expect(event.reason).toContain(why);
      } finally {
        provider.fault = "none";
      }
    });
  }

  it("sends staff who sign in with a password alone to enrol a second factor first (MFA_REQUIRED=staff)", async () => {
    const doctor = await BrowserSession.login("doctor@demo.nexus", undefined, {}, base);
    const page = await doctor.get("/patients");
    expect(page.status).toBe(302);
    expect(page.headers.get("Location")).toBe("/compte/double-authentification");
    const enrol = await doctor.get("/compte/double-authentification");
    expect(enrol.status).toBe(200);
    expect(enrol.html).toContain("Votre rôle exige une double authentification");
    // By the API too: a password-only token may only enrol (and say who it is) until a second factor is on.
    const token = (await api("POST", "/api/v1/tokens", { base, json: { email: "researcher@demo.nexus", password: "nexus-demo-2026" } })).body.token;
    const refused = await api("GET", "/api/v1/patients", { base, token });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("mfa_enrolment_required");
    expect((await api("GET", "/api/v1/me", { base, token })).status).toBe(200);
    const begun = await api<{ secret: string }>("POST", "/api/v1/me/totp", { base, token });
    expect(begun.status).toBe(201);
    const on = await api("POST", "/api/v1/me/totp/confirm", { base, token, json: { otp: await generate({ secret: begun.body.secret }) } });
    expect(on.status).toBe(204);
    // Enrolled: the same token now reaches what the role allows (researchers: not the patient list → 403 forbidden).
    const after = await api("GET", "/api/v1/patients", { base, token });
    expect(after.body.error.code).toBe("forbidden");
    // A patient is not staff: no enrolment asked.
    const patient = await BrowserSession.login("patient@demo.nexus", undefined, {}, base);
    expect((await patient.get("/mon-dossier")).status).toBe(200);
  });

  it.skipIf(!hasChromium)("in Chromium: the button, the provider's pages, back signed in, then logged out at both", async () => {
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      // The provider's development pages import a web font: nothing leaves this machine.
      await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => route.abort());
      const page = await context.newPage();
      await page.goto(`${base}/connexion`);
      await page.getByRole("button", { name: "Se connecter avec Pro Santé Connect" }).click();
      await page.waitForURL((url) => url.origin === provider.issuer);
      await page.locator('input[name="login"]').fill(subject);
      await page.locator('input[name="password"]').fill("any");
      await page.getByRole("button", { name: "Sign-in" }).click();
      await page.getByRole("button", { name: "Continue" }).click();
      await page.waitForURL((url) => url.origin === base && !url.pathname.startsWith("/connexion"));
      await page.goto(`${base}/compte`);
      await page.getByText("doctor@demo.nexus").waitFor();
      await page.getByRole("button", { name: "Se déconnecter" }).first().click();
      // The provider asks to confirm its own logout, then returns to Nexus's login page.
      await page.waitForURL((url) => url.origin === provider.issuer);
      await page.getByRole("button", { name: /yes/i }).click();
      await page.waitForURL(`${base}/connexion`);
      expect((await page.goto(`${base}/compte`))?.url()).toContain("/connexion");
    } finally {
      await browser.close();
    }
  });

  it("answers a callback without a sign-in in progress with the login page", async () => {
    const res = await new BrowserSession(base).get("/connexion/oidc/retour?code=x&state=y");
    expect(res.headers.get("Location")).toBe("/connexion?erreur=oidc");
  });
});
