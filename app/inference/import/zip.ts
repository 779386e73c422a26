/**
 * Reads the entries of a ZIP archive in memory (stored or deflated, no ZIP64, no encryption): enough for Keras 3's
 * `.keras` files (config.json, metadata.json, model.weights.h5).
 */
import { inflateRawSync } from "node:zlib";

export function readZip(bytes: Uint8Array): Map<string, Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error("archive ZIP illisible (fin de répertoire introuvable)");
  const count = view.getUint16(eocd + 10, true);
  let offset = view.getUint32(eocd + 16, true);
  const entries = new Map<string, Uint8Array>();
  for (let n = 0; n < count; n++) {
    if (offset + 46 > bytes.length || view.getUint32(offset, true) !== 0x02014b50) throw new Error("archive ZIP illisible (répertoire central)");
    const method = view.getUint16(offset + 10, true);
    const compressedSize = view.getUint32(offset + 20, true);
    const size = view.getUint32(offset + 24, true);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    const local = view.getUint32(offset + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(offset + 46, offset + 46 + nameLength));
    offset += 46 + nameLength + extraLength + commentLength;
    if (compressedSize === 0xffffffff || local === 0xffffffff) throw new Error("archive ZIP64 non prise en charge");
    if (view.getUint32(local, true) !== 0x04034b50) throw new Error(`archive ZIP illisible (${name})`);
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const data = bytes.subarray(start, start + compressedSize);
    if (data.length !== compressedSize) throw new Error(`archive ZIP tronquée (${name})`);
    if (method === 0) entries.set(name, data);
    else if (method === 8) entries.set(name, new Uint8Array(inflateRawSync(data)));
    else throw new Error(`compression ZIP ${method} non prise en charge (${name})`);
    if (entries.get(name)!.length !== size) throw new Error(`archive ZIP incohérente (${name})`);
  }
  return entries;
}
