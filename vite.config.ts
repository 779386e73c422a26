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
  // Cornerstone3D's DICOM image loader starts module workers (`new Worker(new URL(…), { type: "module" })`) and loads
  // its WASM codecs by URL: Vite must see them unbundled in dev and emit them as ES-module workers in the build.
  // See docs/decisions/2026-11-30-viewer-data-path-and-bundling.md.
  optimizeDeps: { exclude: [...serverExternals, "@cornerstonejs/dicom-image-loader"], include: ["dicom-parser"] },
  worker: { format: "es" as const },
  // vtk.js (under @cornerstonejs/core) pulls in xmlbuilder2, which extends Node's EventEmitter: the browser build
  // takes the `events` package instead of Vite's empty stand-in for Node built-ins.
  resolve: isSsrBuild ? {} : { alias: [{ find: /^events$/, replacement: "events/events.js" }] },
}));
