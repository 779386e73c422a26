/**
 * Viewer benchmark (issue 14): time from navigation to the four views rendered, for a four-view 12-bit exam of
 * ≈ 27 MB per view (3328 × 4096, uncompressed), then to the prior's four views, in Debian's Chromium on loopback,
 * from the page's own performance marks (`viewer:current-rendered`, `viewer:prior-rendered`), and, on the CPU path
 * (no GPU), when every view's original has replaced its display-resolution copy (`viewer:originals-shown`).
 *
 *   npm run bench:viewer                  # 3 runs, PGlite and the local store in a temporary directory
 *   BENCH_ROWS=640 BENCH_COLUMNS=512 BENCH_RUNS=1 BENCH_DEBUG=1 npm run bench:viewer
 *   BENCH_STAGES=1 npm run bench:viewer   # also each view's stages (fetched, decoded, rendered) from the page's marks
 *   BENCH_PROFILE=1 npm run bench:viewer  # also a CPU profile of the page: test-results/bench-viewer-N.cpuprofile
 *
 * Starts its own production server (`npm run build` first) on port 0; everything it made is removed after.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { launchChromium } from "../tests/helpers/browser";
import { FOUR_VIEWS, mammoDicom, uid } from "../tests/helpers/mammo";
import { startServer } from "../tests/helpers/server";

const ROWS = Number(process.env.BENCH_ROWS ?? 4096);
const COLUMNS = Number(process.env.BENCH_COLUMNS ?? 3328);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DEBUG = Boolean(process.env.BENCH_DEBUG);
const STAGES = Boolean(process.env.BENCH_STAGES) || DEBUG;
const PROFILE = Boolean(process.env.BENCH_PROFILE);
const PASSWORD = process.env.NEXUS_DEMO_PASSWORD ?? "nexus-demo-2026";

async function main() {
  if (!existsSync("build/server/index.js")) throw new Error("No production build: run `npm run build` first.");
  const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-bench-viewer-"));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: "production",
    PORT: "0",
    HOST: "127.0.0.1",
    NEXUS_DEMO: "1",
    NEXUS_ACCESS_LOG: "0",
    DATA_DIR: dataDir,
    NEXUS_MASTER_KEYS: `bench:${randomBytes(32).toString("base64")}`,
  };
  delete env.DATABASE_URL;
  const server = await startServer(env, { timeoutMs: 120_000 });
  const browser = await launchChromium();
  try {
    const base = server.url;
    const json = async (method: string, p: string, token: string | null, body?: unknown) => {
      const res = await fetch(`${base}${p}`, {
        method,
        headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { "Content-Type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const out = await res.json();
      if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(out)}`);
      return out;
    };
    const { token } = await json("POST", "/api/v1/tokens", null, { email: "doctor@demo.nexus", password: PASSWORD });
    const identity = { id: `IPP-${uid().slice(-8)}`, name: "BENCH^VIEWER", birthDate: "19600101", sex: "F" };
    const patient = await json("POST", "/api/v1/patients", token, { displayName: "Bench Viewer", ipp: identity.id, birthDate: "1960-01-01", sex: "F", consents: { care: true } });
    let current = "";
    let perView = 0;
    const currentImages: string[] = [];
    for (const [date, study] of [["20241128", uid()], ["20261130", uid()]] as const) {
      for (const v of FOUR_VIEWS) {
        const bytes = mammoDicom({ ...v, studyInstanceUid: study, studyDate: date, patient: identity, rows: ROWS, columns: COLUMNS, spacing: 0.07 });
        perView = bytes.length;
        const form = new FormData();
        form.append("file", new Blob([new Uint8Array(bytes)]), "vue.dcm");
        const res = await fetch(`${base}/api/v1/patients/${patient.id}/images`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
        const body = await res.json();
        if (res.status !== 201) throw new Error(`upload: ${res.status} ${JSON.stringify(body)}`);
        if (date === "20261130") {
          current = body.examId;
          currentImages.push(body.id);
        }
      }
    }
    console.log(`exam: 4 views of ${COLUMNS}×${ROWS} 12-bit, ${(perView / 1e6).toFixed(1)} MB each, plus a prior of the same size; Chromium ${browser.version()}`);
    const results: { current: number; prior: number; originals: number }[] = [];
    for (let run = 0; run < RUNS; run++) {
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const page = await context.newPage();
      if (DEBUG) {
        page.on("console", (m) => console.log(`[console.${m.type()}] ${m.text()}`));
        page.on("pageerror", (e) => console.log(`[pageerror] ${e.stack ?? e}`));
        page.on("requestfailed", (r) => console.log(`[requestfailed] ${r.url()} ${r.failure()?.errorText}`));
      }
      await page.goto(`${base}/connexion`);
      await page.getByLabel("Adresse e-mail").fill("doctor@demo.nexus");
      await page.getByLabel("Mot de passe").fill(PASSWORD);
      await page.getByRole("button", { name: "Se connecter" }).click();
      await page.waitForURL((u) => !u.pathname.startsWith("/connexion"));
      const cdp = PROFILE ? await context.newCDPSession(page) : null;
      if (cdp) {
        await cdp.send("Profiler.enable");
        await cdp.send("Profiler.setSamplingInterval", { interval: 500 });
        await cdp.send("Profiler.start");
      }
      if (STAGES && run === 0) {
        // The server alone: the four current views fetched in parallel by Node through the same session (no browser).
        const t0 = performance.now();
        const sizes = await Promise.all(currentImages.map(async (id) => (await (await page.request.get(`${base}/images/${id}/fichier`)).body()).length));
        console.log(`  server alone: four views (${(sizes.reduce((a, b) => a + b, 0) / 1e6).toFixed(0)} MB) fetched in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      }
      await page.goto(`${base}/examens/${current}`);
      await page.waitForFunction(() => document.documentElement.dataset.viewerPrior === "rendered", null, { timeout: DEBUG ? 20_000 : 120_000 }).catch(async (err) => {
        if (DEBUG) {
          const state = await page.evaluate(() => ({
            html: { ...document.documentElement.dataset },
            viewports: [...document.querySelectorAll("[data-viewport]")].map((e) => ({ ...(e as HTMLElement).dataset, w: (e as HTMLElement).clientWidth, h: (e as HTMLElement).clientHeight, children: e.innerHTML.slice(0, 200) })),
            hidden: document.querySelector('[data-testid="viewer"]')?.hasAttribute("hidden"),
          }));
          console.log(JSON.stringify(state).slice(0, 600));
          const chunk = (await import("node:fs")).readdirSync("build/client/assets").find((f) => f.startsWith("engine.client-"));
          console.log(await page.evaluate(async (c) => {
            try {
              const m = await import(`/assets/${c}`);
              return `imported: ${Object.keys(m).join(",")}`;
            } catch (e) {
              return `import failed: ${(e as Error).stack ?? e}`;
            }
          }, chunk));
          console.log("errors:", await page.evaluate(() => document.querySelector('[data-testid="viewer-errors"]')?.textContent));
        }
        throw err;
      });
      // On the CPU path the views are first drawn at display resolution; the originals replace them when idle.
      await page.waitForFunction(() => document.documentElement.dataset.viewerOriginals === "shown", null, { timeout: 60_000 }).catch(() => undefined);
      const marks = await page.evaluate(() => ({
        current: performance.getEntriesByName("viewer:current-rendered")[0]?.startTime ?? NaN,
        prior: performance.getEntriesByName("viewer:prior-rendered")[0]?.startTime ?? NaN,
        originals: performance.getEntriesByName("viewer:originals-shown")[0]?.startTime ?? NaN,
        errors: document.querySelector('[data-testid="viewer-errors"]')?.textContent ?? null,
      }));
      if (marks.errors) throw new Error(`viewer errors: ${marks.errors}`);
      if (STAGES) {
        const stages = await page.evaluate(() => [
          ...performance.getEntriesByType("mark").filter((m) => m.name.startsWith("viewer:")).map((m) => [m.name, m.startTime] as const),
          ...performance
            .getEntriesByType("resource")
            .filter((r) => /fichier|dicomweb|engine\.client/.test(r.name))
            .map((r) => [`fetch ${new URL(r.name).pathname.slice(-40)}`, (r as PerformanceResourceTiming).responseEnd] as const),
        ]);
        stages.sort((a, b) => a[1] - b[1]);
        console.log(`  rendering: ${await page.evaluate(() => document.documentElement.dataset.viewerRendering)}`);
        for (const [name, t] of stages) console.log(`  ${(t / 1000).toFixed(3)} s  ${name}`);
      }
      if (cdp) {
        const { profile } = (await cdp.send("Profiler.stop")) as { profile: CpuProfile };
        (await import("node:fs")).mkdirSync("test-results", { recursive: true });
        (await import("node:fs")).writeFileSync(`test-results/bench-viewer-${run + 1}.cpuprofile`, JSON.stringify(profile));
        console.log(topSelfTime(profile));
      }
      results.push({ current: marks.current / 1000, prior: (marks.prior - marks.current) / 1000, originals: (marks.originals - marks.prior) / 1000 });
      const originals = Number.isNaN(marks.originals) ? "" : `; every view at its original resolution +${((marks.originals - marks.prior) / 1000).toFixed(2)} s later`;
      console.log(`run ${run + 1}: navigation → four views ${(marks.current / 1000).toFixed(2)} s; prior's four views +${((marks.prior - marks.current) / 1000).toFixed(2)} s${originals}`);
      if (DEBUG) await page.screenshot({ path: "test-results/bench-viewer.png" });
      await context.close();
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const originals = results.some((r) => !Number.isNaN(r.originals)) ? `; originals in place +${median(results.map((r) => r.originals)).toFixed(2)} s after the prior` : "";
    console.log(`median of ${RUNS}: four views ${median(results.map((r) => r.current)).toFixed(2)} s (goal ≤ 2 s), prior +${median(results.map((r) => r.prior)).toFixed(2)} s (goal ≤ 1 s)${originals}`);
  } finally {
    await browser.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
  samples: number[];
  timeDeltas: number[];
}

/** The page's main-thread CPU profile, summed by function (self time), the 15 heaviest. */
function topSelfTime(profile: CpuProfile): string {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const n = byNode.get(id)!;
    const key = `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([k, ms]) => `  ${ms.toFixed(0).padStart(6)} ms  ${k}`)
    .join("\n");
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
