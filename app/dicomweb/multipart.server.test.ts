import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { mediaType, MultipartError, multipartParts, multipartRelated } from "./multipart.server";

async function* chunked(bytes: Buffer, size: number) {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(source: AsyncIterable<Uint8Array>) {
  const chunks: Buffer[] = [];
  for await (const c of source) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

describe("multipart/related", () => {
  it("reads Content-Type parameters, quoted or not", () => {
    expect(mediaType('multipart/related; type="application/dicom"; boundary="a;b c"')).toEqual({
      type: "multipart/related",
      params: { type: "application/dicom", boundary: "a;b c" },
    });
    expect(mediaType("Multipart/Related;boundary=xyz;type=application/dicom").params.boundary).toBe("xyz");
  });

  it("splits parts written by the writer back into the same bytes, whatever the chunking", async () => {
    const payloads = [randomBytes(100_000), Buffer.alloc(0), Buffer.from("\r\n--b\r\n--"), randomBytes(3)];
    const body = await collect(
      multipartRelated(
        "b0und",
        (async function* () {
          for (const p of payloads) yield { contentType: "application/dicom", body: chunked(p, 1000) };
        })(),
      ),
    );
    for (const size of [13, 4096, body.length]) {
      const got: Buffer[] = [];
      for await (const part of multipartParts(chunked(Buffer.concat([Buffer.from("preamble\r\n"), body]), size), "b0und")) {
        expect(part.headers["content-type"]).toBe("application/dicom");
        got.push(await collect(part.body));
      }
      expect(got.map((g) => g.toString("hex"))).toEqual(payloads.map((p) => p.toString("hex")));
    }
  });

  it("skips a part its reader abandons and goes on with the next", async () => {
    const body = await collect(
      multipartRelated(
        "x",
        (async function* () {
          yield { contentType: "application/dicom", body: chunked(randomBytes(50_000), 999) };
          yield { contentType: "text/plain", body: chunked(Buffer.from("second"), 2) };
        })(),
      ),
    );
    const seen: string[] = [];
    for await (const part of multipartParts(chunked(body, 500), "x")) {
      if (part.headers["content-type"] === "text/plain") seen.push((await collect(part.body)).toString());
      else for await (const chunk of part.body) { void chunk; break; }
    }
    expect(seen).toEqual(["second"]);
  });

  it("refuses a body without its boundary or cut off inside a part", async () => {
    const run = async (text: string) => {
      for await (const part of multipartParts(chunked(Buffer.from(text), 3), "x")) await collect(part.body);
    };
    await expect(run("no boundary here")).rejects.toBeInstanceOf(MultipartError);
    await expect(run("--x\r\nContent-Type: application/dicom\r\n\r\nDICM... and then nothing")).rejects.toThrow(/closing boundary/);
    await expect(run("--x\r\nbroken header line\r\n\r\nabc\r\n--x--")).rejects.toThrow(/malformed part header/);
  });
});
