/**
 * File handles on aborted reads (issue 11, item 9): many downloads that the client abandons after the first bytes
 * leave no open descriptor behind in the server (counted in /proc/<pid>/fd) and no "Closing file descriptor … on
 * garbage collection" warning (DEP0137). The server uses the local object store (the one with file handles).
 */
import http from "node:http";
import { readdirSync, readlinkSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "../helpers/http";
import { bigJpeg, MiB, uploadImage } from "../helpers/images";
import { startOwnServer, type OwnServer } from "../helpers/own-server";

/** The server's open descriptors on files of its data directory (the object store), by path. */
function openFiles(pid: number, dir: string): string[] {
  return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      return target.startsWith(dir) ? [target] : [];
    } catch {
      return []; // closed meanwhile
    }
  });
}

/**
 * Starts a download and drops the connection: after `afterMs` milliseconds (often before the answer has started:
 * the server is still authorising, opening the object and decrypting its first segment), or after the first
 * chunk when `afterMs` is null.
 */
function abortedDownload(base: string, path: string, token: string, afterMs: number | null): Promise<void> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, headers: { Authorization: `Bearer ${token}` }, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
      res.once("data", () => {
        req.destroy();
        resolve();
      });
    });
    req.on("error", () => {});
    req.on("close", () => resolve());
    if (afterMs !== null) setTimeout(() => req.destroy(), afterMs);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("aborted downloads leave no file handle open", () => {
  let server: OwnServer;
  let token: string;
  let imageId: string;
  beforeAll(async () => {
    server = await startOwnServer({}, { localStore: true });
    token = (await api("POST", "/api/v1/tokens", { base: server.url, json: { email: "doctor@demo.nexus", password: "nexus-demo-2026" } })).body.token;
    const patient = await api("POST", "/api/v1/patients", { base: server.url, token, json: { displayName: "Patiente Descripteurs", consents: { care: true } } });
    imageId = await uploadImage(server.url, token, patient.body.id, await bigJpeg(8 * MiB));
  });
  afterAll(() => server?.stop());

  it("200 aborted downloads leave no object file open", async () => {
    const pid = server.child.pid!;
    // One full download first, so lazily opened descriptors (pools, key files) are counted in the baseline.
    expect((await fetch(`${server.url}/api/v1/images/${imageId}`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.arrayBuffer())).byteLength).toBe(8 * MiB);
    await sleep(200);
    const open = () => openFiles(pid, server.dataDir).filter((f) => !f.includes("pglite"));
    expect(open()).toEqual([]);
    for (let round = 0; round < 20; round++) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => abortedDownload(server.url, `/api/v1/images/${imageId}`, token, i % 2 ? null : 5 + ((round * 7 + i * 3) % 60))));
    }
    // Give the server a moment to see the closed sockets; no garbage collection needed for the handles to go.
    let after = open();
    for (let i = 0; i < 50 && after.length > 0; i++) {
      await sleep(100);
      after = open();
    }
    expect(after).toEqual([]);
    expect(server.output()).not.toMatch(/Closing file descriptor|DEP0137/);
  });
});
