import { vitePlugin as remix } from "@remix-run/dev";
import tailwindcss from "@tailwindcss/vite";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { defineConfig, type Plugin } from "vite";

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

/**
 * The exam viewer's Cornerstone chunk (≈ 5 MB, loaded by a dynamic import) under its hashed name, written to
 * build/viewer-engine.json for the server: the exam page names it in a `modulepreload` link, so the browser fetches
 * and compiles it while the page's HTML is still arriving instead of after the route's module has run.
 */
function viewerEngineChunk(): Plugin {
  let file: string | null = null;
  return {
    name: "nexus:viewer-engine-chunk",
    apply: "build",
    generateBundle(_options, bundle) {
      for (const chunk of Object.values(bundle)) {
        if (chunk.type === "chunk" && chunk.facadeModuleId?.endsWith("/app/viewer/engine.client.ts")) file = chunk.fileName;
      }
    },
    writeBundle(options) {
      if (file && options.dir) writeFileSync(path.join(options.dir, "..", "viewer-engine.json"), JSON.stringify({ file }));
    },
  };
}

export default defineConfig(({ isSsrBuild }) => ({
  plugins: [
    ...(isSsrBuild ? [] : [viewerEngineChunk()]),
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
  // dicom-parser is both: external to the server bundle, and pre-bundled (CommonJS) for the browser's viewer — listed
  // in both `exclude` and `include`, esbuild refused to start the dev server.
  optimizeDeps: {
    exclude: [...serverExternals.filter((name) => name !== "dicom-parser"), "@cornerstonejs/dicom-image-loader"],
    include: ["dicom-parser"],
  },
  worker: { format: "es" as const },
  // vtk.js (under @cornerstonejs/core) pulls in xmlbuilder2, which extends Node's EventEmitter: the browser build
  // takes the `events` package instead of Vite's empty stand-in for Node built-ins.
  resolve: isSsrBuild ? {} : { alias: [{ find: /^events$/, replacement: "events/events.js" }] },
}));
