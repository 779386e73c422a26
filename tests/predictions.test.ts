/** AI readings through the API and the pages: consent, traceability, heatmap, bad images, history, statistics. */
import { randomUUID } from "node:crypto";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { createAccount, createPatient } from "./helpers/fixtures";
import { api, baseUrl, BrowserSession, tokenFor } from "./helpers/http";

let doctor: { email: string; password: string };
let doctorToken = "";
let patient: { id: string; token: string };

async function upload(patientId: string, bytes: Buffer, name = "examen.jpg"): Promise<string> {
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(bytes)]), name);
  const res = await fetch(`${baseUrl()}/api/v1/patients/${patientId}/images`, { method: "POST", headers: { Authorization: `Bearer ${doctorToken}` }, body: form });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const mammogram = (w = 600, h = 800) =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r: 20, g: 20, b: 20 } } })
    .composite([{ input: Buffer.from(`<svg width="${w}" height="${h}"><ellipse cx="${w / 2}" cy="${h / 2}" rx="${w / 3}" ry="${h / 3}" fill="#ccc"/></svg>`) }])
    .jpeg()
    .toBuffer();

beforeAll(async () => {
  doctor = await createAccount("doctor");
  doctorToken = await tokenFor(doctor.email, doctor.password);
  const created = await createPatient(doctorToken, { displayName: "Lecture IA", email: `ai-${randomUUID().slice(0, 6)}@test.nexus`, consents: { care: true, ai_analysis: true, research: true } });
  patient = { id: created.id, token: await tokenFor(created.account!.email, created.account!.password) };
});

