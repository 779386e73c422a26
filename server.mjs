// The Nexus HTTP server: node:http in front of the Remix request handler (the edge's rules are in http-edge.mjs).
//   node server.mjs         production build from build/ (npm start builds it first)
//   node server.mjs --dev   Vite dev server with hot reload
// React and Remix pick their production builds from NODE_ENV, read when they are first loaded: it must be
// set before any of them is imported (hence the dynamic imports below). Production unless --dev; an explicit
// NODE_ENV=production with --dev stays as given.
// WEB_CONCURRENCY=n|auto (PostgreSQL only) runs n worker processes behind one port (cluster.mjs).
const dev = process.argv.includes("--dev");
if (!dev) process.env.NODE_ENV = "production";
else process.env.NODE_ENV ??= "development";

const { runPrimary, workerCount, workerRole } = await import("./cluster.mjs");
const processes = workerRole === null ? workerCount(process.env, dev) : 1;
if (processes > 1) runPrimary(processes);
else await serve();

async function serve() {
  const { randomUUID } = await import("node:crypto");
  const http = await import("node:http");
  const { clientOf, createAccessLog, pathOf, refusedBodyLength, remixHandler, trustProxy } = await import("./http-edge.mjs");

  // NEXUS_TIMING=1 (benchmarks): stage timings per request in the access log, through the load context
  // (app/http/timing.server.ts).
  const timings = process.env.NEXUS_TIMING === "1";

  const port = Number(process.env.PORT ?? 3000);
  const host = process.env.HOST ?? "127.0.0.1";

  const vite = dev
    ? await import("vite").then((v) => v.createServer({ server: { middlewareMode: true } }))
    : undefined;

  const loadBuild = () =>
    vite ? vite.ssrLoadModule("virtual:remix/server-build") : import("./build/server/index.js");

  // The access log: one pino JSON line per request with its X-Request-Id, written in batches (http-edge.mjs).
  // Never bodies, never query strings (they can carry tokens), never ids in paths (they name patients): the audit trail
  // records who touched what, for admins only.
  const accessLog = createAccessLog({ enabled: process.env.NEXUS_ACCESS_LOG !== "0" });
  const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
  const OPAQUE = /(?<=\/)[A-Za-z0-9_-]{32,}(?=\/|$)/g;
  const logPath = (path) => path.replace(UUID, ":id").replace(OPAQUE, ":token").slice(0, 200);

  // Forwarded headers (client address, protocol, host) are believed only from the proxy (Caddy on loopback by default).
  const trust = trustProxy(process.env.TRUST_PROXY ?? "loopback");

  // Remix aborts an action whose Origin differs from its Host with a bare 500. We flag such requests instead and let
  // the app's CSRF check refuse them with an audited 403 (app/accounts/csrf.server.ts); bearer-token API calls,
  // which carry no cookies, are unaffected.
  const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
  const flagForeignOrigin = (req, client) => {
    const origin = req.headers.origin;
    if (origin === undefined || SAFE_METHODS.has(req.method)) return;
    let originHost = null;
    try {
      originHost = new URL(origin).host;
    } catch {
      /* "null" or garbage: foreign */
    }
    if (originHost !== client.host) {
      delete req.headers.origin;
      req.headers["x-nexus-foreign-origin"] = origin;
    }
  };

  // Static files: the build's hashed assets (immutable), and the other public files (favicon…) looked up for their
  // own paths only — a static handler in front of every request cost a file-system stat each (≈ 8 % of an API
  // request's CPU in bench:http's profile). In development Vite serves them.
  let serveStatic = null;
  if (!vite) {
    const { default: staticFiles } = await import("serve-static");
    const { readdirSync } = await import("node:fs");
    const assets = staticFiles("build/client", { immutable: true, maxAge: "1y", index: false });
    const publicFiles = new Set(readdirSync("build/client", { withFileTypes: true }).filter((e) => e.isFile()).map((e) => `/${e.name}`));
    const publicStatic = staticFiles("build/client", { maxAge: "1h", index: false });
    serveStatic = (req, res, path, next) => {
      if (path.startsWith("/assets/")) assets(req, res, next);
      else if (publicFiles.has(path)) publicStatic(req, res, next);
      else next();
    };
  }

  // A start that cannot go on (wrong configuration, database behind, missing key, unusable model) says why in one
  // line; the stack only helps a developer (LOG_LEVEL=debug).
  const { build, info } = await (async () => {
    const build = await loadBuild();
    return { build, info: await build.entry.module.boot() };
  })().catch((err) => {
    console.error(`Nexus cannot start: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.LOG_LEVEL === "debug" && err instanceof Error) console.error(err.stack);
    process.exit(1);
  });

  const remix = remixHandler({
    build: vite ? loadBuild : build,
    mode: dev ? "development" : "production",
    getLoadContext: (_req, res, client) => ({ requestId: res.requestId, clientIp: client.ip ?? null, timing: res.timing }),
    unavailableFlag: "databaseUnavailable",
  });

  // Every request: an id, the security headers and its access-log line; the foreign-origin flag; the body limit
  // (over it: 413 before anything reads the body, see http-edge.mjs); static files; then the Remix app.
  // Plain node:http, no Express: its router and request decoration cost ≈ 0.1 ms of CPU per request (a third of a
  // bare server's) for nothing the app uses (docs/decisions/2026-12-02-plain-http-edge.md).
  const handle = (req, res) => {
    const requestId = randomUUID();
    const started = process.hrtime.bigint();
    const stages = timings ? {} : undefined;
    res.requestId = requestId;
    res.timing = stages;
    res.setHeader("X-Request-Id", requestId);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "same-origin");
    res.setHeader("X-Frame-Options", "DENY");
    const path = pathOf(req);
    res.on("finish", () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = { requestId, method: req.method, path: logPath(path), status: res.statusCode, ms: Math.round(ms * 10) / 10 };
      if (stages) line.timing = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, Math.round(v * 100) / 100]));
      if (res.statusCode >= 500) {
        accessLog.error(line, "request");
        accessLog.flush();
      } else accessLog.info(line, "request");
    });
    const client = clientOf(req, trust);
    flagForeignOrigin(req, client);
    if (refusedBodyLength(req, res)) return;
    const app = () => void remix(req, res, client);
    if (vite) vite.middlewares(req, res, app);
    else serveStatic(req, res, path, app);
  };

  const server = http.createServer(handle);
  server.listen(port, host, () => {
    if (workerRole === "follower") return;
    const address = server.address();
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
    const where = info.database === "pglite" ? `embedded PGlite in ${info.dataDir}` : "PostgreSQL (DATABASE_URL)";
    const lines = [`Nexus is listening on ${url}  (database: ${where}; images: ${info.storage})`, `AI model: ${info.model}`];
    if (workerRole) lines.push(`Worker processes: ${process.env.WEB_CONCURRENCY} (this one leads: migrations, demo accounts, DIMSE, audit checkpoints)`);
    if (info.dicom) lines.push(`DICOM (DIMSE C-ECHO, C-STORE) listening: ${info.dicom}`);
    if (info.pacsPush) lines.push(`Results pushed to the PACS (C-STORE): ${info.pacsPush}`);
    if (info.demoAccounts.length > 0) {
      lines.push(`Demo accounts — password: ${info.demoPassword}`);
      for (const a of info.demoAccounts) lines.push(`  ${a.role.padEnd(11)} ${a.email}`);
    }
    console.log(lines.join("\n"));
  });

  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => {
      server.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 5000).unref();
    });
  }
}
