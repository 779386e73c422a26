/**
 * Sending a DICOM object (e.g. the reading SR) to a PACS by C-STORE, with retries and exponential back-off. Each
 * attempt is reported to `onAttempt` so that the caller audits it (one event per attempt).
 */
import dimse from "dcmjs-dimse";

const { Client, Dataset } = dimse;
const { CStoreRequest } = dimse.requests;
const { Status } = dimse.constants;

export interface PacsDestination {
  host: string;
  port: number;
  calledAe: string;
  callingAe: string;
}

export interface PushOptions {
  attempts?: number;
  /** First back-off delay (doubled after each failure). */
  backoffMs?: number;
  onAttempt?: (attempt: number, outcome: { ok: boolean; detail: string }) => Promise<void> | void;
}

/** Parses `AET@host:port` (config PACS_PUSH); null when it is not that. */
export function parseDestination(value: string, callingAe: string): PacsDestination | null {
  const at = value.lastIndexOf("@");
  const colon = value.lastIndexOf(":");
  if (at < 1 || colon < at + 2) return null;
  const port = Number(value.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { calledAe: value.slice(0, at), host: value.slice(at + 1, colon), port, callingAe };
}

/** One C-STORE association: resolves with its outcome (never rejects). */
export function storeOnce(bytes: Buffer, to: PacsDestination): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const client = new Client();
    // Dataset.fromFile's parser, without a file: nothing medical is written to disk.
    const dataset = (Dataset as unknown as { _fromP10Buffer(b: Buffer): dimse.Dataset })._fromP10Buffer(bytes);
    const request = new CStoreRequest(dataset);
    let settled = false;
    const done = (r: { ok: boolean; detail: string }) => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    request.on("response", (response: dimse.responses.CStoreResponse) => {
      const status = response.getStatus();
      done(status === Status.Success ? { ok: true, detail: "stored" } : { ok: false, detail: `status 0x${status.toString(16).padStart(4, "0")}` });
    });
    client.on("networkError", (e: Error) => done({ ok: false, detail: `network: ${e.message}` }));
    client.on("associationRejected", () => done({ ok: false, detail: "association rejected" }));
    client.on("closed", () => done({ ok: false, detail: "connection closed without an answer" }));
    client.addRequest(request);
    client.send(to.host, to.port, to.callingAe, to.calledAe, { connectTimeout: 10_000, associationTimeout: 30_000, pduTimeout: 30_000 });
  });
}

/** C-STORE with retries: resolves with the last outcome (ok after the first success). */
export async function pushToPacs(bytes: Buffer, to: PacsDestination, options: PushOptions = {}): Promise<{ ok: boolean; attempts: number; detail: string }> {
  const attempts = options.attempts ?? 4;
  let delay = options.backoffMs ?? 1000;
  let last = { ok: false, detail: "not attempted" };
  for (let attempt = 1; attempt <= attempts; attempt++) {
    last = await storeOnce(bytes, to);
    await options.onAttempt?.(attempt, last);
    if (last.ok) return { ...last, attempts: attempt };
    if (attempt < attempts) {
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
  return { ...last, attempts };
}
