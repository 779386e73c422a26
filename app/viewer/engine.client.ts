/**
 * The Cornerstone3D side of the exam viewer, loaded only in the browser (dynamic import from ExamViewer's effect).
 * DICOM through the DICOM image loader (`wadouri:`, WASM codecs in module workers), JPEG/PNG through a small `web:`
 * loader of ours. Pixels live in memory only: fetched with `cache: "no-store"`, decoded, kept in Cornerstone's memory
 * cache, purged when the viewer closes. No service worker, no IndexedDB, no Cache API.
 */
import {
  cache,
  Enums,
  getRenderingCapabilities,
  getShouldUseCPURendering,
  setUseCPURendering,
  imageLoader,
  init as initCore,
  metaData,
  RenderingEngine,
  utilities,
  type StackViewport,
  type Types,
} from "@cornerstonejs/core";
import {
  addTool,
  init as initTools,
  LengthTool,
  MagnifyTool,
  PanTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  Enums as ToolEnums,
  annotation,
} from "@cornerstonejs/tools";
import { init as initDicomLoader, wadouri } from "@cornerstonejs/dicom-image-loader";
import { utilities as metadataUtilities } from "@cornerstonejs/metadata";
import { cornerstoneImageId } from "./data-source";
import { chestWallSide, commonScale, flipFromOrientation, flipFromPixels, spacingOf, windowPresets, type WindowPreset } from "./hanging";
import { boxFilter, needsOriginal, previewFactor, previewOrigin, type PixelArray } from "./preview";
import type { Laterality } from "../exams/views";

export interface ViewSpec {
  /** Unique in the viewer: `current:R-CC`, `prior:L-MLO`. */
  key: string;
  element: HTMLDivElement;
  overlay: HTMLCanvasElement;
  imageId: string;
  contentType: string;
  laterality: Laterality;
  heatmapUrl: string | null;
  /** The view's bytes when the page started fetching them already (data-source.ts prefetchViews). */
  bytes?: Promise<ArrayBuffer>;
}

export type PrimaryTool = "windowLevel" | "pan" | "zoom" | "magnify" | "length";

export interface ViewerController {
  setPrimaryTool(tool: PrimaryTool): void;
  toggleInvert(): void;
  reset(): void;
  applyPreset(index: number): void;
  presets(): WindowPreset[];
  setHeatmap(visible: boolean, opacity: number): void;
  /** After the layout changed (single view, window resize): resize the canvases and re-apply the hanging. */
  relayout(single: string | null): void;
  destroy(): void;
  /** Resolves once every group of views has rendered (or failed). */
  ready: Promise<void>;
}

// One engine and tool group per mount: going to the next exam mounts the next viewer while the last one may still be
// loading (it is destroyed when its load settles), so their names must not collide.
let mounts = 0;
const TOOL_NAMES: Record<PrimaryTool, string> = {
  windowLevel: WindowLevelTool.toolName,
  pan: PanTool.toolName,
  zoom: ZoomTool.toolName,
  magnify: MagnifyTool.toolName,
  length: LengthTool.toolName,
};

let initialised: Promise<void> | null = null;
const { addDicomPart10Instance } = metadataUtilities;

/**
 * One attribute of a loaded DICOM view, as a backslash-joined string: from the loader's naturalized metadata, else
 * from its parsed data set (which path the DICOM loader keeps depends on its version).
 */
function dicomValue(imageId: string, keyword: string, tag: string): string | undefined {
  if (!imageId.startsWith("wadouri:")) return undefined;
  const natural = metaData.get("naturalized", imageId) as Record<string, unknown> | undefined;
  const v = natural?.[keyword];
  if (v !== undefined && v !== null && v !== "") return Array.isArray(v) ? v.map(String).join("\\") : String(v);
  return wadouri.dataSetCacheManager.get(imageId.slice("wadouri:".length))?.string(tag) ?? undefined;
}
const numbers = (v: string | undefined) => (v ? v.split("\\").map(Number) : null);

