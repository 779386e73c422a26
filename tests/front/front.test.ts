/**
 * The HTTPS front, through a real Caddy: Debian's caddy with caddy/Caddyfile.local, which imports the same site
 * settings as the production Caddyfile (caddy/nexus-site.caddy: headers, compression, size limits), in front of
 * the test server, on free loopback ports with a throwaway local CA. Checks: HTTP → HTTPS redirect; TLS 1.0/1.1
 * refused and 1.2/1.3 accepted; security headers; the 413 of an oversize upload (the app's, and Caddy's backstops);
 * the client address forwarded and a forged X-Forwarded-For dropped; Remix pages working under the CSP in
 * Chromium. Skipped, with one line, where /usr/bin/caddy is absent (.ci/run installs it).
 */
import { existsSync } from "node:fs";
import http from "node:http";
import { PassThrough, Readable } from "node:stream";
import { connect } from "node:tls";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CADDY } from "../../scripts/start-https";
import { DEMO_PASSWORD } from "../helpers/http";
import { MiB, multipart, request, request2, startTestFront, type Answer, type TestFront } from "./https";
import { ARTIFACTS, hasChromium, useChromium } from "../helpers/browser";

const hasCaddy = existsSync(CADDY);
if (!hasCaddy) console.log(`skipped: no caddy at ${CADDY}`);

/** A valid JPEG head padded to exactly `size` bytes (the vault sniffs the head, then counts every byte). */
async function jpegOfSize(size: number): Promise<Buffer> {
  const head = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 80, g: 80, b: 80 } } })
    .jpeg()
    .toBuffer();
  return Buffer.concat([head, Buffer.alloc(size - head.length, 0x5a)]);
}

/** The TLS handshake with the front for one protocol version: the version agreed, or the error. */
function handshake(port: number, ca: Buffer, version: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3") {
  return new Promise<{ ok: true; protocol: string | null; authorized: boolean } | { ok: false; code: string }>((resolve) => {
    const socket = connect(
      // SECLEVEL=0 lets this client offer TLS 1.0/1.1 at all, so a refusal can only come from the server.
      { host: "127.0.0.1", port, ca, minVersion: version, maxVersion: version, ciphers: "DEFAULT@SECLEVEL=0" },
      () => {
        resolve({ ok: true, protocol: socket.getProtocol(), authorized: socket.authorized });
        socket.end();
      },
    );
    socket.on("error", (error: NodeJS.ErrnoException) => resolve({ ok: false, code: error.code ?? error.message }));
  });
}

function plainGet(url: string): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, location: res.headers.location });
      })
      .on("error", reject);
  });
}

/** The directives of a Content-Security-Policy header, by name. */
function cspDirectives(header: string | string[] | undefined): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const part of String(header ?? "").split(";")) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) map.set(name.toLowerCase(), sources);
  }
  return map;
}

function expectSecurityHeaders(res: Answer, where: string) {
  const h = res.headers;
  const hsts = /max-age=(\d+)/.exec(String(h["strict-transport-security"]));
  expect(hsts, `${where}: Strict-Transport-Security`).not.toBeNull();
  expect(Number(hsts![1]), `${where}: HSTS max-age`).toBeGreaterThanOrEqual(31_536_000);
  const csp = cspDirectives(h["content-security-policy"]);
  expect(csp.get("frame-ancestors"), `${where}: frame-ancestors`).toEqual(["'none'"]);
  expect(csp.get("default-src"), `${where}: default-src`).toEqual(["'self'"]);
  expect(csp.get("object-src"), `${where}: object-src`).toEqual(["'none'"]);
  expect(csp.get("base-uri"), `${where}: base-uri`).toEqual(["'self'"]);
  expect(csp.get("form-action"), `${where}: form-action`).toEqual(["'self'"]);
  expect(csp.get("connect-src"), `${where}: connect-src`).toEqual(["'self'"]);
  expect(csp.get("script-src"), `${where}: script-src`).toContain("'self'");
  expect(csp.get("script-src"), `${where}: no eval`).not.toContain("'unsafe-eval'");
  // Exactly one value each: Caddy replaces the app's own copies instead of adding a second one.
  expect(h["x-content-type-options"], `${where}: X-Content-Type-Options`).toBe("nosniff");
  expect(h["referrer-policy"], `${where}: Referrer-Policy`).toBe("same-origin");
  expect(h["x-frame-options"], `${where}: X-Frame-Options`).toBe("DENY");
  expect(h.server, `${where}: no Server header`).toBeUndefined();
}

