/**
 * `npm run demo` — the NEXUS scenario — run for real against the test server, through the local Caddy, with the
 * local CA: it must exit 0, having shown the stored object to be ciphertext (from the server's local object
 * directory, or from its S3 bucket when the run has one) and every step's audit event. Skipped, with one line,
 * where /usr/bin/caddy is absent.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { CADDY } from "../../scripts/start-https";
import { startTestFront, type TestFront } from "./https";

const hasCaddy = existsSync(CADDY);
if (!hasCaddy) console.log(`skipped: no caddy at ${CADDY}`);

function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("node_modules/.bin/tsx", ["scripts/demo.ts", ...args], { env: process.env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, output }));
  });
}

describe.skipIf(!hasCaddy)("npm run demo (the NEXUS scenario over the HTTP API)", () => {
  let front: TestFront;
  beforeAll(async () => {
    front = await startTestFront();
  });
  afterAll(async () => {
    await front?.close();
  });

  it("runs every step through Caddy and exits 0, showing the stored object is ciphertext", async () => {
    const s3 = Boolean(process.env.S3_ENDPOINT || process.env.S3_HOST || process.env.MINIO_ENDPOINT);
    const storage = s3 ? ["--s3"] : ["--data-dir", inject("serverDataDir")];
    const { code, output } = await run(["--base", front.url, "--ca", front.rootCert, ...storage]);
    expect(output).toContain("certificate verified against");
    expect(output).toMatch(/The stored object is ciphertext .* NXVF ok/);
    expect(output).toMatch(/starts with 4e 58 56 46 01/); // "NXVF", format version 1
    expect(output).toMatch(/The same image read is now refused .* 403 ok/);
    expect(output).toMatch(/The same AI prediction is now refused .* 403 ok/);
    // The screening programme: four-view DICOM exam, identity check, exam AI, double reading, the woman's letter.
    expect(output).toMatch(/four-view screening exam as DICOM .* 201 ok/);
    expect(output).toMatch(/A file of another woman is refused .* 409 ok/);
    expect(output).toMatch(/Exam AI reads every view .* 201 ok/);
    expect(output).toMatch(/First reading \(L1\) .* 201 ok/);
    expect(output).toMatch(/cannot second-read her own exam .* 409 ok/);
    expect(output).toMatch(/Second reading \(L2\) by doctor2, blind: normal → final_normal .* 201 ok/);
    expect(output).toMatch(/downloads her result letter .* 200 ok/);
    expect(output).toMatch(/audit trail shows every step .* \d+ events ok/);
    expect(output).toMatch(/hash chain verifies .* 200 ok/);
    expect(code, output).toBe(0);
    expect(output).toMatch(/NEXUS scenario: all \d+ steps behaved as expected\.\n/);
  }, 120_000);

  it("exits non-zero when a step does not behave (an unknown doctor cannot log in)", async () => {
    // An unknown account, not a wrong password: failures would count towards locking the shared demo doctor.
    const { code, output } = await run(["--base", front.url, "--ca", front.rootCert, "--doctor", `nobody-${Date.now()}@test.nexus`]);
    expect(code).toBe(1);
    expect(output).toMatch(/logs in .* FAILED/);
    expect(output).toContain("expected 201, got 401");
  }, 60_000);
});

describe("npm run demo without a server", () => {
  it("prints one line, 'start the server first (npm start)', and exits 1 (no stack)", async () => {
    // A port nothing listens on: bind one, note it, close it.
    const net = await import("node:net");
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const { code, output } = await run(["--base", `http://127.0.0.1:${port}`]);
    expect(code).toBe(1);
    expect(output.trim().split("\n")).toEqual([`demo: no Nexus server at http://127.0.0.1:${port} — start the server first (npm start)`]);
  }, 60_000);
});