/** DICOM spacing falls back to ImagerPixelSpacing (mammography), which the DICOM loader ignores. */
let inSpacingProvider = false;
function spacingProvider(type: string, imageId: string) {
  if (type !== "imagePlaneModule" || !imageId.startsWith("wadouri:") || inSpacingProvider) return undefined;
  inSpacingProvider = true;
  try {
    if (numbers(dicomValue(imageId, "PixelSpacing", "x00280030"))?.every((n) => n > 0)) return undefined;
    const spacing = spacingOf(null, numbers(dicomValue(imageId, "ImagerPixelSpacing", "x00181164")));
    const base = metaData.get(type, imageId) as Record<string, unknown> | undefined;
    if (!spacing || !base) return undefined;
    return { ...base, rowPixelSpacing: spacing[0], columnPixelSpacing: spacing[1], pixelSpacing: spacing, usingDefaultValues: false };
  } finally {
    inSpacingProvider = false;
  }
}

/** `web:` images (JPEG/PNG): fetched without caching, decoded by the browser, shown as RGBA. */
const webImages = new Map<string, { rows: number; columns: number }>();
/** Bytes the page fetched ahead, by URL, for the `web:` loader (the DICOM loader gets them through its data-set cache). */
const prefetched = new Map<string, Promise<ArrayBuffer>>();
function webMetadata(type: string, imageId: string) {
  const size = imageId.startsWith("web:") ? webImages.get(imageId) : undefined;
  if (!size) return undefined;
  switch (type) {
    case "imagePixelModule":
      return { pixelRepresentation: 0, bitsAllocated: 8, bitsStored: 8, highBit: 7, photometricInterpretation: "RGB", samplesPerPixel: 3 };
    case "generalSeriesModule":
      return { modality: "MG" };
    case "imagePlaneModule":
      return {
        imageOrientationPatient: [1, 0, 0, 0, 1, 0],
        imagePositionPatient: [0, 0, 0],
        pixelSpacing: [1, 1],
        rowPixelSpacing: 1,
        columnPixelSpacing: 1,
        frameOfReferenceUID: imageId,
        columns: size.columns,
        rows: size.rows,
        rowCosines: [1, 0, 0],
        columnCosines: [0, 1, 0],
        usingDefaultValues: true,
      };
    case "voiLutModule":
      return { windowCenter: [128], windowWidth: [256] };
    case "modalityLutModule":
      return { rescaleSlope: 1, rescaleIntercept: 0 };
    default:
      return undefined;
  }
}

function loadWebImage(imageId: string) {
  const promise = (async () => {
    const url = imageId.slice("web:".length);
    const ahead = prefetched.get(url);
    prefetched.delete(url);
    let blob: Blob;
    if (ahead) blob = new Blob([await ahead]);
    else {
      const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      blob = await res.blob();
    }
    const bitmap = await createImageBitmap(blob);
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d")!;
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const rgb = new Uint8Array(canvas.width * canvas.height * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      rgb[j] = rgba[i]!;
      rgb[j + 1] = rgba[i + 1]!;
      rgb[j + 2] = rgba[i + 2]!;
    }
    webImages.set(imageId, { rows: canvas.height, columns: canvas.width });
    const voxelManager = utilities.VoxelManager.createImageVoxelManager({ width: canvas.width, height: canvas.height, scalarData: rgb, numberOfComponents: 3 });
    return {
      imageId,
      minPixelValue: 0,
      maxPixelValue: 255,
      slope: 1,
      intercept: 0,
      windowCenter: 128,
      windowWidth: 256,
      getPixelData: () => rgb,
      voxelManager,
      rows: canvas.height,
      columns: canvas.width,
      height: canvas.height,
      width: canvas.width,
      color: true,
      rgba: false,
      numberOfComponents: 3,
      columnPixelSpacing: 1,
      rowPixelSpacing: 1,
      invert: false,
      sizeInBytes: rgb.byteLength,
      dataType: "Uint8Array",
    } as unknown as Types.IImage;
  })();
  return { promise, cancelFn: undefined };
}

async function initialise(): Promise<void> {
  initCore();
  // WebGL drawn in software (SwiftShader, llvmpipe: a browser without a GPU): Cornerstone's CPU path is faster — no
  // float-texture conversion, no read-back of the WebGL canvas into every viewport — and as exact.
  if (getRenderingCapabilities().softwareRasterizer) setUseCPURendering(true);
  initDicomLoader({ maxWebWorkers: Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) });
  imageLoader.registerImageLoader("web", loadWebImage as unknown as Types.ImageLoaderFn);
  metaData.addProvider(webMetadata, 10_000);
  metaData.addProvider(spacingProvider, 10_001);
  metaData.addProvider(reducedMetadata, 10_002);
  initTools();
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, MagnifyTool, LengthTool]) addTool(tool);
}

