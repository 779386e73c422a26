/** Browser pages without JavaScript: login, sessions, CSRF, account administration, error pages. */
import { describe, expect, it } from "vitest";
import { createAccount, createPatient, uniqueEmail } from "./helpers/fixtures";
import { api, baseUrl, BrowserSession, DEMO_PASSWORD, tokenFor } from "./helpers/http";

describe("login and sessions", () => {
  it("sets an HttpOnly, SameSite=Lax session cookie, not Secure over plain HTTP", async () => {
    const session = new BrowserSession();
    const res = await session.post("/connexion", { email: "doctor@demo.nexus", password: DEMO_PASSWORD });
    expect(res.status).toBe(302);
    expect(res.headers.get("Location")).toBe("/");
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("nexus_session="))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).not.toMatch(/Secure/i);
    expect(cookie).toMatch(/Max-Age=\d+|Expires=/i);
  });

  it("marks the cookie Secure when the trusted proxy says the request came over HTTPS", async () => {
    const https = new BrowserSession();
    const page = await https.get("/connexion", { "X-Forwarded-Proto": "https" });
    const token = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
    const login = await https.post(
      "/connexion",
      { email: "doctor@demo.nexus", password: DEMO_PASSWORD },
      { csrf: token, headers: { "X-Forwarded-Proto": "https", Origin: baseUrl().replace("http:", "https:") } },
    );
    expect(login.status).toBe(302);
    const cookie = login.headers.getSetCookie().find((c) => c.startsWith("nexus_session="))!;
    expect(cookie).toMatch(/; Secure/i);
  });

  it("gives the same message for a wrong password and an unknown e-mail, with status 401", async () => {
    const a = await new BrowserSession().post("/connexion", { email: "doctor@demo.nexus", password: "wrong-password" });
    const b = await new BrowserSession().post("/connexion", { email: uniqueEmail("nobody"), password: "wrong-password" });
    expect(a.status).toBe(401);
    expect(b.status).toBe(401);
    const message = (html: string) => /role="alert"[^>]*>([^<]+)</.exec(html)?.[1];
    expect(message(a.html)).toBe("Adresse e-mail ou mot de passe incorrect.");
    expect(message(b.html)).toBe(message(a.html));
  });

  it("shows field errors (400) for an empty form, and 429 with the retry delay once locked", async () => {
    const empty = await new BrowserSession().post("/connexion", { email: "", password: "" });
    expect(empty.status).toBe(400);
    expect(empty.html).toContain("Saisissez votre adresse e-mail.");
    const { email } = await createAccount("researcher");
    let last = 0;
    for (let i = 0; i < 5; i++) last = (await new BrowserSession().post("/connexion", { email, password: "bad-bad-bad" })).status;
    expect(last).toBe(429);
    const locked = await new BrowserSession().post("/connexion", { email, password: "bad-bad-bad" });
    expect(locked.status).toBe(429);
    expect(locked.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(locked.html).toMatch(/Réessayez dans 15 minutes/);
  });

  it("refuses a mutation without a valid CSRF token (403) and from another origin", async () => {
    const session = await BrowserSession.login("doctor@demo.nexus");
    const none = await session.post("/patients/nouveau", { displayName: "Sans Jeton" }, { csrf: null });
    expect(none.status).toBe(403);
    expect(none.html).toContain("CSRF");
    const forged = await session.post("/patients/nouveau", { displayName: "Faux Jeton" }, { csrf: "x".repeat(43) });
    expect(forged.status).toBe(403);
    const csrf = await session.csrf();
    const crossSite = await session.post("/patients/nouveau", { displayName: "Autre Site" }, { csrf, headers: { Origin: "https://evil.example" } });
    expect(crossSite.status).toBe(403);
    const ok = await session.post("/patients/nouveau", { displayName: "Avec Jeton" }, { csrf });
    expect(ok.status).toBe(201);
  });

  it("ends the session on the server at logout: the old cookie no longer works", async () => {
    const session = await BrowserSession.login("patient@demo.nexus");
    const stolen = session.cookieHeader();
    expect((await session.get("/mon-dossier")).status).toBe(200);
    const out = await session.post("/deconnexion", {});
    expect(out.status).toBe(302);
    expect(out.headers.get("Location")).toBe("/connexion");
    const replay = await fetch(baseUrl() + "/mon-dossier", { headers: { Cookie: stolen }, redirect: "manual" });
    expect(replay.status).toBe(302);
    expect(replay.headers.get("Location")).toMatch(/^\/connexion\?redirectTo=/);
  });

  it("treats a forged session cookie as no session", async () => {
    const res = await fetch(baseUrl() + "/patients", { headers: { Cookie: "nexus_session=forged.value" }, redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("Location")).toMatch(/^\/connexion/);
  });

  it("follows only same-site paths after login", async () => {
    const session = new BrowserSession();
    const res = await session.post("/connexion", { email: "doctor@demo.nexus", password: DEMO_PASSWORD, redirectTo: "//evil.example/x" });
    expect(res.headers.get("Location")).toBe("/");
  });
});

