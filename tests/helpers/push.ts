/**
 * Helpers of the PACS push tests (a Nexus of their own with PACS_PUSH set): bearer tokens on that server, polling
 * until the push worker has done something, and an exam of the demo patient made final by one reading.
 */
import { DEMO_IDENTITY, FOUR_VIEWS, newStudyUid, screeningView } from "./exams";
import { api, DEMO_PASSWORD } from "./http";

/** An outbox entry as GET /api/v1/outbox lists it. */
export interface OutboxEntry {
  id: string;
  examId: string;
  kind: string;
  status: string;
  attempts: number;
  lastError: string | null;
  sopInstanceUid: string | null;
}

/** A bearer token for a demo account on the server at `base`. */
export async function token(base: string, email: string): Promise<string> {
  const res = await api<{ token: string }>("POST", "/api/v1/tokens", { base, json: { email, password: DEMO_PASSWORD } });
  if (res.status !== 201) throw new Error(`login ${email}: ${res.status}`);
  return res.body.token;
}

/** Polls `probe` every 200 ms until it returns something truthy (then returns it), or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Uploads the four screening views of a new study for the patient (DICOM of the demo identity); the exam's id. */
export async function uploadFourViews(base: string, doctor: string, patientId: string, study = newStudyUid()): Promise<string> {
  let examId = "";
  for (const [laterality, view] of FOUR_VIEWS) {
    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(screeningView(DEMO_IDENTITY, study, laterality, view))], { type: "application/dicom" }), "v.dcm");
    const res = await fetch(`${base}/api/v1/patients/${patientId}/images`, { method: "POST", headers: { Authorization: `Bearer ${doctor}` }, body: form });
    if (res.status !== 201) throw new Error(`upload: ${res.status} ${await res.text()}`);
    examId = ((await res.json()) as { examId: string }).examId;
  }
  return examId;
}

/**
 * A new exam of the demo patient made final by one reading (technically inadequate: a technical recall), which
 * queues its reading SR for PACS_PUSH (and its CAD SR when `ai`: the exam AI reads it first, its answer returned).
 */
export async function finalExam(
  base: string,
  doctor: string,
  patient: string,
  options: { ai?: boolean } = {},
): Promise<{ examId: string; patientId: string; study: string; ai: { exam: { probability: number } } | null }> {
  const patientId = (await api("GET", "/api/v1/me", { base, token: patient })).body.patientId as string;
  const study = newStudyUid();
  const examId = await uploadFourViews(base, doctor, patientId, study);
  let ai = null;
  if (options.ai) {
    const res = await api("POST", `/api/v1/exams/${examId}/ai`, { base, token: doctor });
    if (res.status !== 201) throw new Error(`exam AI: ${res.status} ${JSON.stringify(res.body)}`);
    ai = res.body as { exam: { probability: number } };
  }
  const read = await api("POST", `/api/v1/exams/${examId}/readings`, { base, token: doctor, json: { technicallyInadequate: true } });
  if (read.body.examStatus !== "technical_recall") throw new Error(`reading: ${read.status} ${JSON.stringify(read.body)}`);
  return { examId, patientId, study, ai };
}
