/**
 * npm run start:https [-- --https-port 8443 --http-port 8080 --no-build]
 *
 * Nexus over HTTPS on this machine: builds the app, starts it on a free loopback port (HOST=127.0.0.1,
 * TRUST_PROXY=loopback) and Debian's Caddy in front of it with caddy/Caddyfile.local (`tls internal`: a
 * certificate from Caddy's own local CA, nothing installed in the system trust store). Prints the URL and the path
 * of the local CA's root certificate (under DATA_DIR/caddy/), and stops both on Ctrl-C.
 *
 * The Caddy part is exported for the tests (tests/front, tests/browser/journey.test.ts), which put the same local
 * configuration in front of the test server.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { connect } from "node:tls";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** Debian's caddy (apt-get install caddy); CADDY_PATH overrides. */
export const CADDY = process.env.CADDY_PATH ?? "/usr/bin/caddy";
export const LOCAL_CADDYFILE = path.join(ROOT, "caddy", "Caddyfile.local");

export interface CaddyFront {
  /** https://127.0.0.1:<httpsPort> */
  url: string;
  /** http://127.0.0.1:<httpPort>, which redirects to `url`. */
  httpUrl: string;
  httpsPort: number;
  httpPort: number;
  /** The local CA's root certificate (PEM): trust it to verify `url`. */
  rootCert: string;
  process: ChildProcess;
  /** Stops Caddy and waits for it to exit. */
  stop(): Promise<void>;
}

export interface CaddyFrontOptions {
  /** The app, host:port (e.g. 127.0.0.1:3000). */
  upstream: string;
  /** Where Caddy keeps its state (XDG_DATA_HOME, XDG_CONFIG_HOME): the local CA lives there. */
  stateDir: string;
  /** Fixed ports; by default free ports are picked (and picked again if Caddy cannot bind them). */
  httpsPort?: number;
  httpPort?: number;
  /** Caddy's log lines worth showing (errors); default: stderr. */
  onLog?: (line: string) => void;
}

/** The local CA's root certificate inside a Caddy state directory. */
export const localRootCert = (stateDir: string) =>
  path.join(stateDir, "data", "caddy", "pki", "authorities", "local", "root.crt");

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts Caddy with caddy/Caddyfile.local in front of `upstream`; resolves once HTTPS answers with its local CA. */
export async function startCaddyFront(options: CaddyFrontOptions): Promise<CaddyFront> {
  if (!existsSync(CADDY)) throw new Error(`no caddy at ${CADDY} (apt-get install caddy)`);
  const fixed = options.httpsPort !== undefined || options.httpPort !== undefined;
  let lastError: unknown;
  for (let attempt = 0; attempt < (fixed ? 1 : 3); attempt++) {
    const httpsPort = options.httpsPort ?? (await freePort());
    const httpPort = options.httpPort ?? (await freePort());
    try {
      return await launch(options, httpsPort, httpPort);
    } catch (error) {
      lastError = error;
      if (!/address already in use/i.test(String(error))) break;
    }
  }
  throw lastError;
}