describe.skipIf(!hasCaddy)("HTTPS front (Caddy with caddy/Caddyfile.local)", () => {
  let front: TestFront;
  let doctor: string;
  let admin: string;
  let patientId: string;

  const api = (method: string, path: string, options: { token?: string; json?: unknown; headers?: Record<string, string>; localAddress?: string } = {}) =>
    request(front.url + path, {
      method,
      ca: front.ca,
      localAddress: options.localAddress,
      headers: {
        ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}),
        ...(options.json !== undefined ? { "Content-Type": "application/json" } : {}),
        ...options.headers,
      },
      body: options.json === undefined ? undefined : Buffer.from(JSON.stringify(options.json)),
    });

  beforeAll(async () => {
    front = await startTestFront();
    const login = async (email: string) => {
      const res = await api("POST", "/api/v1/tokens", { json: { email, password: DEMO_PASSWORD } });
      expect(res.status, `login ${email} through Caddy`).toBe(201);
      return res.json.token as string;
    };
    doctor = await login("doctor@demo.nexus");
    admin = await login("admin@demo.nexus");
    const patient = await api("POST", "/api/v1/patients", { token: doctor, json: { displayName: "Patiente Frontal", consents: { care: true } } });
    expect(patient.status).toBe(201);
    patientId = patient.json.id;
  });
  afterAll(async () => {
    await front?.close();
  });

  it("redirects HTTP to HTTPS permanently, keeping the path and the query", async () => {
    const res = await plainGet(`${front.httpUrl}/patients?tri=nom`);
    expect(res.status).toBe(308);
    expect(res.location).toBe(`${front.url}/patients?tri=nom`);
    const followed = await request(res.location!, { ca: front.ca });
    expect(followed.status).toBe(302); // anonymous: on to the login page, over HTTPS
    expect(followed.headers.location).toMatch(/^\/connexion/);
  });

  it("refuses TLS 1.0 and 1.1 (protocol_version alert) and accepts TLS 1.2 and 1.3 with the local CA's certificate", async () => {
    for (const version of ["TLSv1", "TLSv1.1"] as const) {
      expect(await handshake(front.httpsPort, front.ca, version), version).toEqual({
        ok: false,
        code: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION",
      });
    }
    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      expect(await handshake(front.httpsPort, front.ca, version), version).toEqual({ ok: true, protocol: version, authorized: true });
    }
  });

  it("sends the security headers on pages and API answers, compresses text, and the app sees HTTPS (Secure cookies)", async () => {
    const page = await request(`${front.url}/connexion`, { ca: front.ca, headers: { "Accept-Encoding": "gzip" } });
    expect(page.status).toBe(200);
    expectSecurityHeaders(page, "login page");
    expect(page.headers["content-encoding"]).toBe("gzip");
    const cookies = page.headers["set-cookie"] ?? [];
    expect(cookies.length).toBeGreaterThan(0);
    for (const cookie of cookies) expect(cookie).toMatch(/;\s*Secure/i);

    const apiAnswer = await api("GET", "/api/v1/me");
    expect(apiAnswer.status).toBe(401);
    expectSecurityHeaders(apiAnswer, "API 401");

    // An image is not compressed again (it is already compressed, or encrypted at rest).
    const asset = await request(`${front.url}/favicon.ico`, { ca: front.ca, headers: { "Accept-Encoding": "gzip" } });
    if (asset.status === 200) expect(asset.headers["content-encoding"]).toBeUndefined();
  });

  it("passes an upload of exactly 50 MiB, and refuses 50 MiB + 1 byte with the app's own 413 (HTTP/1.1 and HTTP/2)", async () => {
    const path = `/api/v1/patients/${patientId}/images`;
    const headers = (form: { contentType: string }) => ({ Authorization: `Bearer ${doctor}`, "Content-Type": form.contentType });

    const exact = multipart("exact.jpg", "image/jpeg", await jpegOfSize(50 * MiB));
    const ok = await request(front.url + path, { method: "POST", ca: front.ca, headers: headers(exact), body: exact.body });
    expect(ok.status, ok.text.slice(0, 200)).toBe(201);
    expect(ok.json.size).toBe(50 * MiB);

    const over = multipart("over.jpg", "image/jpeg", await jpegOfSize(50 * MiB + 1));
    for (const [name, send] of [["HTTP/1.1", request], ["HTTP/2", request2]] as const) {
      const res = await send(front.url + path, { method: "POST", ca: front.ca, headers: headers(over), body: over.body });
      expect(res.status, `${name}: ${res.text.slice(0, 200)}`).toBe(413);
      expect(res.json?.error?.code, name).toBe("too_large");
      // The app's answer (it carries the app's request id), not Caddy's backstop.
      expect(res.headers["x-request-id"], `${name}: answered by the app`).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("refuses a body that declares more than the limit at once, with 413 from Caddy, before reading it", async () => {
    const form = multipart("huge.jpg", "image/jpeg", Buffer.alloc(1024));
    // Content-Length says 200 MiB but only 1 KiB follows, and the body never ends: an answer can only come from the
    // declared length.
    const body = new PassThrough();
    body.write(form.body);
    const started = Date.now();
    const res = await request(`${front.url}/api/v1/patients/${patientId}/images`, {
      method: "POST",
      ca: front.ca,
      headers: { Authorization: `Bearer ${doctor}`, "Content-Type": form.contentType, "Content-Length": String(200 * MiB) },
      body,
    }).finally(() => body.destroy());
    expect(res.status).toBe(413);
    expect(res.json?.error?.code).toBe("too_large");
    expect(res.headers["x-request-id"], "answered by Caddy").toBeUndefined();
    expectSecurityHeaders(res, "Caddy's 413");
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("stops a body without Content-Length past 51 MiB with 413, not Caddy 2.6's 502 (caddyserver/caddy#5652)", async () => {
    // JSON to the token endpoint, chunked: the app itself cuts it at its 64 KiB limit (http-edge.mjs) with 413;
    // Caddy's backstop would answer 413 too, never 502.
    let sent = 0;
    const body = Readable.from(
      (function* () {
        const chunk = Buffer.alloc(MiB, 0x20);
        while (sent < 60 * MiB) {
          sent += chunk.length;
          yield chunk;
        }
      })(),
      { objectMode: false },
    );
    // The app answers 413 and reads on at most 16 MiB (a lingering close, http-edge.mjs) before closing; the client,
    // still writing, may see that close (ECONNRESET) before it reads the answer. Either way: never a 502, and the body
    // is not read to its end.
    const res = await request(`${front.url}/api/v1/tokens`, {
      method: "POST",
      ca: front.ca,
      headers: { "Content-Type": "application/json", "Transfer-Encoding": "chunked" },
      body,
    }).catch((error: NodeJS.ErrnoException) => error);
    if (res instanceof Error) {
      expect(res.code).toMatch(/^(ECONNRESET|EPIPE)$/);
      expect(sent).toBeLessThan(60 * MiB);
      return;
    }
    expect(res.status, res.text.slice(0, 200)).toBe(413);
    expect(res.json?.error?.code).toBe("too_large");
  });

  it("forwards the client's address to the app and drops a forged X-Forwarded-For", async () => {
    // The client connects from 127.0.0.5 (any 127/8 address is loopback) and claims to be 203.0.113.9.
    const res = await api("GET", "/api/v1/me", { token: admin, localAddress: "127.0.0.5", headers: { "X-Forwarded-For": "203.0.113.9" } });
    expect(res.status).toBe(200);
    const requestId = res.headers["x-request-id"] as string;
    const audit = await api("GET", `/api/v1/audit?requestId=${requestId}`, { token: admin });
    expect(audit.status).toBe(200);
    expect(audit.json.events).toHaveLength(1);
    expect(audit.json.events[0].ip).toBe("127.0.0.5");
  });

  describe.skipIf(!hasChromium)("in Chromium", () => {
    const browser = useChromium();

    it("runs Remix pages under the CSP: no violation, hydration and client-side navigation work", async () => {
      const context = await browser().newContext({ ignoreHTTPSErrors: true, locale: "fr-FR" });
      await context.addInitScript(() => {
        const w = window as unknown as { nexusCsp: string[] };
        w.nexusCsp = [];
        document.addEventListener("securitypolicyviolation", (e) => w.nexusCsp.push(`${e.violatedDirective} ${e.blockedURI}`));
      });
      const page = await context.newPage();
      // What a CSP blocks shows up twice: as a console message ("Refused to … because it violates the following
      // Content Security Policy directive …") and as a securitypolicyviolation event. (Other console errors, e.g. a
      // missing favicon, are the app's business, not the front's: they appear without Caddy too.)
      const problems: string[] = [];
      page.on("console", (m) => {
        if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console ${m.type()}: ${m.text()}`);
      });
      const violations = () => page.evaluate(() => (window as unknown as { nexusCsp: string[] }).nexusCsp);

      const response = await page.goto(`${front.url}/connexion`);
      expect(response?.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
      await page.getByLabel("Adresse e-mail").fill("doctor@demo.nexus");
      await page.getByLabel("Mot de passe").fill(DEMO_PASSWORD);
      await page.getByRole("button", { name: "Se connecter" }).click();
      await page.getByRole("heading", { name: "Mes patients" }).waitFor();
      // Hydrated: Remix's inline scripts ran (they would be blocked by a CSP Remix does not work under).
      await expect.poll(() => page.evaluate(() => typeof (window as unknown as { __remixContext?: unknown }).__remixContext)).toBe("object");
      await expect.poll(() => page.evaluate(() => typeof (window as unknown as { __remixRouter?: unknown }).__remixRouter)).toBe("object");
      // A client-side navigation keeps the page (a marker on window survives only without a full reload).
      await page.evaluate(() => ((window as unknown as { nexusMarker: number }).nexusMarker = 7));
      await page.getByRole("navigation", { name: "Navigation principale" }).getByRole("link", { name: "Nouveau patient", exact: true }).click();
      await page.waitForURL("**/patients/nouveau");
      await page.getByLabel("Nom affiché").waitFor();
      expect(await page.evaluate(() => (window as unknown as { nexusMarker?: number }).nexusMarker)).toBe(7);
      await page.screenshot({ path: `${ARTIFACTS}/front-csp-new-patient.png`, fullPage: true });
      expect(await violations()).toEqual([]);
      expect(problems).toEqual([]);
      await context.close();
    });
  });
});
