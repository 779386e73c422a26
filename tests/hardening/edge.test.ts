/**
 * The HTTP edge (issue 11, items 3, 5 and 7), against real servers:
 *  - bodies over a route's limit are refused with 413 before they are read: 256 MiB to /api/v1/tokens and to
 *    /connexion, declared (Content-Length) or chunked, without the server's memory growing; the refusal reaches a
 *    client that reads it only after writing on (no reset of the connection before it is read);
 *  - NUL characters in a patient's name and in audit filters are a 400, not a 500;
 *  - a database that refuses connections gives 503 (JSON with Retry-After on the API, an error page on pages);
 *  - every page and API answer with patient data says `Cache-Control: no-store`.
 */
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, baseUrl, BrowserSession, tokenFor } from "../helpers/http";
import { createPatient } from "../helpers/fixtures";
import { adminQuery, postgresAdminUrl, rssMiB, startOwnServer, type OwnServer } from "../helpers/own-server";

const MiB = 1024 * 1024;

/** Sends `total` bytes to `path` (declared with Content-Length, or chunked) and resolves with the answer's status. */
function sendHuge(base: string, path: string, total: number, options: { chunked: boolean; contentType: string }): Promise<{ status: number; body: string; sent: number }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const headers: Record<string, string> = { "Content-Type": options.contentType };
    if (!options.chunked) headers["Content-Length"] = String(total);
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers }, (res) => {
      answered = true;
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode!, body, sent });
      });
    });
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    const chunk = Buffer.alloc(MiB, options.contentType.includes("json") ? 0x61 : 0x61);
    const pump = () => {
      while (!answered && sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      if (!answered) req.end();
    };
    if (options.contentType.includes("json")) req.write('{"email":"');
    // A first MiB, then the rest a moment later: a server that refuses early has answered by then (a client that
    // kept writing into a closed connection would see EPIPE before reading the answer).
    sent += chunk.length;
    req.write(chunk);
    setTimeout(pump, 300);
  });
}

describe("body limits, before any parsing (413)", () => {
  let server: OwnServer;
  beforeAll(async () => {
    server = await startOwnServer();
  });
  afterAll(() => server?.stop());

  const cases = [
    { path: "/api/v1/tokens", contentType: "application/json" },
    { path: "/connexion", contentType: "application/x-www-form-urlencoded" },
  ];
  for (const { path, contentType } of cases) {
    for (const chunked of [false, true]) {
      it(`256 MiB to ${path} (${chunked ? "chunked" : "Content-Length"}) → 413, memory flat`, async () => {
        const pid = server.child.pid!;
        const before = await rssMiB(pid);
        const res = await sendHuge(server.url, path, 256 * MiB, { chunked, contentType });
        const after = await rssMiB(pid);
        expect(res.status).toBe(413);
        if (path.startsWith("/api/")) expect(JSON.parse(res.body).error.code).toBe("too_large");
        else expect(res.body).toContain("Requête trop volumineuse");
        // Refused long before the whole body was sent, and nothing was buffered.
        expect(res.sent).toBeLessThan(64 * MiB);
        expect(after - before).toBeLessThan(48);
      });
    }
  }

  /**
   * Writes `head` and 1 MiB of body, another MiB a moment later, and reads only after that (as a proxy busy writing
   * the body does): bytes that reach a connection the server has closed make it reset the connection, and the
   * client's system then drops the answer it had not read yet.
   */
  function writeThenRead(head: string): Promise<string> {
    const url = new URL(server.url);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: url.hostname, port: Number(url.port) });
      socket.pause();
      let answer = "";
      socket.on("data", (c: Buffer) => (answer += c.toString("latin1")));
      socket.on("error", (err) => reject(new Error(`${(err as NodeJS.ErrnoException).code ?? err.message} after ${JSON.stringify(answer.slice(0, 40))}`)));
      socket.on("connect", () => {
        socket.write(head);
        socket.write(Buffer.alloc(MiB, 0x61));
        setTimeout(() => socket.write(Buffer.alloc(MiB, 0x61)), 300);
        setTimeout(() => socket.resume(), 600);
        setTimeout(() => {
          socket.destroy();
          resolve(answer);
        }, 900);
      });
    });
  }

  it("the 413 reaches a client that reads only after writing on (lingering close, not a reset)", async () => {
    const chunked = await writeThenRead(
      `POST /api/v1/tokens HTTP/1.1\r\nHost: ${new URL(server.url).host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${(2 * MiB).toString(16)}\r\n`,
    );
    expect(chunked).toMatch(/^HTTP\/1\.1 413 /);
    expect(chunked).toContain('"too_large"');
    const declared = await writeThenRead(
      `POST /api/v1/tokens HTTP/1.1\r\nHost: ${new URL(server.url).host}\r\nContent-Type: application/json\r\nContent-Length: ${2 * MiB}\r\n\r\n`,
    );
    expect(declared).toMatch(/^HTTP\/1\.1 413 /);
  });

  it("a normal login still works after the refusals", async () => {
    const res = await api("POST", "/api/v1/tokens", { base: server.url, json: { email: "doctor@demo.nexus", password: "nexus-demo-2026" } });
    expect(res.status).toBe(201);
  });

  /** One raw HTTP/1.1 exchange (a Host header fetch would refuse to send), read to the end. */
  function rawExchange(request: string): Promise<string> {
    const url = new URL(server.url);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: url.hostname, port: Number(url.port) }, () => socket.end(request));
      let answer = "";
      socket.on("data", (c: Buffer) => (answer += c.toString("utf8")));
      socket.on("end", () => resolve(answer));
      socket.on("error", reject);
    });
  }

  it("a Host header no URL can be made of is a 400 in the user's language, logged without a stack", async () => {
    const api = await rawExchange("GET /api/v1/patients HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n");
    expect(api).toMatch(/^HTTP\/1\.1 400 /);
    expect(api).toMatch(/content-type: application\/json; charset=utf-8/i);
    expect(JSON.parse(api.slice(api.indexOf("\r\n\r\n") + 4)).error).toEqual({ code: "bad_host", message: "L'en-tête Host de la requête n'est pas un nom d'hôte valide." });
    const page = await rawExchange("GET /patients HTTP/1.1\r\nHost: a b\r\nAccept-Language: en\r\nConnection: close\r\n\r\n");
    expect(page).toMatch(/^HTTP\/1\.1 400 /);
    expect(page).toContain('<html lang="en">');
    expect(page).toContain("The request's Host header is not a valid host name.");
    expect(server.output()).not.toMatch(/\n\s+at /);
    // The next request is served as usual.
    expect((await fetch(`${server.url}/connexion`)).status).toBe(200);
  });

  it("a form just over 64 KiB is refused, one just under is read", async () => {
    const over = await fetch(`${server.url}/api/v1/tokens`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email: "a".repeat(70 * 1024), password: "x" }) });
    expect(over.status).toBe(413);
    const under = await fetch(`${server.url}/api/v1/tokens`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email: "a".repeat(60 * 1024), password: "x" }) });
    expect(under.status).toBe(400);
  });
});

