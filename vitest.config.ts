import { defineConfig } from "vitest/config";
import { keepOnnxRuntimeOffline } from "./app/inference/offline";

// Tests that create ONNX Runtime sessions themselves (beside the engine's) run in processes started from here.
keepOnnxRuntimeOffline();

// Tests run against the production build served by server.mjs (started once in tests/global-setup.ts) and,
// for domain modules, against a database of their own. No Remix plugin here: tests import server modules directly.
export default defineConfig({
  test: {
    include: ["app/**/*.test.ts", "tests/**/*.test.ts"],
    globalSetup: ["tests/global-setup.ts"],
    setupFiles: ["tests/setup-env.ts"],
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default", "./tests/summary-reporter.ts"],
  },
});
