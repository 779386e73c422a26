import { vitePlugin as remix } from "@remix-run/dev";
import tailwindcss from "@tailwindcss/vite";
import { defineConfig } from "vite";

declare module "@remix-run/node" {
  interface Future {
    v3_singleFetch: true;
  }
}

/** Native or WASM-backed packages stay outside the server bundle. */
const serverExternals = [
  "argon2",
  "pg",
  "@electric-sql/pglite",
  "minio",
  "dicom-parser",
  "dcmjs-codecs",
  "dcmjs-dimse",
  "sharp",
  "onnxruntime-node",
  "onnx-proto",
  "pino",
];

export default defineConfig(({ isSsrBuild }) => ({
  plugins: [
    tailwindcss(),
    remix({
      ignoredRouteFiles: ["**/*.test.ts", "**/*.test.tsx"],
      future: {
        v3_fetcherPersist: true,
        v3_relativeSplatPath: true,
        v3_throwAbortReason: true,
        v3_singleFetch: true,
        v3_lazyRouteDiscovery: true,
      },
    }),
  ],
  // Top-level await (database opened and migrated at import) needs a Node target for the server build.
  build: isSsrBuild ? { target: "node20" } : {},
  ssr: { external: serverExternals },
  optimizeDeps: { exclude: serverExternals },
}));