describe("NUL characters are a 400, not a 500", () => {
  let doctor: string;
  let admin: string;
  beforeAll(async () => {
    doctor = await tokenFor("doctor@demo.nexus");
    admin = await tokenFor("admin@demo.nexus");
  });

  it("in a patient's display name (API and page)", async () => {
    const res = await api("POST", "/api/v1/patients", { token: doctor, json: { displayName: "Mme\u0000Dupont" } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid");
    const session = await BrowserSession.login("doctor@demo.nexus");
    const page = await session.post("/patients/nouveau", { displayName: "Mme\u0000Dupont" }, { csrf: await session.csrf("/patients/nouveau") });
    expect(page.status).toBe(400);
  });

  it("in the audit filters action and requestId (API and admin page)", async () => {
    for (const field of ["action", "requestId"]) {
      const res = await api("GET", `/api/v1/audit?${field}=a%00b`, { token: admin });
      expect(res.status, field).toBe(400);
      expect(res.body.error.code).toBe("invalid");
    }
    const session = await BrowserSession.login("admin@demo.nexus");
    for (const field of ["action", "requestId", "actor"]) {
      const page = await session.get(`/admin/audit?${field}=a%00b${field === "actor" ? "@x.fr" : ""}`);
      expect(page.status, field).toBe(400);
    }
  });
});

describe("Cache-Control: no-store on everything with patient data", () => {
  it("pages and API answers", async () => {
    const doctorToken = await tokenFor("doctor@demo.nexus");
    const patient = await createPatient(doctorToken, { displayName: "Patiente Cache", consents: { care: true } });
    const doctor = await BrowserSession.login("doctor@demo.nexus");
    const patientSession = await BrowserSession.login("patient@demo.nexus");
    const pages: [BrowserSession, string][] = [
      [doctor, "/patients"],
      [doctor, `/patients/${patient.id}`],
      [doctor, "/patients/nouveau"],
      [doctor, "/compte"],
      [patientSession, "/mon-dossier"],
      [new BrowserSession(), "/connexion"],
    ];
    for (const [session, path] of pages) {
      const res = await session.get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("Cache-Control"), path).toMatch(/no-store/);
    }
    const apis = ["/api/v1/patients", `/api/v1/patients/${patient.id}/consents`, `/api/v1/patients/${patient.id}/images`, "/api/v1/me"];
    for (const path of apis) {
      const res = await api("GET", path, { token: doctorToken });
      expect(res.status, path).toBe(200);
      expect(res.headers.get("Cache-Control"), path).toMatch(/no-store/);
    }
    const patientToken = await tokenFor("patient@demo.nexus");
    const me = await api("GET", "/api/v1/me", { token: patientToken });
    const log = await api("GET", `/api/v1/patients/${me.body.patientId ?? me.body.patient?.id}/access-log`, { token: patientToken });
    expect(log.headers.get("Cache-Control")).toMatch(/no-store/);
    // Errors too (a 404 page can name what was asked for).
    expect((await doctor.get("/patients/00000000-0000-4000-8000-000000000000")).headers.get("Cache-Control")).toMatch(/no-store/);
  });

  it("static assets stay cacheable", async () => {
    const html = (await new BrowserSession().get("/connexion")).html;
    const asset = /\/assets\/[^"]+\.css/.exec(html)![0];
    const res = await fetch(baseUrl() + asset);
    expect(res.headers.get("Cache-Control")).toMatch(/max-age=31536000/);
  });

  it("public files (the favicon) are served, cacheable for an hour", async () => {
    const icon = await fetch(`${baseUrl()}/favicon.svg`);
    expect(icon.status).toBe(200);
    expect(icon.headers.get("Content-Type")).toMatch(/image\/svg\+xml/);
    expect(icon.headers.get("Cache-Control")).toMatch(/max-age=3600/);
  });
});

const adminUrl = postgresAdminUrl();
if (!adminUrl) console.log("skipped: no PostgreSQL (DATABASE_URL) for the database-unavailable test");

describe.skipIf(!adminUrl)("a database that refuses connections → 503 (PostgreSQL)", () => {
  let server: OwnServer;
  let token: string;
  let session: BrowserSession;
  beforeAll(async () => {
    server = await startOwnServer();
    token = (await api("POST", "/api/v1/tokens", { base: server.url, json: { email: "doctor@demo.nexus", password: "nexus-demo-2026" } })).body.token;
    session = new BrowserSession();
    const login = await fetch(`${server.url}/connexion`, { redirect: "manual" });
    expect(login.status).toBe(200);
  });
  afterAll(async () => {
    await adminQuery(adminUrl!, `alter database "${server.databaseName}" allow_connections true`).catch(() => {});
    await server?.stop();
  });

  it("answers 503 everywhere while the database is closed, and recovers", async () => {
    const cookie = await (async () => {
      const page = await fetch(`${server.url}/connexion`);
      const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1]!;
      const cookies = page.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
      const res = await fetch(`${server.url}/connexion`, {
        method: "POST",
        redirect: "manual",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: cookies },
        body: new URLSearchParams({ email: "doctor@demo.nexus", password: "nexus-demo-2026", csrf }),
      });
      expect(res.status).toBe(302);
      return res.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    })();
    void session;
    await adminQuery(adminUrl!, `alter database "${server.databaseName}" allow_connections false`);
    await adminQuery(adminUrl!, `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${server.databaseName}'`);

    const calls: [string, RequestInit][] = [
      ["/api/v1/tokens", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email: "doctor@demo.nexus", password: "nexus-demo-2026" }) }],
      ["/api/v1/me", { headers: { Authorization: `Bearer ${token}` } }],
      ["/api/v1/patients", { headers: { Authorization: `Bearer ${token}` } }],
    ];
    for (const [path, init] of calls) {
      const res = await fetch(server.url + path, init);
      const body = await res.text();
      expect(res.status, `${path}: ${body}`).toBe(503);
      expect(res.headers.get("Retry-After"), path).toMatch(/^\d+$/);
      expect(JSON.parse(body).error.code, path).toBe("unavailable");
    }
    for (const path of ["/patients", "/compte", "/"]) {
      const res = await fetch(server.url + path, { headers: { Cookie: cookie }, redirect: "manual" });
      const body = await res.text();
      expect(res.status, path).toBe(503);
      expect(res.headers.get("Retry-After"), path).toMatch(/^\d+$/);
      expect(body, path).toContain("Service momentanément indisponible");
      expect(body, path).not.toMatch(/Unexpected Server Error|at .*\.js:\d+/);
    }
    expect(server.output()).not.toMatch(/Unexpected Server Error|\n\s+at /);

    await adminQuery(adminUrl!, `alter database "${server.databaseName}" allow_connections true`);
    const back = await fetch(`${server.url}/api/v1/me`, { headers: { Authorization: `Bearer ${token}` } });
    expect(back.status).toBe(200);
  });
});
