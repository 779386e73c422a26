/**
 * The reading viewer of the exam page: the hanging protocol (R-CC | L-CC above R-MLO | L-MLO, mirrored, one physical
 * scale), the prior exam beside the current one, tools, and the AI overlay. Server-rendered as a hidden frame and a
 * <noscript> notice; Cornerstone3D is imported only in the browser, inside an effect (engine.client.ts).
 */
import { useNavigate, useRouteLoaderData } from "@remix-run/react";
import { useCallback, useEffect, useRef, useState } from "react";
import type { Laterality, View } from "../exams/views";
import type { loader as rootLoader } from "../root";
import type { PrimaryTool, ViewerController, ViewSpec } from "./engine.client";
import { earlyPrefetchScript, prefetchViews } from "./data-source";
import { HANGING, type WindowPreset } from "./hanging";
import { viewerT, type ViewerKey } from "./strings";

export interface ViewerImage {
  imageId: string;
  laterality: Laterality | null;
  view: View | null;
  contentType: string;
  duplicate: boolean;
}
export interface ViewerExam {
  id: string;
  date: string;
  images: ViewerImage[];
}
export interface ViewerAi {
  exam: { probability: number };
  breasts: { R: { probability: number } | null; L: { probability: number } | null };
  views: { imageId: string; probability: number; predictionId: string; heatmapUrl: string | null }[];
}

/** A hanging cell: the view of an exam in a quadrant, if the exam has it. */
function cellsOf(group: "current" | "prior", exam: ViewerExam) {
  return HANGING.map((h) => ({
    key: `${group}:${h.laterality}-${h.view}`,
    label: `${h.laterality}-${h.view}`,
    laterality: h.laterality,
    image: exam.images.find((i) => i.laterality === h.laterality && i.view === h.view && !i.duplicate),
  }));
}

/**
 * Cornerstone (≈ 5 MB) is fetched and compiled as soon as this module runs in a browser — before hydration — not
 * when the viewer's effect first asks for it. The server never loads it (`.client` module).
 */
let engineModule: Promise<typeof import("./engine.client")> | null = null;
function loadEngine() {
  engineModule ??= import("./engine.client").catch((error) => {
    engineModule = null;
    throw error;
  });
  return engineModule;
}
if (typeof document !== "undefined") loadEngine().catch(() => undefined);

const JET = "linear-gradient(to right, #000080, #0000ff 12.5%, #00ffff 37.5%, #80ff80 50%, #ffff00 62.5%, #ff0000 87.5%, #800000)";
const TOOLS: { tool: PrimaryTool; key: string; label: ViewerKey }[] = [
  { tool: "windowLevel", key: "w", label: "windowLevel" },
  { tool: "pan", key: "p", label: "pan" },
  { tool: "zoom", key: "z", label: "zoom" },
  { tool: "magnify", key: "m", label: "magnify" },
  { tool: "length", key: "d", label: "length" },
];
const SHORTCUTS: [string, ViewerKey][] = [
  ["W", "key.wl"],
  ["P", "key.pan"],
  ["Z", "key.zoom"],
  ["M", "key.magnify"],
  ["D", "key.length"],
  ["I", "key.invert"],
  ["R", "key.reset"],
  ["1–9", "key.presets"],
  ["F", "key.single"],
  ["H", "key.heatmap"],
  ["N", "key.next"],
  ["?", "key.help"],
  ["Échap / Esc", "key.escape"],
];

