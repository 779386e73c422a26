/**
 * npm run demo -- [--base URL] [--ca root.crt | --insecure] [--data-dir DIR | --s3] [--doctor …] [--admin …]
 *
 * The NEXUS scenario against a running server, through the HTTP API only (shared/API.md), printing each step and
 * its HTTP status: a doctor logs in → creates a patient with consents → uploads a mammogram (encrypted) → asks for
 * an AI prediction → the patient withdraws `ai_analysis` and `care` → the same requests are now refused (403) →
 * the admin's audit trail holds an event for every one of these requests, with the right outcome, and the hash
 * chain verifies. Then the screening programme (issue 12), on the demo patient: a synthetic four-view DICOM exam with
 * her identity in the headers → a file of another woman refused (409 identity_mismatch, fields named) → the exam
 * AI → the first reading (L1, normal) by the doctor → the second reading (L2) by doctor2, blind → the woman
 * downloads her result letter (PDF; its text shown with pdftotext when poppler-utils is installed).
 * Exits non-zero as soon as one step does not behave so.
 *
 * The API never hands out stored bytes, so "the stored object is ciphertext" is checked beside it, and only when
 * the script can read the server's storage itself: `--data-dir DIR` (the server's DATA_DIR, local object store in
 * DIR/objects) or `--s3` (the S3 endpoint and keys in S3_* / MINIO_* variables, as the server reads them).
 * Without either, that step says "not checked" (it does not fail).
 *
 *   --base URL          the server (default NEXUS_URL, else http://127.0.0.1:3000); e.g. https://127.0.0.1:8443
 *   --ca FILE           trust this CA for HTTPS (e.g. the local CA root printed by npm run start:https)
 *   --insecure          accept any certificate (a self-signed test server); says so in the output
 *   --doctor EMAIL / --doctor-password PW, --admin EMAIL / --admin-password PW, --doctor2 EMAIL / --doctor2-password PW,
 *   --patient EMAIL / --patient-password PW (the programme part: a second radiologist and a patient of both doctors)
 *                       accounts to use (default: the demo accounts and NEXUS_DEMO_PASSWORD or nexus-demo-2026)
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { screeningAttributes, writeDicom } from "../app/imaging/dicom-writer";
import { LocalStore } from "../app/vault/local-store.server";
import { S3Store, s3OptionsFromEnv } from "../app/vault/s3-store.server";
import type { ObjectStore } from "../app/vault/store.server";

const DEMO_PASSWORD = process.env.NEXUS_DEMO_PASSWORD ?? "nexus-demo-2026";
/** The vault's format magic (app/vault/format.server.ts) and its object key (app/vault/vault.server.ts). */
const VAULT_MAGIC = Buffer.from("NXVF", "ascii");
const objectKey = (imageId: string) => `images/${imageId}`;

const { values: args } = parseArgs({
  options: {
    base: { type: "string", default: process.env.NEXUS_URL ?? "http://127.0.0.1:3000" },
    ca: { type: "string" },
    insecure: { type: "boolean", default: false },
    "data-dir": { type: "string" },
    s3: { type: "boolean", default: false },
    doctor: { type: "string", default: "doctor@demo.nexus" },
    "doctor-password": { type: "string", default: DEMO_PASSWORD },
    admin: { type: "string", default: "admin@demo.nexus" },
    "admin-password": { type: "string", default: DEMO_PASSWORD },
    doctor2: { type: "string", default: "doctor2@demo.nexus" },
    "doctor2-password": { type: "string", default: DEMO_PASSWORD },
    patient: { type: "string", default: "patient@demo.nexus" },
    "patient-password": { type: "string", default: DEMO_PASSWORD },
  },
});

const base = new URL(args.base!);
const tlsOptions = base.protocol === "https:" ? { ca: args.ca ? readFileSync(args.ca) : undefined, rejectUnauthorized: !args.insecure } : {};
const agent = base.protocol === "https:" ? new https.Agent({ keepAlive: true, ...tlsOptions }) : new http.Agent({ keepAlive: true });

