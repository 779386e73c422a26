import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeDemoModel } from "./densenet.server";

// ONNX Runtime 1.29+ keeps its telemetry identifier and event cache here, then uploads the events to Microsoft
// (offline.ts). Each run below gets a fresh home directory and the environment of a production server: without
// ORT_DISABLE_TELEMETRY, and without the variables by which ONNX Runtime recognises a CI runner and stays quiet (CI,
// GITHUB_ACTIONS, GITLAB_CI, JENKINS_URL, TF_BUILD: .ci/run sets CI=true, under which the control below found nothing).
const CI_MARKERS = ["CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "TF_BUILD"];
const TELEMETRY_DIR = path.join(".cache", "Microsoft", "DeveloperTools", ".onnxruntime");

let root: string;
let modelDir: string;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), "nexus-ort-offline-"));
  modelDir = path.join(root, "model");
  await writeDemoModel(modelDir);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs `source` (TypeScript, through tsx) in a new process whose home is a fresh directory; returns that directory. */
function runInFreshHome(name: string, source: string): string {
  const home = path.join(root, `home-${name}`);
  mkdirSync(home);
  const file = path.join(root, `${name}.mts`);
  writeFileSync(file, source);
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  for (const name of ["ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", ...CI_MARKERS]) delete env[name];
  const run = spawnSync(process.execPath, ["--import", "tsx", file], { env, encoding: "utf8", timeout: 60_000 });
  expect(run.status, run.stderr).toBe(0);
  expect(run.stdout).toContain("session ready");
  return home;
}

const here = JSON.stringify(path.resolve("app/inference"));

describe("ONNX Runtime telemetry", () => {
  it("is off in the inference engine: no identifier, no event cache written", () => {
    const home = runInFreshHome(
      "engine",
      `import path from "node:path";
const { loadModelDirectory } = await import(path.join(${here}, "model.server.ts"));
const { InferenceEngine } = await import(path.join(${here}, "session.server.ts"));
const engine = await InferenceEngine.create(await loadModelDirectory(${JSON.stringify(modelDir)}), { threads: 1 });
await engine.run(new Float32Array(3 * 224 * 224));
console.log("session ready");
await engine.close();
process.exit(0);
`,
    );
    expect(existsSync(path.join(home, TELEMETRY_DIR))).toBe(false);
  });

  it("is on in a bare ONNX Runtime session (the control: what the engine prevents)", () => {
    const home = runInFreshHome(
      "bare",
      `const ort = await import(${JSON.stringify(createRequire(import.meta.url).resolve("onnxruntime-node"))});
await ort.InferenceSession.create(${JSON.stringify(path.join(modelDir, "model.onnx"))});
console.log("session ready");
process.exit(0);
`,
    );
    expect(existsSync(path.join(home, TELEMETRY_DIR, "deviceid"))).toBe(true);
  });
});