async function launch(options: CaddyFrontOptions, httpsPort: number, httpPort: number): Promise<CaddyFront> {
  mkdirSync(path.join(options.stateDir, "data"), { recursive: true, mode: 0o700 });
  mkdirSync(path.join(options.stateDir, "config"), { recursive: true, mode: 0o700 });
  const child = spawn(CADDY, ["run", "--config", LOCAL_CADDYFILE, "--adapter", "caddyfile"], {
    cwd: ROOT,
    env: {
      ...process.env,
      XDG_DATA_HOME: path.join(options.stateDir, "data"),
      XDG_CONFIG_HOME: path.join(options.stateDir, "config"),
      NEXUS_HTTPS_PORT: String(httpsPort),
      NEXUS_HTTP_PORT: String(httpPort),
      NEXUS_UPSTREAM: options.upstream,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = options.onLog ?? ((line: string) => process.stderr.write(`[caddy] ${line}\n`));
  const recent: string[] = [];
  const onOutput = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (!line.trim()) continue;
      recent.push(line);
      if (recent.length > 40) recent.shift();
      // Caddy logs JSON; its warnings here are expected (admin off, no OCSP for a local CA): show errors only.
      if (/"level":"(error|fatal|panic)"/.test(line) || !line.startsWith("{")) log(line);
    }
  };
  child.stdout!.on("data", onOutput);
  child.stderr!.on("data", onOutput);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const rootCert = localRootCert(options.stateDir);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const early = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(r, 150))]);
    if (early !== undefined || child.exitCode !== null) {
      throw new Error(`caddy exited (code ${child.exitCode}) before serving HTTPS:\n${recent.join("\n")}`);
    }
    if (existsSync(rootCert) && (await handshakes(httpsPort, rootCert))) break;
    if (Date.now() > deadline) {
      child.kill("SIGTERM");
      throw new Error(`caddy did not serve HTTPS on 127.0.0.1:${httpsPort} within 20 s:\n${recent.join("\n")}`);
    }
  }
  return {
    url: `https://127.0.0.1:${httpsPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    httpsPort,
    httpPort,
    rootCert,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
    },
  };
}

/** True when a TLS handshake with 127.0.0.1:port succeeds and the certificate chains to `caFile`. */
function handshakes(port: number, caFile: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, ca: readFileSync(caFile), timeout: 2000 }, () => {
      socket.end();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
    socket.on("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

// ---- npm run start:https ------------------------------------------------------------------------------------------

/** Starts `node server.mjs` on a free loopback port; resolves with the port once it listens. */
function startApp(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["server.mjs"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let seen = "";
    let resolved = false;
    const onData = (stream: NodeJS.WriteStream) => (chunk: Buffer) => {
      stream.write(chunk);
      if (resolved) return;
      seen += chunk.toString();
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(seen);
      if (match) {
        resolved = true;
        resolve({ child, port: Number(match[1]) });
      }
    };
    child.stdout!.on("data", onData(process.stdout));
    child.stderr!.on("data", onData(process.stderr));
    child.once("exit", (code) => {
      if (!resolved) reject(new Error(`the app exited with code ${code} before listening`));
    });
  });
}

/** A path relative to the working directory when it lies below it, absolute otherwise. */
function shortPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith("..") ? file : relative;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "https-port": { type: "string", default: process.env.NEXUS_HTTPS_PORT ?? "8443" },
      "http-port": { type: "string", default: process.env.NEXUS_HTTP_PORT ?? "8080" },
      "no-build": { type: "boolean", default: false },
    },
  });
  const httpsPort = Number(values["https-port"]);
  const httpPort = Number(values["http-port"]);
  for (const [name, port] of [["--https-port", httpsPort], ["--http-port", httpPort]] as const) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name} must be a TCP port`);
  }
  if (!existsSync(CADDY)) {
    console.error(`No caddy at ${CADDY}. Install Debian's: apt-get install caddy (or set CADDY_PATH).`);
    process.exit(1);
  }
  if (!values["no-build"]) {
    const build = spawnSync("npm", ["run", "-s", "build"], { cwd: ROOT, stdio: "inherit" });
    if (build.status !== 0) process.exit(build.status ?? 1);
  }

  const dataDir = path.resolve(ROOT, process.env.DATA_DIR ?? "data");
  const stateDir = path.join(dataDir, "caddy");
  const url = `https://127.0.0.1:${httpsPort}`;
  const app = await startApp({
    ...process.env,
    DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: "0",
    // Caddy runs on loopback: forwarded headers are believed from loopback only.
    TRUST_PROXY: "loopback",
    PUBLIC_URL: process.env.PUBLIC_URL ?? url,
  });
  let front: CaddyFront;
  try {
    front = await startCaddyFront({ upstream: `127.0.0.1:${app.port}`, stateDir, httpsPort, httpPort });
  } catch (error) {
    app.child.kill("SIGTERM");
    console.error(`Could not start Caddy: ${(error as Error).message}`);
    process.exit(1);
  }

  console.log(
    [
      "",
      `Nexus over HTTPS: ${front.url}   (${front.httpUrl} redirects there; the app itself listens on 127.0.0.1:${app.port})`,
      `Local CA root certificate: ${front.rootCert}`,
      `  e.g. curl --cacert ${shortPath(front.rootCert)} ${front.url}/healthz`,
      "  or import it into a browser profile as a trusted authority (it is valid for this machine only).",
      "Ctrl-C stops both.",
    ].join("\n"),
  );

  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    const appExited = new Promise((r) => (app.child.exitCode !== null ? r(null) : app.child.once("exit", r)));
    if (app.child.exitCode === null) app.child.kill("SIGTERM");
    await Promise.all([front.stop(), appExited]);
    process.exit(code);
  };
  process.on("SIGINT", () => void stopAll(0));
  process.on("SIGTERM", () => void stopAll(0));
  app.child.once("exit", (code) => {
    if (stopping) return;
    console.error(`The app stopped (code ${code}); stopping Caddy.`);
    void stopAll(1);
  });
  front.process.once("exit", (code) => {
    if (stopping) return;
    console.error(`Caddy stopped (code ${code}); stopping the app.`);
    void stopAll(1);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((error: Error) => {
    console.error(error.message);
    process.exit(1);
  });
}
