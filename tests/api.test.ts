/** The HTTP API v1 contract of the foundation (shared/API.md), against the running server. */
import { describe, expect, it } from "vitest";
import { createAccount, createPatient, uniqueEmail } from "./helpers/fixtures";
import { api, DEMO_PASSWORD, tokenFor } from "./helpers/http";

describe("POST /api/v1/tokens", () => {
  it("issues a token for valid credentials", async () => {
    const res = await api("POST", "/api/v1/tokens", { json: { email: "Doctor@Demo.Nexus ", password: DEMO_PASSWORD } });
    expect(res.status).toBe(201);
    expect(res.body.token).toMatch(/^nxs_[A-Za-z0-9_-]{40,}$/);
    expect(res.body.role).toBe("doctor");
    expect(new Date(res.body.expiresAt).getTime()).toBeGreaterThan(Date.now());
  });

  it("answers 400 for a malformed body and 415 for a non-JSON one", async () => {
    expect((await api("POST", "/api/v1/tokens", { json: { email: "" } })).status).toBe(400);
    expect((await api("POST", "/api/v1/tokens", { json: [] })).status).toBe(400);
    const notJson = await api("POST", "/api/v1/tokens", { headers: { "Content-Type": "text/plain" } });
    expect(notJson.status).toBe(415);
  });

  it("gives the same 401 for a wrong password and an unknown e-mail", async () => {
    const wrong = await api("POST", "/api/v1/tokens", { json: { email: "doctor@demo.nexus", password: "nope-nope-nope" } });
    const unknown = await api("POST", "/api/v1/tokens", { json: { email: uniqueEmail("ghost"), password: "nope-nope-nope" } });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body).toEqual(unknown.body);
  });

  it("locks an account after repeated failures (429 + Retry-After), unknown e-mails alike", async () => {
    const { email, password } = await createAccount("doctor");
    const ghost = uniqueEmail("ghost");
    for (const target of [email, ghost]) {
      for (let i = 0; i < 4; i++) {
        expect((await api("POST", "/api/v1/tokens", { json: { email: target, password: "wrong-password!" } })).status).toBe(401);
      }
      const locking = await api("POST", "/api/v1/tokens", { json: { email: target, password: "wrong-password!" } });
      expect(locking.status).toBe(429);
      expect(Number(locking.headers.get("Retry-After"))).toBeGreaterThan(0);
      expect(locking.body.error.message).toMatch(/Réessayez dans \d+ minute/);
    }
    // Even the right password is refused while locked.
    const locked = await api("POST", "/api/v1/tokens", { json: { email, password } });
    expect(locked.status).toBe(429);
  });
});

describe("GET /api/v1/me and DELETE /api/v1/tokens/current", () => {
  it("describes the token's owner, including the patient id for a patient", async () => {
    const me = await api("GET", "/api/v1/me", { token: await tokenFor("patient@demo.nexus") });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ email: "patient@demo.nexus", role: "patient" });
    expect(me.body.patientId).toMatch(/^[0-9a-f-]{36}$/);
    const doctor = await api("GET", "/api/v1/me", { token: await tokenFor("doctor@demo.nexus") });
    expect(doctor.body.patientId).toBeUndefined();
  });

  it("answers 401 without a token, with a forged one, and after revocation", async () => {
    expect((await api("GET", "/api/v1/me")).status).toBe(401);
    expect((await api("GET", "/api/v1/me", { token: "nxs_forged-token-that-was-never-issued-by-nexus" })).status).toBe(401);
    const token = await tokenFor("researcher@demo.nexus");
    expect((await api("DELETE", "/api/v1/tokens/current", { token })).status).toBe(204);
    const after = await api("GET", "/api/v1/me", { token });
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe("unauthenticated");
    expect((await api("DELETE", "/api/v1/tokens/current", { token })).status).toBe(401);
  });

  it("answers requests that arrive together, each with its own token's owner (lookups read in one statement)", async () => {
    const emails = ["doctor@demo.nexus", "patient@demo.nexus", "researcher@demo.nexus", "admin@demo.nexus"];
    const tokens = await Promise.all(emails.map((email) => tokenFor(email)));
    const revoked = await tokenFor("doctor@demo.nexus");
    expect((await api("DELETE", "/api/v1/tokens/current", { token: revoked })).status).toBe(204);
    const calls = [
      ...tokens.flatMap((token, i) => [0, 1, 2].map(() => ({ token, expect: emails[i] }))),
      { token: revoked, expect: null },
      { token: "nxs_forged-token-that-was-never-issued-by-nexus", expect: null },
    ];
    const answers = await Promise.all(calls.map((c) => api("GET", "/api/v1/me", { token: c.token })));
    answers.forEach((answer, i) => {
      if (calls[i]!.expect === null) expect(answer.status, `call ${i}`).toBe(401);
      else expect([answer.status, answer.body.email], `call ${i}`).toEqual([200, calls[i]!.expect]);
    });
  });
});