// ---- a minimal HTTP client (node:http/https: a CA of our choosing, no extra dependency) -------------------------

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers are checked field by field below
  json: any;
  requestId: string | null;
}

function call(
  method: string,
  pathname: string,
  options: { token?: string; json?: unknown; body?: Buffer; contentType?: string } = {},
): Promise<Answer> {
  const url = new URL(pathname, base);
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: Buffer | undefined = options.body;
  if (options.json !== undefined) {
    body = Buffer.from(JSON.stringify(options.json));
    headers["Content-Type"] = "application/json";
  }
  if (options.contentType) headers["Content-Type"] = options.contentType;
  if (body) headers["Content-Length"] = String(body.length);
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const data = Buffer.concat(chunks);
        let json: unknown = null;
        if (/json/.test(String(res.headers["content-type"] ?? ""))) {
          try {
            json = JSON.parse(data.toString("utf8"));
          } catch {
            /* not JSON after all */
          }
        }
        const id = res.headers["x-request-id"];
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data, json, requestId: typeof id === "string" ? id : null });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

function multipart(field: string, fileName: string, contentType: string, data: Buffer, fields: Record<string, string> = {}) {
  const boundary = `----nexus-demo-${randomBytes(12).toString("hex")}`;
  // Plain fields (laterality, view…) come before the file part they apply to.
  const plain = Object.entries(fields)
    .map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
    .join("");
  const head = `${plain}--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${fileName}"\r\nContent-Type: ${contentType}\r\n\r\n`;
  return {
    body: Buffer.concat([Buffer.from(head), data, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

// ---- steps and their report -------------------------------------------------------------------------------------

class StepFailed extends Error {}
let stepNumber = 0;
let skipped = 0;
/** Requests the audit trail must show, with the outcome it must record. */
const expectedEvents: { requestId: string; what: string; outcome: "allowed" | "denied" }[] = [];

function line(text = "") {
  console.log(text);
}
/** Lines about the current step, printed under its status line. */
let details: string[] = [];
function detail(text: string) {
  details.push(`      ${text}`);
}
function flushDetails() {
  for (const text of details) console.log(text);
  details = [];
}

/** Prints "[n] title ..... result". */
function report(label: string, result: string) {
  console.log(`${label} ${".".repeat(Math.max(3, 96 - label.length))} ${result}`);
}

/** Runs one step; prints its HTTP status and ok, or FAILED with the reason; a failure stops the scenario. */
async function step(title: string, run: () => Promise<string>): Promise<void> {
  stepNumber++;
  const label = `[${String(stepNumber).padStart(2)}] ${title}`;
  try {
    const status = await run();
    report(label, status === "skipped" ? "not checked" : `${status} ok`);
    flushDetails();
  } catch (error) {
    report(label, "FAILED");
    detail(error instanceof StepFailed ? error.message : `unexpected error: ${(error as Error).message ?? error}`);
    flushDetails();
    finish(false);
  }
}

/** Fails the step unless the answer has the status expected. */
function expectStatus(answer: Answer, expected: number, what: string): string {
  if (answer.status !== expected) {
    const error = answer.json?.error ? ` ${answer.json.error.code}: ${answer.json.error.message}` : ` ${answer.body.toString("utf8").slice(0, 200)}`;
    const hint =
      answer.status === 404 && what.includes("prediction")
        ? " (the prediction endpoint is not available on this server)"
        : answer.status === 401 && what.includes("logs in")
          ? " (no such account? on a server without demo accounts, pass --doctor/--admin and their passwords)"
          : "";
    throw new StepFailed(`${what}: expected ${expected}, got ${answer.status}${error}${hint}`);
  }
  return String(answer.status);
}

function remember(answer: Answer, what: string, outcome: "allowed" | "denied") {
  if (!answer.requestId) throw new StepFailed(`${what}: the answer has no X-Request-Id header`);
  expectedEvents.push({ requestId: answer.requestId, what, outcome });
}

function finish(ok: boolean): never {
  line();
  if (ok) {
    line(`NEXUS scenario: all ${stepNumber} steps behaved as expected${skipped ? ` (${skipped} not checked, see above)` : ""}.`);
    process.exit(0);
  }
  line(`NEXUS scenario FAILED at step ${stepNumber}.`);
  process.exit(1);
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** A synthetic greyscale "mammogram" (an elliptical breast-like shape with texture), as a baseline JPEG. */
async function syntheticMammogram(): Promise<Buffer> {
  const width = 512;
  const height = 640;
  const pixels = Buffer.alloc(width * height);
  const noise = randomBytes(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = x / (width * 0.9);
      const dy = (y - height / 2) / (height * 0.45);
      const r = dx * dx + dy * dy;
      const tissue = r < 1 ? 70 + 120 * (1 - r) : 8;
      pixels[y * width + x] = Math.min(255, Math.round(tissue + (noise[y * width + x]! % 24)));
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 1 } }).jpeg({ quality: 90 }).toBuffer();
}

async function readAll(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

// ---- the scenario -------------------------------------------------------------------------------------------------

const CONNECTION_ERRORS = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ETIMEDOUT"]);

async function main() {
  // No server there: one line that says what to do, not a stack.
  try {
    await call("GET", "/healthz");
  } catch (error) {
    if (CONNECTION_ERRORS.has((error as NodeJS.ErrnoException).code ?? "")) {
      console.error(`demo: no Nexus server at ${base.origin} — start the server first (npm start)`);
      process.exit(1);
    }
    throw error;
  }
  line(`NEXUS scenario against ${base.origin}, through the HTTP API only`);
  if (base.protocol === "https:") {
    line(
      args.insecure
        ? "  HTTPS, certificate NOT verified (--insecure)"
        : `  HTTPS, certificate verified${args.ca ? ` against ${args.ca}` : " against the system's CAs"}`,
    );
  }
  line();

  let doctor = "";
  let patientToken = "";
  let admin = "";
  let patientId = "";
  let patientAccount: { email: string; temporaryPassword: string } | undefined;
  let imageId = "";
  let original: Buffer = Buffer.alloc(0);

  await step("The server answers (GET /healthz)", async () => expectStatus(await call("GET", "/healthz"), 200, "health"));

  await step(`Doctor ${args.doctor} logs in (POST /api/v1/tokens)`, async () => {
    const res = await call("POST", "/api/v1/tokens", { json: { email: args.doctor, password: args["doctor-password"] } });
    const status = expectStatus(res, 201, "doctor logs in");
    if (res.json?.role !== "doctor") throw new StepFailed(`${args.doctor} has role ${res.json?.role}, not doctor`);
    doctor = res.json.token;
    remember(res, "doctor login", "allowed");
    return status;
  });

  await step("Doctor creates a patient with consents care + ai_analysis (POST /api/v1/patients)", async () => {
    const email = `nexus-demo-${randomBytes(4).toString("hex")}@demo.nexus`;
    const res = await call("POST", "/api/v1/patients", {
      token: doctor,
      json: { displayName: "Patiente démo NEXUS", email, consents: { care: true, ai_analysis: true, research: false } },
    });
    const status = expectStatus(res, 201, "patient creation");
    patientId = res.json.id;
    patientAccount = res.json.account;
    if (!patientAccount?.temporaryPassword) throw new StepFailed("the answer carries no patient account (account.temporaryPassword)");
    remember(res, "patient creation", "allowed");
    detail(`patient ${patientId}, account ${patientAccount.email} (one-time password handed to the patient)`);
    return status;
  });

  await step("Doctor uploads a mammogram (POST /api/v1/patients/:id/images, multipart)", async () => {
    original = await syntheticMammogram();
    const form = multipart("file", "mammographie-demo.jpg", "image/jpeg", original, { laterality: "L", view: "CC" });
    const res = await call("POST", `/api/v1/patients/${patientId}/images`, { token: doctor, ...form });
    const status = expectStatus(res, 201, "upload");
    imageId = res.json.id;
    if (res.json.sha256 !== sha256(original)) throw new StepFailed(`the server's SHA-256 ${res.json.sha256} is not the file's ${sha256(original)}`);
    remember(res, "image upload", "allowed");
    detail(`image ${imageId}: ${original.length} bytes of JPEG, SHA-256 ${sha256(original).slice(0, 16)}… (server agrees)`);
    return status;
  });

  await step("The stored object is ciphertext (read from storage, beside the API)", async () => {
    let store: ObjectStore | null = null;
    let where = "";
    if (args["data-dir"]) {
      const root = path.join(path.resolve(args["data-dir"]), "objects");
      store = new LocalStore(root);
      where = `local object store ${root}`;
    } else if (args.s3) {
      const options = s3OptionsFromEnv(process.env);
      if (!options) throw new StepFailed("--s3 given but no S3 endpoint in the environment (S3_ENDPOINT, S3_HOST or MINIO_ENDPOINT)");
      const s3 = new S3Store(options);
      store = s3;
      where = `S3 ${s3.location}`;
    }
    if (!store) {
      skipped++;
      detail("not checked: the API never returns stored bytes; give --data-dir <the server's DATA_DIR> (local store)");
      detail("or --s3 (S3_* variables of the server's object store) to read the stored object and show it");
      return "skipped";
    }
    const stored = await readAll(await store.get(objectKey(imageId)));
    const problems: string[] = [];
    if (!stored.subarray(0, 4).equals(VAULT_MAGIC)) problems.push(`it does not start with the vault magic "NXVF"`);
    if (stored.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff]))) problems.push("it starts with the JPEG start-of-image marker");
    if (stored.includes(Buffer.from("JFIF"))) problems.push('it contains the JPEG "JFIF" marker');
    for (const at of [0, 1024, Math.floor(original.length / 2), original.length - 64]) {
      if (stored.includes(original.subarray(at, at + 64))) problems.push(`it contains plaintext bytes (offset ${at})`);
    }
    if (problems.length) throw new StepFailed(`stored object ${objectKey(imageId)} in ${where}: ${problems.join("; ")}`);
    detail(`read ${objectKey(imageId)} from ${where}: ${stored.length} bytes`);
    detail(`starts with ${stored.subarray(0, 16).toString("hex").replace(/(..)/g, "$1 ").trim()}  ("NXVF", version, nonce prefix…)`);
    detail(`the JPEG starts with ${original.subarray(0, 16).toString("hex").replace(/(..)/g, "$1 ").trim()}  (start-of-image marker)`);
    detail("no JPEG marker and no 64-byte run of the original appear in the stored object");
    return "NXVF";
  });

  await step("Doctor reads the image back, decrypted (GET /api/v1/images/:id)", async () => {
    const res = await call("GET", `/api/v1/images/${imageId}`, { token: doctor });
    const status = expectStatus(res, 200, "image read");
    if (!res.body.equals(original)) throw new StepFailed(`the bytes differ from the upload (SHA-256 ${sha256(res.body)})`);
    remember(res, "image read", "allowed");
    detail(`${res.body.length} bytes, ${res.headers["content-type"]}, identical to the upload`);
    return status;
  });

  await step("AI prediction on the image (POST /api/v1/images/:id/predictions)", async () => {
    const res = await call("POST", `/api/v1/images/${imageId}/predictions`, { token: doctor });
    const status = expectStatus(res, 201, "AI prediction");
    const p = res.json;
    if (typeof p?.label !== "string" || typeof p?.probability !== "number" || !p?.model?.name) {
      throw new StepFailed(`the answer lacks label, probability or model: ${JSON.stringify(p).slice(0, 300)}`);
    }
    remember(res, "AI prediction", "allowed");
    const classes = Object.entries((p.probabilities ?? {}) as Record<string, number>)
      .map(([k, v]) => `${k} ${(v * 100).toFixed(1)} %`)
      .join(", ");
    detail(`${p.label} (${(p.probability * 100).toFixed(1)} %)${classes ? ` — ${classes}` : ""}`);
    detail(`model ${p.model.name} ${p.model.version ?? ""}, SHA-256 ${String(p.model.sha256 ?? "").slice(0, 16)}…`);
    if (p.heatmapUrl) {
      const heatmap = await call("GET", p.heatmapUrl, { token: doctor });
      if (heatmap.status !== 200 || !/^image\//.test(String(heatmap.headers["content-type"]))) {
        throw new StepFailed(`heatmap ${p.heatmapUrl}: expected 200 image/*, got ${heatmap.status} ${heatmap.headers["content-type"]}`);
      }
      remember(heatmap, "heatmap read", "allowed");
      detail(`heatmap ${p.heatmapUrl}: ${heatmap.body.length} bytes, ${heatmap.headers["content-type"]}`);
    }
    return status;
  });

  await step("Patient logs in with the temporary password and chooses her own (POST /api/v1/tokens)", async () => {
    const res = await call("POST", "/api/v1/tokens", {
      json: { email: patientAccount!.email, password: patientAccount!.temporaryPassword, newPassword: `demo-patient-${Date.now()}` },
    });
    const status = expectStatus(res, 201, "patient logs in");
    patientToken = res.json.token;
    remember(res, "patient login", "allowed");
    return status;
  });

  for (const purpose of ["ai_analysis", "care"] as const) {
    await step(`Patient withdraws "${purpose}" (PUT /api/v1/patients/:id/consents/${purpose})`, async () => {
      const res = await call("PUT", `/api/v1/patients/${patientId}/consents/${purpose}`, {
        token: patientToken,
        json: { granted: false },
      });
      const status = expectStatus(res, 200, `withdraw ${purpose}`);
      if (res.json?.granted !== false) {
        throw new StepFailed(`the new state does not say ${purpose} is withdrawn: ${JSON.stringify(res.json).slice(0, 300)}`);
      }
      remember(res, `${purpose} withdrawn`, "allowed");
      return status;
    });
  }

  await step("The same image read is now refused (GET /api/v1/images/:id)", async () => {
    const res = await call("GET", `/api/v1/images/${imageId}`, { token: doctor });
    const status = expectStatus(res, 403, "image read after withdrawal");
    remember(res, "image read after withdrawal", "denied");
    detail(`« ${res.json?.error?.message} »`);
    return status;
  });

  await step("The same AI prediction is now refused (POST /api/v1/images/:id/predictions)", async () => {
    const res = await call("POST", `/api/v1/images/${imageId}/predictions`, { token: doctor });
    const status = expectStatus(res, 403, "AI prediction after withdrawal");
    remember(res, "AI prediction after withdrawal", "denied");
    detail(`« ${res.json?.error?.message} »`);
    return status;
  });


  // ---- the screening programme (issue 12): exam, identity check, exam AI, double reading, letter --------------

  let doctor2 = "";
  let woman = "";
  let womanId = "";
  let examId = "";
  let identity = { displayName: "", ipp: "", birthDate: "", sex: "F" };

  await step(`Second radiologist ${args.doctor2} logs in (POST /api/v1/tokens)`, async () => {
    const res = await call("POST", "/api/v1/tokens", { json: { email: args.doctor2, password: args["doctor2-password"] } });
    const status = expectStatus(res, 201, "doctor2 logs in");
    doctor2 = res.json.token;
    remember(res, "doctor2 login", "allowed");
    return status;
  });

  await step(`Patient ${args.patient} logs in; the doctor opens her record (GET /api/v1/patients/:id)`, async () => {
    const login = await call("POST", "/api/v1/tokens", { json: { email: args.patient, password: args["patient-password"] } });
    expectStatus(login, 201, "patient logs in");
    woman = login.json.token;
    womanId = (await call("GET", "/api/v1/me", { token: woman })).json?.patientId;
    if (!womanId) throw new StepFailed(`${args.patient} is not linked to a patient record`);
    const res = await call("GET", `/api/v1/patients/${womanId}`, { token: doctor });
    const status = expectStatus(res, 200, "patient record");
    if (!res.json.ipp || !res.json.birthDate) throw new StepFailed("the demo patient has no IPP or birth date to put in the DICOM headers");
    identity = { displayName: res.json.displayName, ipp: res.json.ipp, birthDate: res.json.birthDate, sex: res.json.sex ?? "F" };
    remember(res, "patient record read", "allowed");
    detail(`${identity.displayName}, born ${identity.birthDate}, IPP ${identity.ipp}`);
    return status;
  });

  const study = `1.2.826.0.1.3680043.10.999.${Date.now()}.${randomInt(1_000_000)}`;
  const dicomName = (displayName: string) => {
    const [first, ...rest] = displayName.split(" ");
    return `${rest.join(" ").toUpperCase()}^${(first ?? "").toUpperCase()}`;
  };
  /** A synthetic 12-bit view (a breast-like ellipse with texture) with the study's and the woman's tags. */
  const view = (who: { id: string; name: string; birthDate: string; sex: string }, laterality: "R" | "L", position: string) => {
    const columns = 256;
    const rows = 320;
    const pixels = new Uint16Array(columns * rows);
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < columns; x++) {
        const dx = (laterality === "R" ? x : columns - 1 - x) / (columns * 0.9);
        const dy = (y - rows / 2) / (rows * 0.45);
        const r = dx * dx + dy * dy;
        pixels[y * columns + x] = Math.round((r < 1 ? 900 + 2400 * (1 - r) : 60) + randomInt(300));
      }
    }
    return Buffer.from(
      writeDicom({
        rows,
        columns,
        pixels,
        bitsAllocated: 16,
        bitsStored: 12,
        sopInstanceUid: `${study}.${laterality === "R" ? 1 : 2}.${position.length}`,
        attributes: screeningAttributes({
          patient: { id: who.id, name: who.name, birthDate: who.birthDate, sex: who.sex },
          studyInstanceUid: study,
          studyDate: new Date().toISOString().slice(0, 10).replace(/-/g, ""),
          accessionNumber: `DEMO${randomInt(1_000_000)}`,
          laterality,
          view: position,
        }),
      }),
    );
  };

  await step("Doctor uploads a four-view screening exam as DICOM (R-CC, L-CC, R-MLO, L-MLO)", async () => {
    const who = { id: identity.ipp, name: dicomName(identity.displayName), birthDate: identity.birthDate.replace(/-/g, ""), sex: identity.sex };
    let status = "";
    for (const [laterality, position] of [["R", "CC"], ["L", "CC"], ["R", "MLO"], ["L", "MLO"]] as const) {
      const form = multipart("file", `${laterality}-${position}.dcm`, "application/dicom", view(who, laterality, position));
      const res = await call("POST", `/api/v1/patients/${womanId}/images`, { token: doctor, ...form });
      status = expectStatus(res, 201, `upload ${laterality}-${position}`);
      if (res.json.laterality !== laterality || res.json.view !== position) {
        throw new StepFailed(`${laterality}-${position} was filed as ${res.json.laterality}-${res.json.view}`);
      }
      examId = res.json.examId;
      remember(res, `DICOM ${laterality}-${position}`, "allowed");
    }
    detail(`PatientID ${who.id}, PatientName ${who.name}, birth ${who.birthDate}; StudyInstanceUID ${study}`);
    detail(`exam ${examId}: laterality and view read from ImageLaterality / ViewPosition`);
    return status;
  });

  await step("A file of another woman is refused (409 identity_mismatch, nothing stored)", async () => {
    const other = { id: "IPP-AUTRE-42", name: "MARTIN^JEANNE", birthDate: "19550302", sex: "F" };
    const form = multipart("file", "autre-patiente.dcm", "application/dicom", view(other, "R", "CC"));
    const res = await call("POST", `/api/v1/patients/${womanId}/images`, { token: doctor, ...form });
    const status = expectStatus(res, 409, "file of another woman");
    if (res.json?.error?.code !== "identity_mismatch") throw new StepFailed(`expected identity_mismatch, got ${res.json?.error?.code}`);
    remember(res, "identity mismatch", "denied");
    detail(`« ${res.json.error.message} »`);
    return status;
  });

  await step("Exam AI reads every view (POST /api/v1/exams/:id/ai)", async () => {
    const res = await call("POST", `/api/v1/exams/${examId}/ai`, { token: doctor });
    const status = expectStatus(res, 201, "exam AI");
    const ai = res.json;
    remember(res, "exam AI", "allowed");
    const pc = (v: number | undefined) => (typeof v === "number" ? `${(v * 100).toFixed(1)} %` : "—");
    detail(`exam ${pc(ai.exam?.probability)} — right breast ${pc(ai.breasts?.R?.probability)}, left breast ${pc(ai.breasts?.L?.probability)}`);
    detail(`${(ai.views ?? []).length} views read by ${ai.model?.name} ${ai.model?.version ?? ""} (for the readers only, never shown to the woman)`);
    return status;
  });

  await step("First reading (L1) by the doctor: ACR 1 right, ACR 2 left (POST /api/v1/exams/:id/readings)", async () => {
    const list = await call("GET", "/api/v1/worklists/first-reading", { token: doctor });
    expectStatus(list, 200, "first-reading worklist");
    if (!list.json.exams.some((e: { id: string }) => e.id === examId)) throw new StepFailed("the exam is not in the doctor's first-reading worklist");
    const res = await call("POST", `/api/v1/exams/${examId}/readings`, {
      token: doctor,
      json: { breasts: { R: { acr: 1, density: "B" }, L: { acr: 2, density: "B" } }, conclusion: "Pas d'anomalie suspecte." },
    });
    const status = expectStatus(res, 201, "first reading");
    if (res.json.examStatus !== "awaiting_second_reading") throw new StepFailed(`exam status ${res.json.examStatus}, expected awaiting_second_reading`);
    remember(res, "first reading", "allowed");
    detail(`reading ${res.json.kind} → exam ${res.json.examStatus}`);
    return status;
  });

  await step("The first reader cannot second-read her own exam (409 same_reader)", async () => {
    const res = await call("POST", `/api/v1/exams/${examId}/readings`, { token: doctor, json: { breasts: { R: { acr: 1, density: "B" }, L: { acr: 1, density: "B" } } } });
    const status = expectStatus(res, 409, "same reader");
    if (res.json?.error?.code !== "same_reader") throw new StepFailed(`expected same_reader, got ${res.json?.error?.code}`);
    return status;
  });

  await step("Second reading (L2) by doctor2, blind: normal → final_normal", async () => {
    const list = await call("GET", "/api/v1/worklists/second-reading", { token: doctor2 });
    expectStatus(list, 200, "second-reading worklist");
    if (!list.json.exams.some((e: { id: string }) => e.id === examId)) throw new StepFailed("the exam is not in doctor2's second-reading worklist");
    const exam = await call("GET", `/api/v1/exams/${examId}`, { token: doctor2 });
    expectStatus(exam, 200, "exam for the second reader");
    if ((exam.json.readings ?? []).length > 0 || exam.json.ai) throw new StepFailed("the second reader sees the first reading or the AI before reading");
    detail("before her reading, doctor2 sees neither the first reading nor the AI");
    const res = await call("POST", `/api/v1/exams/${examId}/readings`, {
      token: doctor2,
      json: { breasts: { R: { acr: 1, density: "B" }, L: { acr: 1, density: "B" } } },
    });
    const status = expectStatus(res, 201, "second reading");
    if (res.json.examStatus !== "final_normal") throw new StepFailed(`exam status ${res.json.examStatus}, expected final_normal`);
    remember(res, "second reading", "allowed");
    detail(`reading ${res.json.kind} → exam ${res.json.examStatus}`);
    return status;
  });

  await step("The woman downloads her result letter (GET /api/v1/exams/:id/letter, PDF)", async () => {
    const res = await call("GET", `/api/v1/exams/${examId}/letter`, { token: woman });
    const status = expectStatus(res, 200, "result letter");
    if (res.headers["content-type"] !== "application/pdf" || !res.body.subarray(0, 5).equals(Buffer.from("%PDF-"))) {
      throw new StepFailed(`not a PDF: ${res.headers["content-type"]}`);
    }
    remember(res, "result letter", "allowed");
    detail(`${res.body.length} bytes of PDF, rendered on request (no copy on the server's disk)`);
    const text = spawnSync("pdftotext", ["-enc", "UTF-8", "-", "-"], { input: res.body });
    if (text.error) {
      detail("(install poppler-utils to see its text here)");
    } else {
      const body = text.stdout.toString();
      if (/ACR|%|score/i.test(body)) throw new StepFailed("the woman's letter shows a classification or a model score");
      for (const l of body.split("\n").filter((x) => x.trim()).slice(0, 12)) detail(`│ ${l.trim()}`);
    }
    return status;
  });

  await step(`Admin ${args.admin} logs in (POST /api/v1/tokens)`, async () => {
    const res = await call("POST", "/api/v1/tokens", { json: { email: args.admin, password: args["admin-password"] } });
    const status = expectStatus(res, 201, "admin logs in");
    if (res.json?.role !== "admin") throw new StepFailed(`${args.admin} has role ${res.json?.role}, not admin`);
    admin = res.json.token;
    return status;
  });

  await step("The admin's audit trail shows every step (GET /api/v1/audit?requestId=…)", async () => {
    const rows: string[] = [];
    const missing: string[] = [];
    for (const expected of expectedEvents) {
      const res = await call("GET", `/api/v1/audit?requestId=${encodeURIComponent(expected.requestId)}`, { token: admin });
      expectStatus(res, 200, "audit search");
      const events = (res.json?.events ?? []) as { at: string; actorRole: string | null; action: string; outcome: string; ip: string | null }[];
      const match = events.find((e) => e.outcome === expected.outcome);
      if (!match) {
        missing.push(`${expected.what} (${expected.outcome}; found ${events.map((e) => `${e.action}/${e.outcome}`).join(", ") || "nothing"})`);
        continue;
      }
      rows.push(
        `${match.at.slice(11, 23)}  ${String(match.actorRole ?? "—").padEnd(8)} ${match.action.padEnd(18)} ${match.outcome.padEnd(8)} ${expected.what}`,
      );
    }
    for (const row of rows) detail(row);
    if (missing.length) throw new StepFailed(`no audit event for: ${missing.join("; ")}`);
    return `${rows.length} events`;
  });

  await step("The audit hash chain verifies (GET /api/v1/audit/verify)", async () => {
    const res = await call("GET", "/api/v1/audit/verify", { token: admin });
    const status = expectStatus(res, 200, "audit verification");
    if (res.json?.ok !== true) throw new StepFailed(`chain broken at event ${res.json?.firstBrokenId} (${res.json?.checked} checked)`);
    detail(`${res.json.checked} events checked, chain intact`);
    return status;
  });

  finish(true);
}

main().catch((error: Error) => {
  console.error(`demo: ${error.message}`);
  process.exit(1);
});