interface Mounted {
  spec: ViewSpec;
  viewport: StackViewport;
  flip: boolean;
  heightMm: number;
  widthMm: number;
  /** The heatmap masked to the breast, ready to draw; null when there is none (or not loaded yet). */
  heatmap: OffscreenCanvas | null;
  rendered: boolean;
  firstRender: Promise<void>;
  /** The display as loaded (window and its function), for reset. */
  initial: { voiRange?: Types.VOIRange; VOILUTFunction?: Enums.VOILUTFunctionType } | null;
  /** The VOI LUT Function is SIGMOID (from the file, or a preset): drawn by sigmoidForCpu on the CPU path. */
  sigmoid: boolean;
  /** The view's own image id (its metadata, its presets), whatever is shown. */
  imageId: string | null;
  /** While a reduced copy is shown (preview.ts): its factor and the original's row spacing; null once the original is. */
  reduced: { k: number; rowSpacing: number } | null;
}

let reducedCopies = 0;
/** Reduced copy → its original's image id. */
const originalOf = new Map<string, string>();
/** What a reduced copy shares with its original: series, study, window; its pixel module keeps the photometric. */
const SHARED_MODULES = new Set(["generalSeriesModule", "generalStudyModule", "patientModule", "generalImageModule", "voiLutModule"]);
function reducedMetadata(type: string, imageId: string) {
  const original = originalOf.get(imageId);
  if (!original) return undefined;
  if (SHARED_MODULES.has(type)) return metaData.get(type, original);
  if (type === "imagePixelModule") {
    const own = utilities.genericMetadataProvider.get(type, imageId) as Record<string, unknown> | undefined;
    const theirs = metaData.get(type, original) as { photometricInterpretation?: string } | undefined;
    return own && theirs?.photometricInterpretation ? { ...own, photometricInterpretation: theirs.photometricInterpretation } : own;
  }
  return undefined;
}

/**
 * A display-resolution copy of a decoded grayscale view (preview.ts), placed where the original is in the patient's
 * frame and drawn with the original's window, function, inversion and rescale; null when it would gain nothing.
 */
function reducedCopy(id: string, full: Types.IImage, element: HTMLElement): { id: string; k: number; rowSpacing: number } | null {
  if (full.color || (full.numberOfComponents ?? 1) !== 1) return null;
  const dpr = window.devicePixelRatio || 1;
  const k = previewFactor(full.rows, full.columns, element.clientHeight * dpr, element.clientWidth * dpr);
  const pixels = full.getPixelData() as PixelArray;
  if (!k || !(pixels instanceof Uint16Array || pixels instanceof Int16Array || pixels instanceof Uint8Array || pixels instanceof Float32Array)) return null;
  const plane = metaData.get("imagePlaneModule", id) as
    | { rowPixelSpacing?: number; columnPixelSpacing?: number; rowCosines?: number[]; columnCosines?: number[]; imagePositionPatient?: number[]; frameOfReferenceUID?: string }
    | undefined;
  const rowSpacing = plane?.rowPixelSpacing || 1;
  const columnSpacing = plane?.columnPixelSpacing || 1;
  const rowCosines = plane?.rowCosines?.length === 3 ? plane.rowCosines : [1, 0, 0];
  const columnCosines = plane?.columnCosines?.length === 3 ? plane.columnCosines : [0, 1, 0];
  const origin = plane?.imagePositionPatient?.length === 3 ? plane.imagePositionPatient : [0, 0, 0];
  const { data, rows, columns } = boxFilter(pixels, full.rows, full.columns, k);
  const reducedId = `nexus-reduced:${++reducedCopies}:${id}`;
  originalOf.set(reducedId, id);
  const image = imageLoader.createAndCacheLocalImage(reducedId, {
    scalarData: data as Uint16Array,
    dimensions: [columns, rows],
    spacing: [columnSpacing * k, rowSpacing * k],
    origin: previewOrigin(origin, rowCosines, columnCosines, rowSpacing, columnSpacing, k) as Types.Point3,
    direction: [...rowCosines, ...columnCosines, 0, 0, 0] as unknown as Types.Mat3,
    frameOfReferenceUID: plane?.frameOfReferenceUID,
  });
  // Drawn as the original is: its window(s), VOI LUT and function, MONOCHROME1 inversion, and its rescale when the
  // loader left the stored values unscaled.
  const scaled = (full as { preScale?: { scaled?: boolean } }).preScale?.scaled;
  Object.assign(image, {
    windowCenter: full.windowCenter,
    windowWidth: full.windowWidth,
    voiLUT: full.voiLUT,
    voiLUTFunction: full.voiLUTFunction,
    invert: full.invert,
    ...(scaled ? {} : { slope: full.slope, intercept: full.intercept }),
  });
  return { id: reducedId, k, rowSpacing };
}