describe("GET|POST /api/v1/patients", () => {
  it("lets a doctor create a patient with an account and intake consents, and list only their care team", async () => {
    const doctor = await createAccount("doctor");
    const token = await tokenFor(doctor.email, doctor.password);
    const email = uniqueEmail("patient");
    const created = await createPatient(token, { displayName: "Jeanne Martin", email, consents: { care: true, research: false } });
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.account?.email).toBe(email);

    // The new patient can log in with the one-time password and sees themself.
    const patientToken = await tokenFor(email, created.account!.password);
    const me = await api("GET", "/api/v1/me", { token: patientToken });
    expect(me.body.patientId).toBe(created.id);

    const mine = await api("GET", "/api/v1/patients", { token });
    expect(mine.status).toBe(200);
    expect(mine.body.patients).toEqual([{ id: created.id, displayName: "Jeanne Martin", createdAt: expect.any(String) }]);
    // Another doctor's list does not contain it.
    const other = await api("GET", "/api/v1/patients", { token: await tokenFor("doctor@demo.nexus") });
    expect(other.body.patients.map((p: { id: string }) => p.id)).not.toContain(created.id);
  });

  it("answers 400 for bad bodies and 409 for an e-mail already in use", async () => {
    const token = await tokenFor("doctor@demo.nexus");
    for (const json of [{}, { displayName: "x" }, { displayName: "Valid Name", email: "not-an-email" }, { displayName: "Valid Name", consents: { unknown: true } }]) {
      const res = await api("POST", "/api/v1/patients", { token, json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(res.body.error.code).toBe("invalid");
    }
    const dup = await api("POST", "/api/v1/patients", { token, json: { displayName: "Doublon", email: "doctor@demo.nexus" } });
    expect(dup.status).toBe(409);
  });

  it("pages the list with limit and nextCursor, and refuses a bad limit or cursor with a 400", async () => {
    const doctor = await createAccount("doctor");
    const token = await tokenFor(doctor.email, doctor.password);
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await createPatient(token, { displayName: `Page Patiente ${i}` })).id);
    const whole = await api("GET", "/api/v1/patients", { token });
    expect(whole.body).toEqual({ patients: expect.any(Array), nextCursor: null });
    expect(whole.body.patients.map((p: { id: string }) => p.id)).toEqual([...created].reverse());

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const path: string = `/api/v1/patients?limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const res = await api<{ patients: { id: string }[]; nextCursor: string | null }>("GET", path, { token });
      expect(res.status).toBe(200);
      expect(res.body.patients.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.patients.map((p) => p.id));
      cursor = res.body.nextCursor;
    } while (cursor !== null && seen.length < 10);
    expect(seen).toEqual([...created].reverse());

    const searched = await api("GET", `/api/v1/patients?q=${encodeURIComponent("Page Patiente")}&limit=4`, { token });
    expect(searched.body.patients).toHaveLength(4);
    expect(searched.body.nextCursor).toBe(created[1]);

    for (const query of ["limit=0", "limit=501", "limit=deux", "cursor=not-an-id"]) {
      const res = await api("GET", `/api/v1/patients?${query}`, { token });
      expect(res.status, query).toBe(400);
      expect(res.body.error.code).toBe("invalid");
      expect(res.body.error.message, query).toMatch(query.startsWith("limit") ? /^limit: entier de 1 à 500/ : /^cursor: identifiant de patient/);
    }
  });

  it("gives admins the directory without medical data and refuses creation to other roles", async () => {
    const list = await api("GET", "/api/v1/patients", { token: await tokenFor("admin@demo.nexus") });
    expect(list.status).toBe(200);
    // Identity only (name, IPP, INS, birth date, sex: what an admin needs to pick a patient), no medical data.
    const identity = ["birthDate", "createdAt", "displayName", "id", "ins", "ipp", "sex"];
    for (const p of list.body.patients) expect(Object.keys(p).filter((k) => !identity.includes(k))).toEqual([]);
    for (const who of ["admin@demo.nexus", "patient@demo.nexus", "researcher@demo.nexus"]) {
      const res = await api("POST", "/api/v1/patients", { token: await tokenFor(who), json: { displayName: "Nope Nope" } });
      expect(res.status, who).toBe(403);
      expect(res.body.error.code).toBe("forbidden");
    }
  });
});

describe("health", () => {
  it("answers /healthz and /readyz", async () => {
    expect((await api("GET", "/healthz")).body).toEqual({ status: "ok" });
    const ready = await api("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body.checks.database).toBe("ok");
  });

  it("answers unknown API paths with a JSON 404", async () => {
    const res = await api("GET", "/api/v1/does-not-exist");
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("not_found");
  });
});
