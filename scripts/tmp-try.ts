import { readFileSync } from "node:fs";
import { decodeDicom, renderPng } from "../app/imaging/dicom.server";
import { shutdownDecodePool } from "../app/imaging/decode-pool.server";
const T = "/usr/lib/python3/dist-packages/pydicom/data/test_files/";
for (const f of process.argv.slice(2)) {
  const t = performance.now();
  try {
    const d = await decodeDicom(readFileSync(T + f));
    const png = await renderPng(readFileSync(T + f), "application/dicom", 256);
    console.log(f, d.width, d.height, d.frames, d.colour, d.values.slice(0, 3), png.length, Math.round(performance.now() - t));
  } catch (e) { console.log(f, "ERR", (e as Error & {code?: string}).code, (e as Error).message); }
}
await shutdownDecodePool();