/** The CPU path's own state of a viewport (not part of Cornerstone's typed API). */
type CpuElement = {
  viewport?: { voi?: { windowCenter: number; windowWidth: number }; voiLUT?: { id: string; firstValueMapped: number; lut: number[] } };
  image?: Types.IImage;
};
let sigmoidTables = 0;

/**
 * Cornerstone's CPU path draws every window linearly (its setVOILUTFunction throws). A SIGMOID window (VOI LUT
 * Function, PS3.3 C.11.2.1.3.1) is given to it as a VOI LUT table instead, recomputed for each window from the DICOM
 * formula y = 1 / (1 + exp(−4 (x − c) / w)) over every integer value of the image: the same curve as the GPU path.
 */
function sigmoidForCpu(m: Mounted) {
  if (!getShouldUseCPURendering()) return;
  const cpu = (m.viewport as unknown as { _cpuFallbackEnabledElement?: CpuElement })._cpuFallbackEnabledElement;
  const viewport = cpu?.viewport;
  const image = cpu?.image;
  if (!viewport || !image) return;
  const integers = Number.isInteger(image.slope ?? 1) && Number.isInteger(image.intercept ?? 0);
  if (!m.sigmoid || !viewport.voi || !integers) {
    viewport.voiLUT = undefined;
    return;
  }
  const { windowCenter: c, windowWidth: w } = viewport.voi;
  const modality = (v: number) => (image.isPreScaled ? v : v * (image.slope ?? 1) + (image.intercept ?? 0));
  const lo = Math.floor(Math.min(modality(image.minPixelValue), modality(image.maxPixelValue)));
  const hi = Math.ceil(Math.max(modality(image.minPixelValue), modality(image.maxPixelValue)));
  const lut = new Array<number>(hi - lo + 2);
  for (let i = 0; i <= hi - lo; i++) lut[i] = Math.round(65535 / (1 + Math.exp((-4 * (lo + i - c)) / Math.max(w, 1))));
  // One entry past the image's largest value, at full scale: the CPU path scales the table by its largest entry.
  lut[hi - lo + 1] = 65535;
  viewport.voiLUT = { id: `sigmoid-${++sigmoidTables}`, firstValueMapped: lo, lut };
}

const { MouseBindings, KeyboardBindings } = ToolEnums;

/** Mean displayed brightness of the left and right thirds of an image (sampled), for the orientation fallback. */
function sideMasses(image: Types.IImage): [number, number] {
  const data = image.getPixelData() as ArrayLike<number>;
  const { columns, rows } = image;
  const components = image.color ? 3 : 1;
  const third = Math.max(1, Math.floor(columns / 3));
  const step = Math.max(1, Math.floor(Math.min(rows, columns) / 128));
  let left = 0;
  let right = 0;
  for (let y = 0; y < rows; y += step) {
    for (let x = 0; x < third; x += step) {
      left += data[(y * columns + x) * components]!;
      right += data[(y * columns + columns - 1 - x) * components]!;
    }
  }
  const monochrome1 = (metaData.get("imagePixelModule", image.imageId) as { photometricInterpretation?: string } | undefined)?.photometricInterpretation === "MONOCHROME1";
  return monochrome1 ? [-left, -right] : [left, right];
}

/** The heatmap PNG with its alpha cleared outside the breast (image pixels near the background value). */
async function maskedHeatmap(url: string, image: Types.IImage): Promise<OffscreenCanvas> {
  const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const bitmap = await createImageBitmap(await res.blob());
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d")!;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const heat = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const data = image.getPixelData() as ArrayLike<number>;
  const components = image.color ? 3 : 1;
  const monochrome1 = (metaData.get("imagePixelModule", image.imageId) as { photometricInterpretation?: string } | undefined)?.photometricInterpretation === "MONOCHROME1";
  const min = image.minPixelValue;
  const max = image.maxPixelValue;
  const threshold = monochrome1 ? max - 0.05 * (max - min) : min + 0.05 * (max - min);
  for (let hy = 0; hy < canvas.height; hy++) {
    const y = Math.min(image.rows - 1, Math.floor(((hy + 0.5) * image.rows) / canvas.height));
    for (let hx = 0; hx < canvas.width; hx++) {
      const x = Math.min(image.columns - 1, Math.floor(((hx + 0.5) * image.columns) / canvas.width));
      const v = data[(y * image.columns + x) * components]!;
      const background = monochrome1 ? v >= threshold : v <= threshold;
      if (background) heat.data[(hy * canvas.width + hx) * 4 + 3] = 0;
    }
  }
  ctx.putImageData(heat, 0, 0);
  return canvas;
}

