/**
 * Starts a real Nexus server (the production build, `node server.mjs`) for tests that need one of their own: the
 * run's main server (tests/global-setup.ts) and the few that need another configuration.
 */
import { spawn, type ChildProcess } from "node:child_process";

export interface RunningServer {
  url: string;
  child: ChildProcess;
  /** Everything the server printed so far (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Resolves once the server prints its address; rejects with everything it printed if it exits first or does not
 * listen within `timeoutMs`.
 */
export function startServer(env: NodeJS.ProcessEnv, options: { timeoutMs?: number; echo?: boolean; args?: string[] } = {}): Promise<RunningServer> {
  const { timeoutMs = 60_000, echo = false, args = [] } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["server.mjs", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let listening = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start in ${timeoutMs / 1000} s:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (echo) process.stderr.write(chunk);
      const match = listening ? null : /listening on (http:\/\/\S+)/.exec(output);
      if (!match) return;
      listening = true;
      clearTimeout(timer);
      resolve({
        url: match[1]!,
        child,
        output: () => output,
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise((r) => child.once("exit", r));
          child.kill("SIGTERM");
          await exited;
        },
      });
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (!listening) reject(new Error(`server exited with code ${code}:\n${output}`));
    });
  });
}