describe("POST /api/v1/images/:imageId/predictions", () => {
  it("returns the label, the probabilities from classes.json, the exact model and the demo notice", async () => {
    const imageId = await upload(patient.id, await mammogram());
    const res = await api("POST", `/api/v1/images/${imageId}/predictions`, { token: doctorToken });
    expect(res.status).toBe(201);
    const p = res.body;
    expect(Object.keys(p.probabilities).sort()).toEqual(["Negative", "Positive"]);
    expect(p.probabilities[p.label]).toBe(p.probability);
    expect(Math.abs(p.probabilities.Negative + p.probabilities.Positive - 1)).toBeLessThan(1e-5);
    expect(p.model).toMatchObject({ name: "densenet121-demo", clinical: false });
    expect(p.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(p.notice).toBe("modèle de démonstration — non validé cliniquement");
    expect(p.heatmapUrl).toBe(`/api/v1/predictions/${p.id}/heatmap`);

    const heatmap = await fetch(baseUrl() + p.heatmapUrl, { headers: { Authorization: `Bearer ${doctorToken}` } });
    expect(heatmap.headers.get("Content-Type")).toBe("image/png");
    const meta = await sharp(Buffer.from(await heatmap.arrayBuffer())).metadata();
    expect(meta.hasAlpha).toBe(true);
    expect(meta.width! / meta.height!).toBeCloseTo(600 / 800, 1);

    // The image list carries the latest reading; the history lists it.
    const list = await api("GET", `/api/v1/patients/${patient.id}/images`, { token: doctorToken });
    const item = list.body.images.find((i: { id: string }) => i.id === imageId);
    expect(item.latestPrediction).toMatchObject({ id: p.id, label: p.label });
    const history = await api("GET", `/api/v1/images/${imageId}/predictions`, { token: doctorToken });
    expect(history.body.predictions.map((x: { id: string }) => x.id)).toEqual([p.id]);
    // Model output is never the patient's to see (issue 12): not in her list, not by the readings route.
    expect((await api("GET", `/api/v1/images/${imageId}/predictions`, { token: patient.token })).status).toBe(403);
    const own = await api("GET", `/api/v1/patients/${patient.id}/images`, { token: patient.token });
    expect(JSON.stringify(own.body)).not.toMatch(/prediction|probabilit|heatmap/i);
  });

  it("gives different readings for different images (the model is not a constant)", async () => {
    const a = await upload(patient.id, await mammogram(400, 400));
    const b = await upload(patient.id, await sharp({ create: { width: 400, height: 400, channels: 3, background: { r: 240, g: 240, b: 240 } } }).png().toBuffer(), "b.png");
    const pa = (await api("POST", `/api/v1/images/${a}/predictions`, { token: doctorToken })).body;
    const pb = (await api("POST", `/api/v1/images/${b}/predictions`, { token: doctorToken })).body;
    expect(pa.probabilities.Positive).not.toBeCloseTo(pb.probabilities.Positive, 6);
  });

  it("refuses with 403 and the reason when ai_analysis is withdrawn, and audits it", async () => {
    const other = await createPatient(doctorToken, { displayName: "Sans IA", email: `noai-${randomUUID().slice(0, 6)}@test.nexus`, consents: { care: true, ai_analysis: true } });
    const otherToken = await tokenFor(other.account!.email, other.account!.password);
    const imageId = await upload(other.id, await mammogram());
    expect((await api("PUT", `/api/v1/patients/${other.id}/consents/ai_analysis`, { token: otherToken, json: { granted: false } })).status).toBe(200);
    const res = await api("POST", `/api/v1/images/${imageId}/predictions`, { token: doctorToken });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toBe("Consentement retiré pour l'analyse IA.");
    const never = await createPatient(doctorToken, { displayName: "Jamais IA", consents: { care: true } });
    const neverImage = await upload(never.id, await mammogram());
    expect((await api("POST", `/api/v1/images/${neverImage}/predictions`, { token: doctorToken })).body.error.message).toMatch(/pas consenti/);
    const audit = await api("GET", `/api/v1/audit?requestId=${res.headers.get("X-Request-Id")}`, { token: await tokenFor("admin@demo.nexus") });
    expect(audit.body.events[0]).toMatchObject({ action: "image.analyse", outcome: "denied", patientId: other.id });
  });

  it("answers 422 for an image that cannot be decoded, and stores no reading", async () => {
    const good = await mammogram();
    const truncated = good.subarray(0, Math.floor(good.length / 3)); // SOF present, scan data cut
    const imageId = await upload(patient.id, Buffer.from(truncated), "tronque.jpg");
    const res = await api("POST", `/api/v1/images/${imageId}/predictions`, { token: doctorToken });
    expect(res.status).toBe(422);
    expect(res.body.error.message).toMatch(/illisible/i);
    const history = await api("GET", `/api/v1/images/${imageId}/predictions`, { token: doctorToken });
    expect(history.body.predictions).toEqual([]);
  });

  it("erases the heatmap with its image", async () => {
    const imageId = await upload(patient.id, await mammogram());
    const p = (await api("POST", `/api/v1/images/${imageId}/predictions`, { token: doctorToken })).body;
    expect((await api("DELETE", `/api/v1/images/${imageId}`, { token: doctorToken })).status).toBe(204);
    expect((await api("GET", p.heatmapUrl, { token: doctorToken })).status).toBe(410);
  });
});

describe("pages", () => {
  it("shows the reading, the notice and the heatmap on the image page, and the history and statistics", async () => {
    const imageId = await upload(patient.id, await mammogram());
    const session = await BrowserSession.login(doctor.email, doctor.password);
    const analysed = await session.post(`/images/${imageId}`, { intent: "analyse" });
    expect(analysed.status).toBe(201);
    const page = (await session.get(`/images/${imageId}`)).html.replaceAll("<!-- -->", "");
    expect(page).toContain('data-testid="heatmap"');
    expect(page).toContain("modèle de démonstration — non validé cliniquement");
    expect(page).toMatch(/data-testid="prediction-label"[^>]*>(Positive|Negative) — \d+,\d\s%/);
    const record = await session.get(`/patients/${patient.id}`);
    expect(record.html).toContain('data-testid="prediction-history"');
    const stats = await session.get("/statistiques");
    expect(stats.status).toBe(200);
    expect(Number(/data-testid="stats-total"[^>]*>(\d+)</.exec(stats.html)![1])).toBeGreaterThanOrEqual(4);
    expect(stats.html).toContain("<svg");
  });

  it("disables the analysis button with the reason when consent is missing", async () => {
    const p = await createPatient(doctorToken, { displayName: "Bouton Désactivé", consents: { care: true } });
    const imageId = await upload(p.id, await mammogram());
    const session = await BrowserSession.login(doctor.email, doctor.password);
    const page = await session.get(`/images/${imageId}`);
    expect(page.html).toMatch(/<button[^>]*value="analyse"[^>]*disabled/);
    expect(page.html).toContain("n&#x27;a pas consenti à l&#x27;analyse IA");
  });

  it("shows researchers pseudonymised statistics of consenting patients only", async () => {
    const researcher = await BrowserSession.login("researcher@demo.nexus");
    const stats = await researcher.get("/statistiques");
    expect(stats.status).toBe(200);
    expect(stats.html).not.toContain("Lecture IA");
    expect(Number(/data-testid="stats-total"[^>]*>(\d+)</.exec(stats.html)![1])).toBeGreaterThanOrEqual(3);
  });
});