describe("account administration", () => {
  it("creates, disables (ending sessions and tokens) and re-enables an account", async () => {
    const { email, password } = await createAccount("doctor");
    const userSession = await BrowserSession.login(email, password);
    const token = await tokenFor(email, password);
    const admin = await BrowserSession.login("admin@demo.nexus");
    const list = await admin.get("/admin/comptes");
    expect(list.html).toContain(email);
    const me = await api<{ id: string }>("GET", "/api/v1/me", { token });

    const disable = await admin.post("/admin/comptes", { intent: "disable", userId: me.body.id, confirm: "1" });
    expect(disable.status).toBe(200);
    expect((await userSession.get("/patients")).status).toBe(302);
    expect((await api("GET", "/api/v1/me", { token })).status).toBe(401);
    const refused = await new BrowserSession().post("/connexion", { email, password });
    expect(refused.status).toBe(401);

    expect((await admin.post("/admin/comptes", { intent: "enable", userId: me.body.id })).status).toBe(200);
    expect((await BrowserSession.login(email, password)).cookies.has("nexus_session")).toBe(true);
  });

  it("refuses a duplicate e-mail (409) and a short password (400) with field errors", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus");
    const dup = await admin.post("/admin/comptes", { intent: "create", name: "Dup", email: "doctor@demo.nexus", role: "doctor", password: "long-enough-pass" });
    expect(dup.status).toBe(409);
    expect(dup.html).toContain("Un compte existe déjà");
    const short = await admin.post("/admin/comptes", { intent: "create", name: "Court", email: uniqueEmail("s"), role: "doctor", password: "short" });
    expect(short.status).toBe(400);
    expect(short.html).toContain("au moins 12 caractères");
  });

  it("does not let an admin disable their own account", async () => {
    const admin = await BrowserSession.login("admin@demo.nexus");
    const me = await api<{ id: string }>("GET", "/api/v1/me", { token: await tokenFor("admin@demo.nexus") });
    const res = await admin.post("/admin/comptes", { intent: "disable", userId: me.body.id, confirm: "1" });
    expect(res.status).toBe(403);
    expect(res.html).toContain("propre compte");
  });
});