export function ExamViewer({
  current,
  prior,
  ai,
  aiDisplay,
  nextUrl = null,
  engineUrl = null,
}: {
  current: ViewerExam;
  prior: ViewerExam | null;
  ai: ViewerAi | null;
  aiDisplay: "after_reading" | "concurrent";
  /** The next exam of the reader's worklist (key `N`), if any. */
  nextUrl?: string | null;
  /** The viewer's code chunk (production build), preloaded while the page's HTML arrives. */
  engineUrl?: string | null;
}) {
  const navigate = useNavigate();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const t = viewerT(lang);
  const pct = (p: number) => new Intl.NumberFormat(lang === "fr" ? "fr-FR" : "en-GB", { style: "percent", maximumFractionDigits: 1 }).format(p);
  const groups = [{ name: "current" as const, exam: current }, ...(prior ? [{ name: "prior" as const, exam: prior }] : [])];
  const cells = groups.flatMap((g) => cellsOf(g.name, g.exam));
  const elements = useRef(new Map<string, { element: HTMLDivElement | null; overlay: HTMLCanvasElement | null }>());
  const controller = useRef<ViewerController | null>(null);
  const [started, setStarted] = useState(false);
  const [loading, setLoading] = useState(true);
  const [errors, setErrors] = useState<string[]>([]);
  const [tool, setTool] = useState<PrimaryTool>("windowLevel");
  const [presets, setPresets] = useState<WindowPreset[]>([]);
  const [single, setSingle] = useState<string | null>(null);
  const [hovered, setHovered] = useState<string>(cells.find((c) => c.image)?.key ?? "current:R-CC");
  const [help, setHelp] = useState(false);
  const [aiRevealed, setAiRevealed] = useState(aiDisplay === "concurrent");
  const [heatmap, setHeatmap] = useState(aiDisplay === "concurrent");
  const [opacity, setOpacity] = useState(0.5);
  const hasHeatmaps = !!ai?.views.some((v) => v.heatmapUrl);
  const layoutKey = cells.map((c) => `${c.key}=${c.image?.imageId ?? ""}`).join("|");

  useEffect(() => {
    performance.mark("viewer:effect");
    setStarted(true);
    let cancelled = false;
    let mounted: ViewerController | null = null;
    const aborter = new AbortController();
    // The bytes first (the current exam, then the prior), while the 5 MB of viewer code downloads and compiles.
    const bytes = prefetchViews(
      groups.map((g) => ({ name: g.name, imageIds: cellsOf(g.name, g.exam).flatMap((c) => (c.image ? [c.image.imageId] : [])) })),
      aborter.signal,
    );
    const specs: ViewSpec[] = [];
    for (const c of cells) {
      const el = elements.current.get(c.key);
      if (!c.image || !el?.element || !el.overlay) continue;
      const aiView = ai?.views.find((v) => v.imageId === c.image!.imageId);
      specs.push({
        key: c.key,
        element: el.element,
        overlay: el.overlay,
        imageId: c.image.imageId,
        contentType: c.image.contentType,
        laterality: c.laterality,
        heatmapUrl: aiView?.heatmapUrl ? `/predictions/${aiView.predictionId}/carte` : null,
        bytes: bytes.get(c.image.imageId),
      });
    }
    loadEngine()
      .then(({ mountViewer }) => {
        performance.mark("viewer:code-loaded");
        return mountViewer(specs, {
          onPresets: (p) => !cancelled && setPresets(p),
          onError: (key, error) => {
            console.error(`viewer: ${key}`, error);
            if (!cancelled) setErrors((e) => [...e, key]);
          },
        });
      })
      .then((c) => {
        if (cancelled) return c.destroy();
        mounted = c;
        controller.current = c;
        return c.ready.then(() => !cancelled && setLoading(false));
      })
      .catch((error) => {
        console.error("viewer", error);
        if (!cancelled) setErrors((e) => [...e, "viewer"]);
      });
    return () => {
      cancelled = true;
      aborter.abort();
      mounted?.destroy();
      delete document.documentElement.dataset.viewerCurrent;
      delete document.documentElement.dataset.viewerPrior;
      delete document.documentElement.dataset.viewerOriginals;
      controller.current = null;
    };
    // The viewer mounts once per set of images; the rest is driven through the controller.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [layoutKey]);

  useEffect(() => {
    controller.current?.setHeatmap(aiRevealed && heatmap, opacity);
  }, [aiRevealed, heatmap, opacity, loading]);

  useEffect(() => {
    controller.current?.relayout(single);
  }, [single]);

  // Any change of the viewports' size (window, status lines, help panel) re-hangs the views at one scale.
  const grid = useRef<HTMLDivElement | null>(null);
  useEffect(() => {
    if (!grid.current || typeof ResizeObserver === "undefined") return;
    let frame = 0;
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => controller.current?.relayout(single));
    });
    observer.observe(grid.current);
    return () => {
      cancelAnimationFrame(frame);
      observer.disconnect();
    };
  }, [single]);

  const chooseTool = useCallback((next: PrimaryTool) => {
    setTool(next);
    controller.current?.setPrimaryTool(next);
  }, []);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      // Shortcuts stay live on the toolbar's checkbox and slider; typing in a text field or a list is left alone.
      const typing = target instanceof HTMLInputElement ? !["checkbox", "range", "button"].includes(target.type) : !!target && (target.isContentEditable || ["TEXTAREA", "SELECT"].includes(target.tagName));
      if (typing) return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const k = e.key.toLowerCase();
      const t = TOOLS.find((x) => x.key === k);
      if (t) chooseTool(t.tool);
      else if (k === "i") controller.current?.toggleInvert();
      else if (k === "r") controller.current?.reset();
      else if (/^[1-9]$/.test(k)) controller.current?.applyPreset(Number(k) - 1);
      else if (k === "f") setSingle((s) => (s ? null : hovered));
      else if (k === "h" && aiRevealed) setHeatmap((h) => !h);
      else if (k === "n" && nextUrl) navigate(nextUrl);
      else if (k === "?") setHelp((h) => !h);
      else if (k === "escape") {
        setSingle(null);
        setHelp(false);
      } else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [chooseTool, hovered, aiRevealed, nextUrl, navigate]);

  const button = "rounded border border-slate-600 px-2 py-1 text-xs hover:bg-slate-700 focus:outline-none focus-visible:ring-2 focus-visible:ring-sky-400";
  return (
    <section aria-labelledby="viewer-title" className="space-y-2" data-testid="viewer-section">
      {engineUrl ? <link rel="modulepreload" href={engineUrl} /> : null}
      {/* The views' bytes start while the HTML is still being read (see data-source.ts). */}
      <script
        dangerouslySetInnerHTML={{
          __html: earlyPrefetchScript(groups.map((g) => cellsOf(g.name, g.exam).flatMap((c) => (c.image ? [c.image.imageId] : [])))),
        }}
      />
      <noscript>
        <p className="rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900" data-testid="viewer-needs-js">{t("needsJs")}</p>
      </noscript>
      <div
        hidden={!started}
        data-testid="viewer"
        data-single={single ?? ""}
        className={single ? "fixed inset-0 z-50 flex flex-col bg-black text-slate-100" : "flex flex-col rounded-md bg-black text-slate-100"}
        style={single ? undefined : { height: "min(88vh, 2000px)", minHeight: "560px" }}
      >
        <div role="toolbar" aria-label={t("tools")} className="flex flex-wrap items-center gap-1 border-b border-slate-700 p-2">
          <h2 id="viewer-title" className="mr-2 text-sm font-semibold">{t("title")}</h2>
          {TOOLS.map((x) => (
            <button key={x.tool} type="button" className={`${button} ${tool === x.tool ? "bg-sky-700" : ""}`} aria-pressed={tool === x.tool} onClick={() => chooseTool(x.tool)} data-tool={x.tool}>
              {t(x.label)} <kbd className="text-slate-400">{x.key.toUpperCase()}</kbd>
            </button>
          ))}
          <button type="button" className={button} onClick={() => controller.current?.toggleInvert()} data-action="invert">{t("invert")} <kbd className="text-slate-400">I</kbd></button>
          <button type="button" className={button} onClick={() => controller.current?.reset()} data-action="reset">{t("reset")} <kbd className="text-slate-400">R</kbd></button>
          <label className="flex items-center gap-1 text-xs">
            <span>{t("presets")}</span>
            <select
              className="rounded border border-slate-600 bg-slate-900 px-1 py-0.5 text-xs"
              data-testid="viewer-presets"
              disabled={presets.length === 0}
              defaultValue=""
              onChange={(e) => e.target.value !== "" && controller.current?.applyPreset(Number(e.target.value))}
            >
              <option value="">{presets.length ? "—" : t("presetNone")}</option>
              {presets.map((p, i) => (
                <option key={`${p.label}-${i}`} value={i}>{`${i + 1}. ${p.label}${p.sigmoid ? " (SIGMOID)" : ""}`}</option>
              ))}
            </select>
          </label>
          <button type="button" className={button} onClick={() => setSingle((s) => (s ? null : hovered))} data-action="single">{single ? t("back") : t("single")} <kbd className="text-slate-400">F</kbd></button>
          <button type="button" className={button} aria-expanded={help} onClick={() => setHelp((h) => !h)} data-action="help">{t("help")} <kbd className="text-slate-400">?</kbd></button>
          <span className="ml-auto flex flex-wrap items-center gap-2 text-xs" data-testid="viewer-ai">
            {!ai ? (
              <span className="text-slate-400">{aiDisplay === "after_reading" ? t("aiAfterReading") : t("noAi")}</span>
            ) : !aiRevealed ? (
              <>
                <span className="text-slate-400">{t("aiAfterReading")}</span>
                <button type="button" className={button} onClick={() => { setAiRevealed(true); setHeatmap(true); }} data-action="reveal-ai">{t("aiReveal")}</button>
              </>
            ) : (
              <>
                <span data-testid="viewer-scores">
                  {t("scores")} — {t("examScore")} <strong>{pct(ai.exam.probability)}</strong>
                  {ai.breasts.R ? <> · {t("breastR")} <strong>{pct(ai.breasts.R.probability)}</strong></> : null}
                  {ai.breasts.L ? <> · {t("breastL")} <strong>{pct(ai.breasts.L.probability)}</strong></> : null}
                </span>
                {hasHeatmaps ? (
                  <>
                    <label className="flex items-center gap-1">
                      <input type="checkbox" checked={heatmap} onChange={(e) => setHeatmap(e.target.checked)} data-testid="viewer-heatmap-toggle" />
                      {t("heatmap")} <kbd className="text-slate-400">H</kbd>
                    </label>
                    <label className="flex items-center gap-1">
                      {t("opacity")}
                      <input type="range" min={0} max={1} step={0.05} value={opacity} onChange={(e) => setOpacity(Number(e.target.value))} data-testid="viewer-opacity" />
                    </label>
                    <span className="flex items-center gap-1" data-testid="viewer-legend" aria-label={t("legend")}>
                      {t("legendLow")}
                      <span className="inline-block h-2 w-24 rounded" style={{ background: JET }} />
                      {t("legendHigh")}
                    </span>
                  </>
                ) : null}
              </>
            )}
          </span>
        </div>
        {help ? (
          <div role="dialog" aria-label={t("help")} className="border-b border-slate-700 p-3 text-sm" data-testid="viewer-help">
            <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 sm:grid-cols-[auto_1fr_auto_1fr]">
              {SHORTCUTS.filter(([k]) => k !== "N" || nextUrl).map(([k, label]) => (
                <div key={k} className="contents">
                  <dt><kbd className="rounded bg-slate-800 px-1 font-mono">{k}</kbd></dt>
                  <dd>{t(label)}</dd>
                </div>
              ))}
            </dl>
            <button type="button" className={`${button} mt-2`} onClick={() => setHelp(false)}>{t("close")}</button>
          </div>
        ) : null}
        {loading && started ? <p className="px-2 py-1 text-xs text-slate-400" role="status">{t("loading")}</p> : null}
        {errors.length ? <p className="px-2 py-1 text-xs text-amber-300" role="alert" data-testid="viewer-errors">{t("loadError")} : {errors.join(", ")}</p> : null}
        <div ref={grid} className={`relative grid min-h-0 flex-1 gap-2 p-1 ${groups.length > 1 ? "grid-cols-2" : "grid-cols-1"}`}>
          {groups.map((g) => (
            <div key={g.name} className="flex min-h-0 flex-col" data-group={g.name}>
              <p className="px-1 text-xs text-slate-300" data-testid={`viewer-${g.name}-title`}>
                {t(g.name)} — {g.exam.date}
              </p>
              <div className="grid min-h-0 flex-1 grid-cols-2 grid-rows-2 gap-1">
                {cellsOf(g.name, g.exam).map((c) => {
                  const score = aiRevealed ? ai && g.name === "current" ? ai.views.find((v) => v.imageId === c.image?.imageId) : undefined : undefined;
                  const isSingle = single === c.key;
                  return (
                    <div
                      key={c.key}
                      data-cell={c.key}
                      className={`${isSingle ? "fixed inset-x-0 bottom-0 top-12 z-50" : "relative"} min-h-0 overflow-hidden bg-black outline-1 outline-slate-800`}
                      style={single && !isSingle ? { visibility: "hidden" } : undefined}
                      onMouseEnter={() => setHovered(c.key)}
                      onDoubleClick={() => c.image && setSingle((s) => (s ? null : c.key))}
                    >
                      {c.image ? (
                        <>
                          <div
                            className="absolute inset-0"
                            data-viewport={c.key}
                            data-laterality={c.laterality}
                            onContextMenu={(e) => e.preventDefault()}
                            ref={(el) => {
                              elements.current.set(c.key, { ...(elements.current.get(c.key) ?? { overlay: null }), element: el });
                            }}
                          />
                          <canvas
                            className="pointer-events-none absolute inset-0 h-full w-full"
                            data-overlay={c.key}
                            ref={(el) => {
                              elements.current.set(c.key, { ...(elements.current.get(c.key) ?? { element: null }), overlay: el });
                            }}
                          />
                        </>
                      ) : (
                        <p className="flex h-full items-center justify-center text-xs text-slate-300">{t("noImage")}</p>
                      )}
                      <span className={`pointer-events-none absolute top-1 ${c.laterality === "R" ? "left-1" : "right-1"} rounded bg-black/60 px-1 text-xs font-semibold`}>
                        {c.label}
                        {score ? <span className="ml-2 font-mono" data-testid="viewer-view-score">{pct(score.probability)}</span> : null}
                      </span>
                    </div>
                  );
                })}
              </div>
            </div>
          ))}
        </div>
      </div>
    </section>
  );
}
