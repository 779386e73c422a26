/**
 * `node server.mjs` serves pages with React's production build even when nobody set NODE_ENV (issue 15: it used to
 * render every page with react-dom-server's development build). A preload script lists, at exit, the React files
 * the server evaluated (Node's ESM loader also lists, unevaluated, both branches of React's index.js: only
 * `loaded` modules count); the server runs on its own PGlite directory. And `npm run dev` (`server.mjs --dev`, Vite's
 * development server in front of the app) starts and serves a page.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { serverEnv } from "./helpers/own-server";
import { startServer } from "./helpers/server";

/** A server of its own on an embedded database in `dir`, with no NODE_ENV at all (the type declares it always present). */
function embeddedEnv(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = serverEnv(path.join(dir, "data"), extra);
  Reflect.deleteProperty(env, "NODE_ENV");
  delete env.DATABASE_URL;
  return env;
}

describe("server.mjs without NODE_ENV", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "nexus-prodmode-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // Starting a server of its own (PGlite, migrations, the model) takes a while on a busy machine.
  it("renders pages with React's production build and reports NODE_ENV=production", { timeout: 120_000 }, async () => {
    const report = path.join(dir, "loaded.json");
    const preload = path.join(dir, "preload.cjs");
    writeFileSync(
      preload,
      `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(report)}, JSON.stringify({
         env: process.env.NODE_ENV,
         react: Object.entries(require.cache)
           .filter(([f, m]) => m.loaded && /[\\\\/]react(-dom)?[\\\\/]cjs[\\\\/]/.test(f))
           .map(([f]) => f),
       })));`,
    );
    const server = await startServer(embeddedEnv(dir, { NODE_OPTIONS: `--require ${preload}` }));
    try {
      const page = await fetch(`${server.url}/connexion`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("<html");
    } finally {
      await server.stop();
    }
    expect(existsSync(report), "the preload wrote its report at exit").toBe(true);
    const loaded = JSON.parse(readFileSync(report, "utf8")) as { env: string; react: string[] };
    expect(loaded.env).toBe("production");
    const names = loaded.react.map((f) => path.basename(f));
    expect(names.some((n) => n.startsWith("react-dom-server.node.production"))).toBe(true);
    expect(names.filter((n) => n.includes("development"))).toEqual([]);
  });
});

describe("server.mjs --dev (npm run dev)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "nexus-devmode-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("starts Vite's development server and serves a page from the sources", { timeout: 120_000 }, async () => {
    const server = await startServer(embeddedEnv(dir), { args: ["--dev"], timeoutMs: 100_000 });
    try {
      const page = await fetch(`${server.url}/connexion`);
      expect(page.status).toBe(200);
      // Vite serves the sources: the stylesheet is the app's own file, compiled on request.
      expect(await page.text()).toContain('href="/app/tailwind.css"');
      const css = await fetch(`${server.url}/app/tailwind.css`, { headers: { Accept: "text/css,*/*;q=0.1" } });
      expect([css.status, css.headers.get("Content-Type")]).toEqual([200, "text/css"]);
      expect(await css.text()).toMatch(/\.btn\b/);
      // The viewer's module (Cornerstone3D, dicom-parser pre-bundled) is transformed without error.
      expect((await fetch(`${server.url}/app/viewer/engine.client.ts`)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});