/**
 * Mounts the viewports, loads every view, hangs them, and resolves once all are rendered (performance mark
 * `viewer:<group>-rendered` per group of views: `current`, then `prior`).
 */
export async function mountViewer(
  specs: ViewSpec[],
  options: { onPresets?: (presets: WindowPreset[]) => void; onError?: (key: string, error: unknown) => void },
): Promise<ViewerController> {
  performance.mark("viewer:mount");
  const mountId = ++mounts;
  const TOOL_GROUP = `nexus-exam-${mountId}`;
  const ENGINE = `nexus-exam-engine-${mountId}`;
  delete document.documentElement.dataset.viewerCurrent;
  delete document.documentElement.dataset.viewerPrior;
  delete document.documentElement.dataset.viewerOriginals;
  let destroyed = false;
  /** The reduced copies this mount made (preview.ts), forgotten when it is destroyed. */
  const reducedIds: string[] = [];
  initialised ??= initialise();
  await initialised;
  // Which path draws the pixels (a browser without WebGL — headless, no GPU — falls back to the CPU path).
  document.documentElement.dataset.viewerRendering = getShouldUseCPURendering() ? "cpu" : "gpu";
  const engine = new RenderingEngine(ENGINE);
  engine.setViewports(
    specs.map((s) => ({ viewportId: s.key.replace(/[^A-Za-z0-9-]/g, "-"), type: Enums.ViewportType.STACK, element: s.element, defaultOptions: { background: [0, 0, 0] as Types.Point3 } })),
  );
  const group = ToolGroupManager.createToolGroup(TOOL_GROUP)!;
  for (const tool of Object.values(TOOL_NAMES)) group.addTool(tool);
  const mounted: Mounted[] = specs.map((spec) => ({
    spec,
    viewport: engine.getViewport(spec.key.replace(/[^A-Za-z0-9-]/g, "-")) as StackViewport,
    flip: false,
    heightMm: 0,
    widthMm: 0,
    heatmap: null,
    rendered: false,
    firstRender: Promise.resolve(),
    initial: null,
    sigmoid: false,
    imageId: null,
    reduced: null,
  }));
  for (const m of mounted) group.addViewport(m.viewport.id, ENGINE);
  let primary: PrimaryTool = "windowLevel";
  const bind = () => {
    for (const tool of Object.values(TOOL_NAMES)) group.setToolPassive(tool, { removeAllBindings: true });
    group.setToolActive(TOOL_NAMES[primary], { bindings: [{ mouseButton: MouseBindings.Primary }] });
    if (primary !== "pan") group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }, { mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Ctrl }] });
    if (primary !== "zoom") group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }, { mouseButton: MouseBindings.Wheel }] });
    else group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }, { mouseButton: MouseBindings.Secondary }, { mouseButton: MouseBindings.Wheel }] });
  };
  bind();

  let heatmapVisible = false;
  let heatmapOpacity = 0.5;
  let single: string | null = null;

  const drawOverlay = (m: Mounted) => {
    const canvas = m.spec.overlay;
    const dpr = window.devicePixelRatio || 1;
    const w = m.spec.element.clientWidth;
    const h = m.spec.element.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d")!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const image = m.viewport.getCornerstoneImage?.();
    if (!heatmapVisible || !m.heatmap || !image) return;
    const corner = (col: number, row: number) => m.viewport.worldToCanvas(utilities.imageToWorldCoords(image.imageId, [col, row]) as Types.Point3);
    const p0 = corner(0, 0);
    const p1 = corner(image.columns, 0);
    const p2 = corner(0, image.rows);
    const hw = m.heatmap.width;
    const hh = m.heatmap.height;
    ctx.setTransform(((p1[0] - p0[0]) / hw) * dpr, ((p1[1] - p0[1]) / hw) * dpr, ((p2[0] - p0[0]) / hh) * dpr, ((p2[1] - p0[1]) / hh) * dpr, p0[0] * dpr, p0[1] * dpr);
    ctx.globalAlpha = heatmapOpacity;
    ctx.drawImage(m.heatmap, 0, 0);
  };

  /** One scale for all views shown together; chest wall against the viewport's inner edge. */
  const hang = () => {
    const shown = mounted.filter((m) => m.viewport.getCornerstoneImage?.() && (single === null || m.spec.key === single));
    if (shown.length === 0) return;
    const w = shown[0]!.spec.element.clientWidth || 1;
    const h = shown[0]!.spec.element.clientHeight || 1;
    const mmPerPixel = commonScale(shown, w * 0.98, h * 0.98);
    for (const m of shown) {
      m.viewport.resetCamera();
      m.viewport.setCamera({ flipHorizontal: m.flip, parallelScale: (mmPerPixel * h) / 2 });
      const image = m.viewport.getCornerstoneImage()!;
      const side = chestWallSide(m.spec.laterality);
      const xs = [0, image.columns].map((c) => m.viewport.worldToCanvas(utilities.imageToWorldCoords(image.imageId, [c, image.rows / 2]) as Types.Point3)[0]);
      const edge = side === "right" ? Math.max(...xs) : Math.min(...xs);
      const target = side === "right" ? w : 0;
      const shift = target - edge;
      const camera = m.viewport.getCamera();
      const a = m.viewport.canvasToWorld([w / 2, h / 2]);
      const b = m.viewport.canvasToWorld([w / 2 - shift, h / 2]);
      const delta = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
      m.viewport.setCamera({
        focalPoint: camera.focalPoint!.map((v, i) => v + delta[i]!) as Types.Point3,
        position: camera.position!.map((v, i) => v + delta[i]!) as Types.Point3,
      });
    }
    for (const m of shown) m.viewport.render();
  };

  /**
   * The original in place of the reduced copy (preview.ts), seen through the same camera (flip, zoom, pan) with the
   * same window and inversion. Measurements made on the copy stay with it: the ruler and the magnifier switch every
   * view to its original first.
   */
  const showOriginal = async (m: Mounted) => {
    if (!m.reduced || !m.imageId || destroyed) return;
    m.reduced = null;
    const camera = m.viewport.getCamera();
    const { voiRange, invert } = m.viewport.getProperties();
    await m.viewport.setStack([m.imageId]);
    if (destroyed) return;
    m.viewport.resetCamera();
    m.viewport.setCamera({ flipHorizontal: camera.flipHorizontal, parallelScale: camera.parallelScale });
    m.viewport.setCamera({ focalPoint: camera.focalPoint, position: camera.position });
    m.viewport.setProperties({ ...(voiRange ? { voiRange } : {}), invert });
    sigmoidForCpu(m);
    m.viewport.render();
  };
  const showOriginals = () => Promise.all(mounted.map(showOriginal));
  /** Once everything is on screen: the originals one by one, when the browser has nothing else to do. */
  const showOriginalsWhenIdle = () => {
    const next = mounted.find((m) => m.reduced);
    if (destroyed) return;
    if (!next) {
      performance.mark("viewer:originals-shown");
      document.documentElement.dataset.viewerOriginals = "shown";
      return;
    }
    const go = () => void showOriginal(next).catch((e) => options.onError?.(next.spec.key, e)).finally(showOriginalsWhenIdle);
    if (typeof requestIdleCallback === "function") requestIdleCallback(go, { timeout: 1000 });
    else setTimeout(go, 50);
  };

  const groups = new Map<string, Mounted[]>();
  for (const m of mounted) {
    const g = m.spec.key.split(":")[0]!;
    groups.set(g, [...(groups.get(g) ?? []), m]);
  }

  for (const m of mounted) {
    // Every window change (drag, preset, reset) re-makes the sigmoid table before the next draw.
    m.spec.element.addEventListener(Enums.Events.VOI_MODIFIED, () => sigmoidForCpu(m));
    // Zoomed in past what the reduced copy holds (or hung bigger: a single view full screen): the original.
    m.spec.element.addEventListener(Enums.Events.CAMERA_MODIFIED, () => {
      const r = m.reduced;
      if (r && needsOriginal(m.spec.element.clientHeight * (window.devicePixelRatio || 1), m.viewport.getCamera().parallelScale ?? 0, r.rowSpacing, r.k)) {
        void showOriginal(m).catch((e) => options.onError?.(m.spec.key, e));
      }
    });
    m.spec.element.addEventListener(Enums.Events.IMAGE_RENDERED, () => {
      const camera = m.viewport.getCamera();
      const { voiRange, invert } = m.viewport.getProperties();
      m.spec.element.dataset.scale = String(camera.parallelScale ?? "");
      m.spec.element.dataset.flip = String(!!camera.flipHorizontal);
      m.spec.element.dataset.voi = voiRange ? `${voiRange.lower.toFixed(1)},${voiRange.upper.toFixed(1)}` : "";
      m.spec.element.dataset.invert = String(!!invert);
      m.spec.element.dataset.resolution = m.reduced ? "reduced" : "original";
      m.spec.element.dataset.voiFunction = m.sigmoid ? "sigmoid" : "linear";
      drawOverlay(m);
    });
  }

  const load = async (m: Mounted) => {
    const id = cornerstoneImageId({ imageId: m.spec.imageId, contentType: m.spec.contentType }, window.location.origin);
    if (m.spec.bytes) {
      // Hand the bytes already fetched to the loaders: the DICOM loader reads an instance it finds in the metadata
      // store (NATURALIZED) instead of fetching it again.
      if (id.startsWith("wadouri:")) await addDicomPart10Instance(id, await m.spec.bytes);
      else prefetched.set(id.slice("web:".length), m.spec.bytes);
    }
    m.imageId = id;
    // On the CPU path a grayscale DICOM view is first shown at display resolution (preview.ts); the original, decoded
    // here and kept in memory, is what the hanging, the mask and the tools read, and replaces the copy later.
    let original: Types.IImage | null = null;
    let shown = id;
    if (getShouldUseCPURendering() && id.startsWith("wadouri:")) {
      const full = await imageLoader.loadAndCacheImage(id);
      const copy = reducedCopy(id, full, m.spec.element);
      if (copy) {
        original = full;
        shown = copy.id;
        m.reduced = { k: copy.k, rowSpacing: copy.rowSpacing };
        m.spec.element.dataset.reducedFactor = String(copy.k);
        reducedIds.push(copy.id);
      }
    }
    await m.viewport.setStack([shown]);
    performance.mark(`viewer:${m.spec.key}-loaded`);
    const image = original ?? m.viewport.getCornerstoneImage();
    const { voiRange, VOILUTFunction } = m.viewport.getProperties();
    const fromFile = (metaData.get("voiLutModule", id) as { voiLUTFunction?: string } | undefined)?.voiLUTFunction;
    m.sigmoid = /sigmoid/i.test(`${VOILUTFunction ?? ""} ${fromFile ?? ""}`);
    m.initial = { voiRange: voiRange ? { ...voiRange } : undefined, VOILUTFunction: m.sigmoid ? Enums.VOILUTFunctionType.SAMPLED_SIGMOID : VOILUTFunction };
    if (m.sigmoid && getShouldUseCPURendering()) {
      sigmoidForCpu(m);
      m.viewport.render();
    }
    const plane = metaData.get("imagePlaneModule", id) as { rowPixelSpacing?: number; columnPixelSpacing?: number } | undefined;
    m.heightMm = image.rows * (plane?.rowPixelSpacing || 1);
    m.widthMm = image.columns * (plane?.columnPixelSpacing || 1);
    const orientation = dicomValue(id, "PatientOrientation", "x00200020");
    const byHeader = flipFromOrientation(m.spec.laterality, orientation);
    const [left, right] = sideMasses(image);
    m.flip = byHeader ?? flipFromPixels(m.spec.laterality, left, right);
    m.spec.element.dataset.spacing = plane?.rowPixelSpacing ? String(plane.rowPixelSpacing) : "";
    m.spec.element.dataset.orientation = byHeader === null ? "pixels" : "header";
    if (m.spec.heatmapUrl) {
      maskedHeatmap(m.spec.heatmapUrl, image)
        .then((c) => {
          m.heatmap = c;
          m.spec.element.dataset.heatmap = "loaded";
          drawOverlay(m);
        })
        .catch((e) => options.onError?.(m.spec.key, e));
    }
  };

  const firstRender = (m: Mounted) =>
    new Promise<void>((resolve) => {
      const done = () => {
        m.spec.element.removeEventListener(Enums.Events.IMAGE_RENDERED, done);
        m.rendered = true;
        m.spec.element.dataset.rendered = "true";
        resolve();
      };
      m.spec.element.addEventListener(Enums.Events.IMAGE_RENDERED, done);
    });

  /** A window and its function: on the CPU path the function is ours (sigmoidForCpu), on the GPU path Cornerstone's. */
  const setWindow = (m: Mounted, voiRange: Types.VOIRange, fn: Enums.VOILUTFunctionType | undefined) => {
    m.sigmoid = /sigmoid/i.test(String(fn ?? ""));
    if (getShouldUseCPURendering()) m.viewport.setProperties({ voiRange });
    else m.viewport.setProperties({ voiRange, ...(fn ? { VOILUTFunction: fn } : {}) });
    sigmoidForCpu(m);
  };

  let presetList: WindowPreset[] = [];
  const controller: Omit<ViewerController, "ready"> = {
    setPrimaryTool(tool) {
      primary = tool;
      bind();
      if (tool === "magnify" || tool === "length") void showOriginals().catch((e) => options.onError?.("viewer", e));
    },
    toggleInvert() {
      const invert = !mounted.find((m) => m.viewport.getCornerstoneImage?.())?.viewport.getProperties().invert;
      for (const m of mounted) if (m.viewport.getCornerstoneImage?.()) {
        m.viewport.setProperties({ invert });
        m.viewport.render();
      }
    },
    reset() {
      try {
        annotation.state.removeAllAnnotations();
      } catch (error) {
        options.onError?.("annotations", error);
      }
      for (const m of mounted) {
        if (!m.viewport.getCornerstoneImage?.()) continue;
        m.viewport.setProperties({ invert: false });
        if (m.initial?.voiRange) setWindow(m, m.initial.voiRange, m.initial.VOILUTFunction);
      }
      hang();
    },
    presets: () => presetList,
    applyPreset(index) {
      const p = presetList[index];
      if (!p) return;
      for (const m of mounted) if (m.viewport.getCornerstoneImage?.() && m.spec.contentType === "application/dicom") {
        setWindow(m, { lower: p.lower, upper: p.upper }, p.sigmoid ? Enums.VOILUTFunctionType.SAMPLED_SIGMOID : Enums.VOILUTFunctionType.LINEAR);
        m.viewport.render();
      }
    },
    setHeatmap(visible, opacity) {
      heatmapVisible = visible;
      heatmapOpacity = opacity;
      for (const m of mounted) drawOverlay(m);
    },
    relayout(next) {
      single = next;
      engine.resize(true, false);
      hang();
    },
    destroy() {
      destroyed = true;
      annotation.state.removeAllAnnotations();
      ToolGroupManager.destroyToolGroup(TOOL_GROUP);
      engine.destroy();
      cache.purgeCache();
      wadouri.dataSetCacheManager.purge();
      webImages.clear();
      prefetched.clear();
      // This mount's copies only: the next exam's viewer may already be mounting.
      for (const id of reducedIds) originalOf.delete(id);
    },
  };

  // Current exam first (it is what the reader waits for), then the prior: each group loads in parallel.
  const ready = (async () => { for (const [name, list] of groups) {
    for (const m of list) m.firstRender = firstRender(m);
    const results = await Promise.allSettled(list.map(load));
    results.forEach((r, i) => {
      if (r.status === "rejected") {
        list[i]!.spec.element.dataset.error = "true";
        options.onError?.(list[i]!.spec.key, r.reason);
      }
    });
    const ok = list.filter((_, i) => results[i]!.status === "fulfilled");
    hang();
    if (name === "current") {
      const first = ok.find((m) => m.spec.contentType === "application/dicom") ?? ok[0];
      if (first) {
        const id = first.imageId ?? first.viewport.getCurrentImageId();
        const voi = metaData.get("voiLutModule", id) as Parameters<typeof windowPresets>[0] | undefined;
        // The DICOM loader leaves out Window Center & Width Explanation (0028,1055): the preset names come from it.
        const explanation = dicomValue(id, "WindowCenterWidthExplanation", "x00281055")?.split("\\");
        presetList = voi ? windowPresets({ ...voi, explanation: explanation ?? null }) : [];
        options.onPresets?.(presetList);
      }
    }
    await Promise.race([Promise.all(ok.map((m) => m.firstRender)), new Promise((r) => setTimeout(r, 30_000))]);
    if (destroyed) return;
    performance.mark(`viewer:${name}-rendered`);
    document.documentElement.dataset[`viewer${name[0]!.toUpperCase()}${name.slice(1)}`] = "rendered";
  }
  showOriginalsWhenIdle();
  })();
  return { ...controller, ready };
}
