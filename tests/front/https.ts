/**
 * Test helpers for the HTTPS front: the local Caddy in front of the test server, and HTTPS requests that trust its
 * local CA, choose their source address, and read an answer that arrives while the body is still being sent.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import type { IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { inject } from "vitest";
import { startCaddyFront, type CaddyFront } from "../../scripts/start-https";

export const MiB = 1024 * 1024;

export interface TestFront extends CaddyFront {
  ca: Buffer;
  /** Stops Caddy and removes its state (the throwaway local CA). */
  close(): Promise<void>;
}

/** Caddy with caddy/Caddyfile.local on free loopback ports, in front of the test server, with a fresh local CA. */
export async function startTestFront(): Promise<TestFront> {
  const stateDir = mkdtempSync(path.join(tmpdir(), "nexus-caddy-"));
  const upstream = new URL(inject("baseUrl")).host;
  const front = await startCaddyFront({ upstream, stateDir, onLog: (line) => process.stderr.write(`[caddy] ${line}\n`) });
  return {
    ...front,
    ca: readFileSync(front.rootCert),
    async close() {
      await front.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json: any;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A whole body, or a stream (sent chunked unless a Content-Length header is given). */
  body?: Buffer | Readable;
  ca?: Buffer;
  /** Source address of the connection (any 127.x.y.z works on loopback). */
  localAddress?: string;
}

function answer(status: number, headers: IncomingHttpHeaders, body: Buffer): Answer {
  const text = body.toString("utf8");
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status, headers, body, text, json };
}

/**
 * An HTTP/1.1 request over TLS on a fresh connection. The answer is kept even when the server answers before the
 * body is fully sent and then closes the connection (an early 413): write errors after the answer are ignored.
 */
export function request(url: string, options: RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = https.request(
      url,
      {
        method: options.method ?? "GET",
        headers: options.headers,
        ca: options.ca,
        localAddress: options.localAddress,
        agent: false,
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve(answer(res.statusCode ?? 0, res.headers, Buffer.concat(chunks))));
        res.on("error", () => resolve(answer(res.statusCode ?? 0, res.headers, Buffer.concat(chunks))));
      },
    );
    req.on("error", (error) => {
      if (!answered) reject(error);
    });
    const body = options.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on("error", () => req.destroy());
      body.pipe(req);
    }
  });
}

/** The same over HTTP/2 (what browsers speak to Caddy). */
export function request2(url: string, options: RequestOptions = {}): Promise<Answer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const session = http2.connect(target.origin, { ca: options.ca });
    session.on("error", reject);
    const stream = session.request({
      ":method": options.method ?? "GET",
      ":path": target.pathname + target.search,
      ...options.headers,
    });
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      headers = h as IncomingHttpHeaders;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    const done = () => {
      session.close();
      if (status) resolve(answer(status, headers, Buffer.concat(chunks)));
      else reject(new Error("HTTP/2 stream closed without an answer"));
    };
    stream.on("end", done);
    stream.on("error", () => done()); // a reset after the answer (the server stopped reading the body)
    const body = options.body;
    if (body === undefined) stream.end();
    else if (Buffer.isBuffer(body)) stream.end(body);
    else body.pipe(stream);
  });
}

/** A multipart/form-data body with one file field. */
export function multipart(fileName: string, contentType: string, data: Buffer, field = "file") {
  const boundary = `----nexus-front-${randomBytes(12).toString("hex")}`;
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${fileName}"\r\nContent-Type: ${contentType}\r\n\r\n`;
  return {
    body: Buffer.concat([Buffer.from(head), data, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}
