/**
 * Real DICOM peers for the interoperability tests: DCMTK's command-line tools and an Orthanc PACS started on loopback
 * ports with a throwaway configuration and storage. Every child runs asynchronously (a synchronous child would
 * block the test process). Where a peer is absent, `missing()` names it so the test prints one "skipped: …" line.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export const ORTHANC = "/usr/sbin/Orthanc";
export const DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

function which(command: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const candidate = path.join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** The first absent tool among `tools` (commands on PATH or absolute paths), or null when all are there. */
export function missing(...tools: string[]): string | null {
  for (const tool of tools) if (!(tool.startsWith("/") ? existsSync(tool) : which(tool))) return tool;
  return null;
}

/** Runs a command asynchronously; resolves with its exit code and output. */
export function run(command: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, output });
    });
  });
}

/** Runs a DICOM tool (dciodvfy, dsrdump…) on `bytes`, written to a temporary file removed afterwards. */
export async function runOnDicom(command: string, args: string[], bytes: Uint8Array): Promise<{ code: number; output: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), "nexus-dicom-tool-"));
  try {
    const file = path.join(dir, "object.dcm");
    writeFileSync(file, bytes);
    return await run(command, [...args, file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** dciodvfy (dicom3tools) on `bytes`: its "Error" lines (none for a valid object) and its whole output. */
export async function dciodvfy(bytes: Uint8Array): Promise<{ errors: string[]; output: string }> {
  const { output } = await runOnDicom("dciodvfy", [], bytes);
  return { errors: output.split("\n").filter((l) => l.startsWith("Error")), output };
}

export interface Orthanc {
  url: string;
  dicomPort: number;
  aet: string;
  /** Orthanc's REST API (JSON in and out). */
  rest<T = any>(method: string, route: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** Everything Orthanc printed so far. */
  output(): string;
  stop(): Promise<void>;
}

export interface OrthancOptions {
  httpPort: number;
  dicomPort: number;
  aet?: string;
  /** DicomModalities: name → [AET, host, port]. */
  modalities?: Record<string, [string, string, number]>;
  /** DicomWeb.Servers: name → { Url, HttpHeaders }. */
  dicomWebServers?: Record<string, { Url: string; HttpHeaders?: Record<string, string> }>;
}

export async function startOrthanc(o: OrthancOptions): Promise<Orthanc> {
  const dir = mkdtempSync(path.join(tmpdir(), "nexus-orthanc-"));
  const aet = o.aet ?? "ORTHANC";
  const config = {
    Name: "nexus-test-orthanc",
    StorageDirectory: path.join(dir, "storage"),
    IndexDirectory: path.join(dir, "index"),
    HttpPort: o.httpPort,
    DicomPort: o.dicomPort,
    DicomAet: aet,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    DicomCheckCalledAet: false,
    DicomModalities: o.modalities ?? {},
    Plugins: existsSync(DICOMWEB_PLUGIN) ? [DICOMWEB_PLUGIN] : [],
    DicomWeb: { Enable: true, Root: "/dicom-web/", Servers: o.dicomWebServers ?? {} },
    StableAge: 1,
    LogExportedResources: false,
  };
  const configPath = path.join(dir, "orthanc.json");
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const child: ChildProcess = spawn(ORTHANC, ["--verbose", configPath], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const url = `http://127.0.0.1:${o.httpPort}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Orthanc exited (${child.exitCode}):\n${output}`);
    const ok = await fetch(`${url}/system`).then((r) => r.ok).catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Orthanc did not start in 30 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    dicomPort: o.dicomPort,
    aet,
    async rest(method, route, body) {
      const res = await fetch(url + route, {
        method,
        headers: body === undefined ? {} : { "Content-Type": Buffer.isBuffer(body) ? "application/dicom" : "application/json" },
        body: body === undefined ? undefined : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: res.status, body: parsed as any };
    },
    output: () => output,
    stop,
  };
}
