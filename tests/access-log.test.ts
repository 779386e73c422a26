/**
 * The access log's destination (http-edge.mjs `createAccessLog`, used by server.mjs) in a child process of its own:
 * lines are written in batches of whole lines, not one write(2) each; what is still waiting goes out when the
 * process exits; and a reader that has gone (EPIPE) does not hang the exit (sonic-boom's flushSync() would spin).
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const EDGE = pathToFileURL(path.resolve("http-edge.mjs")).href;

/**
 * Runs a script that waits `idleMs`, writes `lines` access-log lines, waits `afterMs`, then exits; its stdout, its
 * stderr (the number of writes to stdout: while idle, after the wait, in all), its exit code.
 */
function run(
  lines: number,
  options: { closeReader?: boolean; idleMs?: number; afterMs?: number } = {},
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const script = `
    import fs from "node:fs";
    const { createAccessLog } = await import(${JSON.stringify(EDGE)});
    const writeSync = fs.writeSync;
    let writes = 0;
    fs.writeSync = (fd, ...rest) => { if (fd === 1) writes++; return writeSync(fd, ...rest); };
    const log = createAccessLog({ enabled: true });
    await new Promise((resolve) => setTimeout(resolve, ${options.idleMs ?? 0}));
    const idle = writes;
    for (let i = 0; i < ${lines}; i++) log.info({ i, path: "/api/v1/patients", status: 200, ms: 1.5 }, "request");
    await new Promise((resolve) => setTimeout(resolve, ${options.afterMs ?? 0}));
    const after = writes;
    process.on("exit", () => process.stderr.write("idle " + idle + " after " + after + " writes " + writes));
    process.exit(0);
  `;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    // A process that hangs is killed: its exit code is then null, not 0.
    const hung = setTimeout(() => child.kill("SIGKILL"), 10_000);
    if (options.closeReader) child.stdout.destroy();
    else child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("exit", (code) => {
      clearTimeout(hung);
      resolve({ stdout, stderr, code });
    });
  });
}

describe("access log destination", () => {
  it("writes whole lines in batches of at most 4 KiB, and what waits at exit", async () => {
    const { stdout, stderr, code } = await run(100);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(100);
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual([...Array(100).keys()]);
    const writes = Number(/writes (\d+)/.exec(stderr)?.[1]);
    // ≈ 100 bytes a line: a write per line would be 100 writes; batches of 3–4 KiB make a few.
    expect(writes).toBeGreaterThanOrEqual(Math.ceil(stdout.length / 4096));
    expect(writes).toBeLessThan(10);
  });

  it("writes nothing while idle, and a line within 100 ms", async () => {
    const { stdout, stderr, code } = await run(1, { idleMs: 450, afterMs: 250 });
    expect(code).toBe(0);
    expect(stdout.trimEnd().split("\n")).toHaveLength(1);
    const [, idle, after, all] = /idle (\d+) after (\d+) writes (\d+)/.exec(stderr)!.map(Number);
    // sonic-boom's periodic flush wrote an empty string every 100 ms: 4 writes in 450 ms of nothing to log.
    expect(idle).toBe(0);
    expect(after).toBe(1);
    expect(all).toBe(1);
  });

  it("a process whose log reader has gone still exits (EPIPE at exit)", { timeout: 20_000 }, async () => {
    const { code, stderr } = await run(5, { closeReader: true });
    expect(code).toBe(0);
    expect(stderr).toContain("writes");
  });
});