describe("patients in the browser", () => {
  it("lets a doctor create a patient with an account; the temporary password works once and forces the patient's own", async () => {
    const doctor = await BrowserSession.login("doctor@demo.nexus");
    const email = uniqueEmail("pat");
    const res = await doctor.post("/patients/nouveau", { displayName: "Louise Bernard", email, consent_care: "on" });
    expect(res.status).toBe(201);
    const password = /data-testid="temporary-password"[^>]*>([^<]+)</.exec(res.html)![1]!;
    const patient = await BrowserSession.login(email, password);
    // The first sign-in leads to the new-password page, and every other page sends her back there.
    const stage = await patient.get("/mon-dossier");
    expect(stage.status).toBe(302);
    expect(stage.headers.get("Location")).toBe("/compte/nouveau-mot-de-passe");
    // The temporary password was consumed by that sign-in: the doctor cannot use it to act as the patient.
    expect((await BrowserSession.login(email, password).catch((e: Error) => e)) instanceof Error).toBe(true);
    const mismatch = await patient.post("/compte/nouveau-mot-de-passe", { next: "a-new-long-password", confirm: "another-password" }, { csrf: await patient.csrf("/compte/nouveau-mot-de-passe") });
    expect(mismatch.status).toBe(400);
    const chosen = await patient.post("/compte/nouveau-mot-de-passe", { next: "a-new-long-password", confirm: "a-new-long-password" }, { csrf: await patient.csrf("/compte/nouveau-mot-de-passe") });
    expect(chosen.status).toBe(302);
    const record = await patient.get("/mon-dossier");
    expect(record.status).toBe(200);
    expect(record.html).toContain("Louise Bernard");
    expect(record.html).toMatch(/data-purpose="care".*accordé/s);
    expect((await BrowserSession.login(email, "a-new-long-password")).cookies.has("nexus_session")).toBe(true);
  });

  it("answers 404 for an id that cannot exist, and an error page without a stack trace", async () => {
    const doctor = await BrowserSession.login("doctor@demo.nexus");
    const res = await doctor.get("/patients/not-a-uuid");
    expect(res.status).toBe(404);
    expect(res.html).toContain("Ressource introuvable");
    expect(res.html).not.toMatch(/at .*\.(js|ts):\d+/);
  });

  it("sends a page whole, with its length (not chunked), error pages too", async () => {
    const doctor = await BrowserSession.login("doctor@demo.nexus");
    for (const [path, status] of [["/patients", 200], ["/patients/not-a-uuid", 404]] as const) {
      const res = await doctor.get(path);
      expect(res.status, path).toBe(status);
      expect(res.headers.get("Transfer-Encoding"), path).toBeNull();
      expect(Number(res.headers.get("Content-Length")), path).toBe(Buffer.byteLength(res.html));
      expect(res.html, path).toContain("</html>");
    }
  });

  it("shows a long list 50 patients at a time, with a link to the next ones and back to the start", async () => {
    const doctor = await createAccount("doctor");
    const token = await tokenFor(doctor.email, doctor.password);
    const created: string[] = [];
    for (let i = 0; i < 53; i++) created.push((await createPatient(token, { displayName: `Liste Longue ${i}` })).id);
    const newestFirst = [...created].reverse();
    const session = await BrowserSession.login(doctor.email, doctor.password);
    const rows = (html: string) => [...html.matchAll(/href="\/patients\/([0-9a-f-]{36})"/g)].map((m) => m[1]);
    const nextLink = (html: string) => /<a[^>]*rel="next"[^>]*href="([^"]+)"|<a[^>]*href="([^"]+)"[^>]*rel="next"/.exec(html);

    const first = await session.get("/patients");
    expect(first.status).toBe(200);
    expect(rows(first.html)).toEqual(newestFirst.slice(0, 50));
    expect(first.html).not.toContain("Retour au début de la liste");
    const next = nextLink(first.html)!;
    const href = (next[1] ?? next[2]!).replace(/&amp;/g, "&");
    expect(href).toBe(`/patients?cursor=${newestFirst[49]}`);
    const second = await session.get(href);
    expect(rows(second.html)).toEqual(newestFirst.slice(50));
    expect(nextLink(second.html)).toBeNull();
    expect(second.html).toMatch(/<a[^>]*href="\/patients"[^>]*>← Retour au début de la liste/);

    // A search keeps its words from page to page; a cursor edited by hand starts from the top.
    const searched = await session.get(`/patients?q=${encodeURIComponent("Liste Longue")}&cursor=${newestFirst[1]}`);
    expect(rows(searched.html)).toEqual(newestFirst.slice(2, 52));
    expect(nextLink(searched.html)![0].replace(/&amp;/g, "&")).toContain(`/patients?q=Liste+Longue&cursor=${newestFirst[51]}`);
    const edited = await session.get("/patients?cursor=../../etc");
    expect(edited.status).toBe(200);
    expect(rows(edited.html)).toEqual(newestFirst.slice(0, 50));
  });

  it("switches the interface to English and back", async () => {
    const session = await BrowserSession.login("doctor@demo.nexus");
    await session.get("/langue?l=en&retour=/patients");
    expect((await session.get("/patients")).html).toContain("My patients");
    await session.get("/langue?l=fr&retour=/patients");
    expect((await session.get("/patients")).html).toContain("Mes patients");
  });
});
