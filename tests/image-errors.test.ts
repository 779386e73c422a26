/**
 * Errors keep their reason (issue 13 item 4, issue 11 item 5): a preview, a research rendering or a download of an
 * image that cannot be decoded answers its real 4xx with a code and a French/English reason — never a 500 or
 * "Unexpected Server Error" — and the image page says why instead of showing a broken image.
 */
import { randomUUID } from "node:crypto";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { rleBombDicom, writeDicom } from "../app/imaging/dicom-writer";
import { createAccount, createPatient } from "./helpers/fixtures";
import { baseUrl, BrowserSession, tokenFor } from "./helpers/http";

async function upload(token: string, patientId: string, bytes: Uint8Array, type: string, name: string): Promise<string> {
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(bytes)], { type }), name);
  const res = await fetch(`${baseUrl()}/api/v1/patients/${patientId}/images`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const ids = {} as Record<"corruptDicom" | "bomb" | "corruptPng" | "good", string>;
let doctor: BrowserSession;
let researcher: BrowserSession;

beforeAll(async () => {
  const account = await createAccount("doctor");
  const token = await tokenFor(account.email, account.password);
  doctor = await BrowserSession.login(account.email, account.password);
  researcher = await BrowserSession.login("researcher@demo.nexus");
  const patient = await createPatient(token, {
    displayName: `Erreurs ${randomUUID().slice(0, 6)}`,
    email: `err-${randomUUID().slice(0, 6)}@test.nexus`,
    consents: { care: true, research: true },
  });
  // A JPEG-LS DICOM whose stream is garbage (valid header: the upload accepts it, the decoder cannot).
  const corrupt = writeDicom({ rows: 64, columns: 64, pixels: new Array(64 * 64).fill(0), transferSyntax: "1.2.840.10008.1.2.4.80", fragments: [new Uint8Array(64).fill(7)] });
  ids.corruptDicom = await upload(token, patient.id, corrupt, "application/dicom", "corrompu.dcm");
  ids.bomb = await upload(token, patient.id, rleBombDicom(10_000, 10_000), "application/dicom", "bombe.dcm");
  const png = await sharp({ create: { width: 200, height: 200, channels: 3, background: "#777" } }).png({ compressionLevel: 0 }).toBuffer();
  const broken = Buffer.from(png);
  broken.fill(0xaa, 200, broken.length - 40); // IHDR intact, IDAT garbage
  ids.corruptPng = await upload(token, patient.id, broken, "image/png", "abime.png");
  ids.good = await upload(token, patient.id, writeDicom({ rows: 32, columns: 32, pixels: new Array(1024).fill(100) }), "application/dicom", "bon.dcm");
});

/** What Chromium's <img> asks for: image routes answer it (and a JSON client) with JSON, a navigation with a page. */
const AS_IMG = { Accept: "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8" };

async function jsonOf(res: Response & { html: string }) {
  expect(res.headers.get("Content-Type")).toMatch(/application\/json/);
  return JSON.parse(res.html) as { error: { code: string; message: string; fr: string; en: string } };
}

describe("image routes answer a refusal with its code and reason", () => {
  it("preview of a corrupt DICOM stream → 422 unreadable, French by default, English with nexus_lang=en", async () => {
    const res = await doctor.get(`/images/${ids.corruptDicom}/fichier?apercu=1`, AS_IMG);
    expect(res.status).toBe(422);
    const body = await jsonOf(res);
    expect(body.error.code).toBe("unreadable");
    expect(body.error.message).toMatch(/^Image illisible : flux JPEG-LS/);
    expect(body.error.en).toMatch(/^Unreadable image: JPEG-LS/);
    expect(res.headers.get("Cache-Control")).toContain("no-store");
    const en = await doctor.get(`/images/${ids.corruptDicom}/fichier?apercu=1`, { ...AS_IMG, Cookie: `${doctor.cookieHeader()}; nexus_lang=en` });
    expect((await jsonOf(en)).error.message).toMatch(/^Unreadable image/);
    expect(res.html).not.toContain("Unexpected Server Error");
  });

  it("preview of a 100-megapixel RLE declaration → 422 too_many_pixels, before decoding", async () => {
    const res = await doctor.get(`/images/${ids.bomb}/fichier?apercu=1`, AS_IMG);
    expect(res.status).toBe(422);
    expect((await jsonOf(res)).error.code).toBe("too_many_pixels");
    // The server stays responsive.
    expect((await fetch(`${baseUrl()}/healthz`)).status).toBe(200);
  });

  it("research rendering of an undecodable PNG → 422 (was 500), of a DICOM bomb → 422", async () => {
    const png = await researcher.get(`/recherche/images/${ids.corruptPng}`, AS_IMG);
    expect(png.status).toBe(422);
    expect((await jsonOf(png)).error.code).toBe("unreadable");
    const bomb = await researcher.get(`/recherche/images/${ids.bomb}`, AS_IMG);
    expect(bomb.status).toBe(422);
    expect((await jsonOf(bomb)).error).toMatchObject({ code: "too_many_pixels" });
    const good = await researcher.get(`/recherche/images/${ids.good}`);
    expect(good.status).toBe(200);
    expect(good.headers.get("Content-Type")).toBe("image/png");
  });

  it("the image page shows the reason (no broken image) when the header already says it cannot be previewed", async () => {
    const page = await doctor.get(`/images/${ids.bomb}`);
    expect(page.status).toBe(200);
    const html = page.html.replaceAll("<!-- -->", "");
    expect(html).toContain("Aperçu indisponible");
    expect(html).toContain("Image trop grande pour être décodée");
    expect(html).not.toContain(`/images/${ids.bomb}/fichier?apercu=1`);
    // The download of the original stays possible.
    const download = await doctor.get(`/images/${ids.bomb}/fichier?telecharger=1`);
    expect(download.status).toBe(200);
    // In English.
    const en = (await doctor.get(`/images/${ids.bomb}`, { Cookie: `${doctor.cookieHeader()}; nexus_lang=en` })).html.replaceAll("<!-- -->", "");
    expect(en).toContain("Preview unavailable");
    expect(en).toContain("Image too large to decode");
  });

  it("a refusal by the policy keeps its status and reason too (403, JSON, French and English)", async () => {
    const other = await createAccount("doctor");
    const stranger = await BrowserSession.login(other.email, other.password);
    for (const path of [`/images/${ids.good}/fichier?apercu=1`, `/images/${ids.good}/fichier?telecharger=1`]) {
      const res = await stranger.get(path, { Accept: "application/json" });
      expect(res.status).toBe(403);
      const body = await jsonOf(res);
      expect(body.error.fr).toBe("Ce patient ne fait pas partie de votre équipe de soins.");
      expect(body.error.en).toBe("This patient is not in your care team.");
    }
  });

  it("the preview of a good DICOM still renders", async () => {
    const res = await doctor.get(`/images/${ids.good}/fichier?apercu=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("image/png");
  });
});
