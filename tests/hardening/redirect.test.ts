/**
 * Open redirects (issue 11, item 1): the one safe-redirect helper against a list of known bypasses, and the two
 * redirecting routes (`/langue?retour=`, `/connexion` `redirectTo`) over HTTP: never off-origin, never a 500.
 */
import { describe, expect, it } from "vitest";
import { safeRedirectPath } from "../../app/http/redirect.server";
import { baseUrl, BrowserSession } from "../helpers/http";
import { BYPASSES, SAFE } from "./redirect-bypasses";

function sameOrigin(location: string | null): boolean {
  if (location === null) return false;
  // Resolve the way a browser does (WHATWG URL): tabs/newlines stripped, `\` read as `/`.
  return new URL(location, baseUrl()).origin === new URL(baseUrl()).origin;
}

describe("safeRedirectPath", () => {
  it.each(BYPASSES)("refuses %j", (value) => {
    const path = safeRedirectPath(value, "/fallback");
    expect(path).toBe("/fallback");
  });

  it.each(SAFE)("keeps %j", (value) => {
    expect(safeRedirectPath(value)).toBe(value);
  });

  it("refuses non-strings and overlong values", () => {
    expect(safeRedirectPath(null)).toBe("/");
    expect(safeRedirectPath(["/a"])).toBe("/");
    expect(safeRedirectPath(`/${"a".repeat(5000)}`)).toBe("/");
  });
});

describe("redirecting routes", () => {
  it.each(BYPASSES)("/langue?retour=%j stays on the origin (no 500)", async (value) => {
    const res = await fetch(`${baseUrl()}/langue?l=fr&retour=${encodeURIComponent(value)}`, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("Location")).toBe("/");
  });

  it("/langue keeps a same-origin path", async () => {
    const res = await fetch(`${baseUrl()}/langue?l=en&retour=${encodeURIComponent("/patients?x=1")}`, { redirect: "manual" });
    expect(res.headers.get("Location")).toBe("/patients?x=1");
  });

  it("the login's redirectTo never leaves the origin, CR/LF included (no 500)", async () => {
    for (const value of ["/\t/evil.example", "/\\evil.example", "/\r\n/evil.example", "%2F%2Fevil.example", "https://evil.example"]) {
      const session = new BrowserSession();
      const res = await session.post("/connexion", { email: "doctor@demo.nexus", password: "nexus-demo-2026", redirectTo: value });
      expect(res.status, value).toBe(302);
      expect(sameOrigin(res.headers.get("Location")), value).toBe(true);
      expect(res.headers.get("Location"), value).toBe("/");
    }
  });
});
