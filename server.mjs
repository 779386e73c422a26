// The Nexus HTTP server: Express in front of the Remix request handler.
//   node server.mjs         production build from build/ (npm start builds it first)
//   node server.mjs --dev   Vite dev server with hot reload
// React, Remix and Express pick their production builds from NODE_ENV, read when they are first loaded: it must be
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
  const { createAccessLog, declaredBodyLimit, remixHandler } = await import("./http-edge.mjs");
  const { default: express } = await import("express");

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

  const app = express();
  app.disable("x-powered-by");
  // Forwarded headers (client address, protocol) are believed only from the proxy (Caddy on loopback by default).
  app.set("trust proxy", process.env.TRUST_PROXY ?? "loopback");

  app.use((req, res, next) => {
    const requestId = randomUUID();
    res.locals.requestId = requestId;
    res.setHeader("X-Request-Id", requestId);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "same-origin");
    res.setHeader("X-Frame-Options", "DENY");
    const started = process.hrtime.bigint();
    const stages = timings ? {} : undefined;
    res.locals.timing = stages;
    res.on("finish", () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = { requestId, method: req.method, path: logPath(req.path), status: res.statusCode, ms: Math.round(ms * 10) / 10 };
      if (stages) line.timing = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, Math.round(v * 100) / 100]));
      if (res.statusCode >= 500) {
        accessLog.error(line, "request");
        accessLog.flush();
      } else accessLog.info(line, "request");
    });
    next();
  });

  // Remix aborts an action whose Origin differs from its Host with a bare 500. We flag such requests instead and let
  // the app's CSRF check refuse them with an audited 403 (app/accounts/csrf.server.ts); bearer-token API calls,
  // which carry no cookies, are unaffected.
  const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
  app.use((req, _res, next) => {
    const origin = req.headers.origin;
    if (origin !== undefined && !SAFE_METHODS.has(req.method)) {
      const forwarded = req.headers["x-forwarded-host"];
      const host = (typeof forwarded === "string" && forwarded.split(",")[0].trim()) || req.headers.host;
      let originHost = null;
      try {
        originHost = new URL(origin).host;
      } catch {
        /* "null" or garbage: foreign */
      }
      if (originHost !== host) {
        delete req.headers.origin;
        req.headers["x-nexus-foreign-origin"] = origin;
      }
    }
    next();
  });

  // Bodies over the route's limit are refused (413) before anything reads them (see http-edge.mjs).
  app.use(declaredBodyLimit);

  if (vite) {
    app.use(vite.middlewares);
  } else {
    app.use("/assets", express.static("build/client/assets", { immutable: true, maxAge: "1y" }));
    // The other public files (favicon…) are looked up for their own paths only: a static middleware in front of
    // every request cost a file-system stat each (≈ 8 % of an API request's CPU in bench:http's profile).
    const { readdirSync } = await import("node:fs");
    const publicFiles = new Set(readdirSync("build/client", { withFileTypes: true }).filter((e) => e.isFile()).map((e) => `/${e.name}`));
    const publicStatic = express.static("build/client", { maxAge: "1h", index: false });
    app.use((req, res, next) => (publicFiles.has(req.path) ? publicStatic(req, res, next) : next()));
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

  app.all(
    "*",
    remixHandler({
      build: vite ? loadBuild : build,
      mode: dev ? "development" : "production",
      getLoadContext: (req, res) => ({ requestId: res.locals.requestId, clientIp: req.ip ?? null, timing: res.locals.timing }),
      unavailableFlag: "databaseUnavailable",
    }),
  );

  const server = app.listen(port, host, () => {
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
