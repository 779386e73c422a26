/**
 * The URL of the viewer's Cornerstone chunk in the production build (build/viewer-engine.json, written by
 * vite.config.ts), for the exam page's `modulepreload` link; null in development or when the build lacks it.
 */
import { readFileSync } from "node:fs";
import path from "node:path";

let url: string | null | undefined;

export function viewerEngineUrl(): string | null {
  // The development server (Vite) serves modules by their source path: a file left by an earlier build would name a
  // chunk it does not serve.
  if (process.env.NODE_ENV !== "production") return null;
  if (url === undefined) {
    try {
      const { file } = JSON.parse(readFileSync(path.resolve(process.cwd(), "build", "viewer-engine.json"), "utf8")) as { file?: unknown };
      url = typeof file === "string" && /^assets\/[\w.-]+\.js$/.test(file) ? `/${file}` : null;
    } catch {
      url = null;
    }
  }
  return url;
}
