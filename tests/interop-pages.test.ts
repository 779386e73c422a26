/**
 * The interoperability pages, driven like a browser without JavaScript against the running server: the admins'
 * machine accounts (create, a token shown once, a new token, revoke and disable behind a confirmation step — the
 * revoked token no longer opens /dicomweb) and the doctors' reconciliation queue (read the header's identity, attach
 * with the identity check — a mismatch names its fields and is filed only with a reason — or reject after
 * confirming). Who may not gets 403; a form without its CSRF token gets 403 and changes nothing.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { createAccount, createPatient, tokenFor } from "./helpers/fixtures";
import { api, baseUrl, BrowserSession } from "./helpers/http";
import { mammogram, stowBody, uid } from "./helpers/dicom";

const SLOW = 60_000;

/** The visible text of a page (tags and React's comment markers removed, entities decoded). */
const textOf = (html: string) =>
  html
    .replace(/<script[\s\S]*?<\/script>/g, "")
    .replace(/<!-- -->/g, "")
    .replace(/<[^>]+>/g, " ")
    .replace(/&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/\s+/g, " ");

const TOKEN = /nxs_[A-Za-z0-9_-]{20,}/g;

/** A form post with repeated fields (checkboxes), as a browser sends it; `csrf: null` leaves the token out. */
async function postForm(session: BrowserSession, path: string, fields: [string, string][], csrf?: string | null) {
  const body = new URLSearchParams(fields);
  const token = csrf === undefined ? await session.csrf() : csrf;
  if (token !== null) body.set("csrf", token);
  const res = await fetch(new URL(path, baseUrl()), {
    method: "POST",
    headers: { Cookie: session.cookieHeader(), "Content-Type": "application/x-www-form-urlencoded" },
    body,
    redirect: "manual",
  });
  return Object.assign(res, { html: await res.text() });
}

async function stow(token: string, parts: Buffer[]) {
  const { body, contentType } = stowBody(parts);
  const res = await fetch(`${baseUrl()}/dicomweb/studies`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": contentType, Accept: "application/dicom+json" },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** A QIDO-RS search with a machine token: 200 while the token works, 401 once it does not. */
const qido = async (token: string) =>
  (await fetch(`${baseUrl()}/dicomweb/studies?PatientID=none`, { headers: { Authorization: `Bearer ${token}` } })).status;

let adminToken = "";
let doctorToken = "";
let admin: BrowserSession;
let doctor: BrowserSession;

beforeAll(async () => {
  adminToken = await tokenFor("admin@demo.nexus");
  doctorToken = await tokenFor("doctor@demo.nexus");
  admin = await BrowserSession.login("admin@demo.nexus");
  doctor = await BrowserSession.login("doctor@demo.nexus");
}, SLOW);

describe("machine accounts page (/admin/machines)", () => {
  const name = `Mammographe salle ${randomUUID().slice(0, 6)}`;
  const aeTitle = `MG${randomBytes(3).toString("hex").toUpperCase()}`;
  let machineId = "";
  let firstToken = "";
  let secondToken = "";

  async function tokensOf(id: string): Promise<{ id: string; revokedAt: string | null }[]> {
    const list = await api("GET", "/api/v1/machines", { token: adminToken });
    return (list.body.machines as any[]).find((m) => m.id === id)!.tokens;
  }

  it("is the admins' page, linked from their navigation; others are refused", async () => {
    const page = await admin.get("/admin/machines");
    expect(page.status).toBe(200);
    expect(page.html).toContain('href="/admin/machines"');
    expect(textOf(page.html)).toContain("Comptes machines (modalités, PACS)");
    expect((await doctor.get("/admin/machines")).status).toBe(403);
    expect((await new BrowserSession().get("/admin/machines")).status).toBe(302);
    const refused = await postForm(doctor, "/admin/machines", [["intent", "create"], ["name", "Intrus"], ["scopes", "store"]]);
    expect(refused.status).toBe(403);
  });

  it("says what is wrong with the form, in French and in English (400, nothing created)", async () => {
    const fr = await postForm(admin, "/admin/machines", [["intent", "create"], ["name", "x"], ["aeTitle", "A\\B"]]);
    expect(fr.status).toBe(400);
    const text = textOf(fr.html);
    expect(text).toContain("Le nom doit comporter au moins 2 caractères.");
    expect(text).toContain("Au moins une portée : store, ou store et query.");
    expect(text).toContain("Titre AE invalide");
    const english = await BrowserSession.login("admin@demo.nexus");
    english.cookies.set("nexus_lang", "en");
    const en = await postForm(english, "/admin/machines", [["intent", "create"], ["name", "x"], ["scopes", "everything"]]);
    expect(en.status).toBe(400);
    expect(textOf(en.html)).toContain("The name must be at least 2 characters long.");
    expect(textOf(en.html)).toContain("Unknown scope (store, query).");
  });

  it("refuses a form without its CSRF token (403) and creates nothing", async () => {
    const res = await postForm(admin, "/admin/machines", [["intent", "create"], ["name", `${name} sans jeton`], ["scopes", "store"]], null);
    expect(res.status).toBe(403);
    const list = await api("GET", "/api/v1/machines", { token: adminToken });
    expect((list.body.machines as any[]).some((m) => m.name === `${name} sans jeton`)).toBe(false);
  });

  it("creates a machine account and shows its token once; the token opens /dicomweb", { timeout: SLOW }, async () => {
    const res = await postForm(admin, "/admin/machines", [
      ["intent", "create"],
      ["name", name],
      ["aeTitle", aeTitle],
      ["scopes", "store"],
      ["scopes", "query"],
    ]);
    expect(res.status).toBe(201);
    const shown = res.html.match(TOKEN) ?? [];
    expect(new Set(shown).size).toBe(1);
    firstToken = shown[0]!;
    expect(textOf(res.html)).toContain("il ne sera plus jamais affiché");
    expect(await qido(firstToken)).toBe(200);
    // Shown once: the page, read again, lists the machine, never its token.
    const again = await admin.get("/admin/machines");
    expect(again.html).not.toContain(firstToken);
    expect(again.html.match(TOKEN)).toBeNull();
    const text = textOf(again.html);
    expect(text).toContain(name);
    expect(text).toContain(aeTitle);
    expect(text).toContain("recherche et lecture (query)");
    const list = await api("GET", "/api/v1/machines", { token: adminToken });
    const machine = (list.body.machines as any[]).find((m) => m.name === name);
    expect(machine).toMatchObject({ aeTitle, scopes: ["query", "store"], disabledAt: null });
    expect(machine.tokens).toHaveLength(1);
    // Its use was audited: the page shows a last activity.
    expect(machine.lastActivityAt).not.toBeNull();
    machineId = machine.id;
    // The same AE title again: refused, the field named.
    const taken = await postForm(admin, "/admin/machines", [["intent", "create"], ["name", "Autre appareil"], ["aeTitle", aeTitle], ["scopes", "store"]]);
    expect(taken.status).toBe(409);
    expect(textOf(taken.html)).toContain("Ce titre AE est déjà celui d'un autre compte machine.");
  });

  it("issues a second token, shown once; both work", async () => {
    const res = await postForm(admin, "/admin/machines", [["intent", "token"], ["machineId", machineId]]);
    expect(res.status).toBe(201);
    secondToken = (res.html.match(TOKEN) ?? [])[0]!;
    expect(secondToken).toBeTruthy();
    expect(secondToken).not.toBe(firstToken);
    expect(await qido(secondToken)).toBe(200);
    expect(await qido(firstToken)).toBe(200);
    expect((await admin.get("/admin/machines")).html).not.toContain(secondToken);
    const unknown = await postForm(admin, "/admin/machines", [["intent", "token"], ["machineId", randomUUID()]]);
    expect(unknown.status).toBe(404);
    expect(textOf(unknown.html)).toContain("Compte machine ou jeton introuvable");
  });

  it("revokes a token after a confirmation step; it no longer works on /dicomweb, the other still does", async () => {
    const tokens = await tokensOf(machineId);
    const oldest = tokens.at(-1)!;
    const ask = await postForm(admin, "/admin/machines", [["intent", "revoke"], ["machineId", machineId], ["tokenId", oldest.id]]);
    expect(ask.status).toBe(303);
    const confirmation = await admin.get(ask.headers.get("Location")!);
    expect(confirmation.html).toContain('data-testid="machine-confirm"');
    expect(textOf(confirmation.html)).toContain(`Révoquer ce jeton du compte ${name}`);
    // Nothing happened yet.
    expect(await qido(firstToken)).toBe(200);
    const done = await postForm(admin, "/admin/machines", [["intent", "revoke"], ["machineId", machineId], ["tokenId", oldest.id], ["confirm", "1"]]);
    expect(done.status).toBe(200);
    expect(textOf(done.html)).toContain("Jeton révoqué");
    expect(await qido(firstToken)).toBe(401);
    expect(await qido(secondToken)).toBe(200);
    const again = await postForm(admin, "/admin/machines", [["intent", "revoke"], ["machineId", machineId], ["tokenId", oldest.id], ["confirm", "1"]]);
    expect(again.status).toBe(404);
    const audit = await api("GET", `/api/v1/audit?action=machine.revoke&limit=20`, { token: adminToken });
    const mine = (audit.body.events as any[]).filter((e) => e.resourceId === machineId);
    expect(mine.map((e) => e.outcome)).toEqual(["error", "allowed"]);
  });

  it("disables the machine after a confirmation step (every token stops), re-enables it, and a new token works", async () => {
    const ask = await postForm(admin, "/admin/machines", [["intent", "disable"], ["machineId", machineId]]);
    expect(ask.status).toBe(303);
    expect(ask.headers.get("Location")).toContain(`desactiver=${machineId}`);
    expect(await qido(secondToken)).toBe(200);
    const done = await postForm(admin, "/admin/machines", [["intent", "disable"], ["machineId", machineId], ["confirm", "1"]]);
    expect(done.status).toBe(200);
    expect(await qido(secondToken)).toBe(401);
    expect((await tokensOf(machineId)).every((t) => t.revokedAt)).toBe(true);
    // A disabled account gets no token (it could not use it).
    const refused = await postForm(admin, "/admin/machines", [["intent", "token"], ["machineId", machineId]]);
    expect(refused.status).toBe(409);
    expect(textOf(refused.html)).toContain("réactivez-le");
    const enabled = await postForm(admin, "/admin/machines", [["intent", "enable"], ["machineId", machineId]]);
    expect(enabled.status).toBe(200);
    expect(await qido(secondToken)).toBe(401);
    const fresh = await postForm(admin, "/admin/machines", [["intent", "token"], ["machineId", machineId]]);
    expect(fresh.status).toBe(201);
    expect(await qido((fresh.html.match(TOKEN) ?? [])[0]!)).toBe(200);
  });

  it("refuses a doctor's revocation (403, audited as denied) without asking for confirmation", async () => {
    const tokens = await tokensOf(machineId);
    const res = await postForm(doctor, "/admin/machines", [["intent", "revoke"], ["machineId", machineId], ["tokenId", tokens[0]!.id]]);
    expect(res.status).toBe(403);
    const requestId = res.headers.get("X-Request-Id");
    const audit = await api("GET", `/api/v1/audit?requestId=${requestId}`, { token: adminToken });
    expect(audit.body.events).toHaveLength(1);
    expect(audit.body.events[0]).toMatchObject({ action: "machine.revoke", outcome: "denied" });
  });
});

describe("reconciliation queue page (/dicom/a-rapprocher)", () => {
  const ipp = `NEW-${randomUUID().slice(0, 8)}`;
  const studies = [uid(), uid(), uid()];
  const entries: Record<string, string> = {};
  let lucie = "";
  let marie = "";

  const queueOf = async () => {
    const list = await api("GET", "/api/v1/dicom-inbox", { token: doctorToken });
    return (list.body.entries as any[]).filter((e) => e.identity?.patientId === ipp);
  };

  beforeAll(async () => {
    ({ id: lucie } = await createPatient(doctorToken, { displayName: "Lucie Bernard", birthDate: "1970-07-07", sex: "F", consents: { care: true } } as never));
    ({ id: marie } = await createPatient(doctorToken, { displayName: "Marie Dupont-Rapprochement", birthDate: "1962-04-15", sex: "F", consents: { care: true } } as never));
    const sent = await stow(
      doctorToken,
      studies.map((studyInstanceUid) => mammogram({ patientId: ipp, patientName: "BERNARD^LUCIE", birthDate: "19700707", sex: "F", studyInstanceUid })),
    );
    expect(sent.status).toBe(409);
    for (const e of await queueOf()) entries[e.studyInstanceUid] = e.id;
    expect(Object.keys(entries)).toHaveLength(3);
  }, SLOW);

  it("lists the queued instances with the header's identity, audited; the doctors' navigation shows a count", async () => {
    const page = await doctor.get("/dicom/a-rapprocher");
    expect(page.status).toBe(200);
    const text = textOf(page.html);
    expect(text).toContain(ipp);
    expect(text).toContain("BERNARD LUCIE");
    expect(text).toContain("7 juillet 1970");
    expect(text).toContain("DICOMweb (STOW-RS)");
    expect(text).toContain(studies[0]);
    const audit = await api("GET", `/api/v1/audit?requestId=${page.headers.get("X-Request-Id")}`, { token: adminToken });
    expect(audit.body.events).toHaveLength(1);
    expect(audit.body.events[0]).toMatchObject({ action: "inbox.list", outcome: "allowed" });
    const home = await doctor.get("/patients");
    expect(home.html).toContain('href="/dicom/a-rapprocher"');
    expect(home.html).toMatch(/data-testid="inbox-badge">\d+/);
    // The English page.
    const english = await BrowserSession.login("doctor@demo.nexus");
    english.cookies.set("nexus_lang", "en");
    expect(textOf((await english.get("/dicom/a-rapprocher")).html)).toContain("Images to reconcile");
  });

  it("is refused to patients, researchers and admins (403), and to the anonymous (sign-in)", async () => {
    for (const email of ["patient@demo.nexus", "researcher@demo.nexus", "admin@demo.nexus"]) {
      const session = email === "admin@demo.nexus" ? admin : await BrowserSession.login(email);
      expect((await session.get("/dicom/a-rapprocher")).status, email).toBe(403);
      expect((await session.get("/patients")).html).not.toContain("inbox-badge");
    }
    expect((await new BrowserSession().get("/dicom/a-rapprocher")).status).toBe(302);
    const rejected = await postForm(admin, "/dicom/a-rapprocher", [["intent", "reject"], ["entryId", entries[studies[2]!]!], ["confirm", "1"]]);
    expect(rejected.status).toBe(403);
    expect(await queueOf()).toHaveLength(3);
  });

  it("offers the care team's patients born on the header's date, and searches them", async () => {
    const panel = await doctor.get(`/dicom/a-rapprocher?entree=${entries[studies[1]!]}`);
    expect(panel.status).toBe(200);
    expect(textOf(panel.html)).toContain("Rattacher à Lucie Bernard");
    expect(textOf(panel.html)).not.toContain("Marie Dupont-Rapprochement");
    const search = await doctor.get(`/dicom/a-rapprocher?entree=${entries[studies[1]!]}&q=Dupont-Rapprochement`);
    expect(textOf(search.html)).toContain("Rattacher à Marie Dupont-Rapprochement");
  });

  it("refuses an attachment to a patient outside the doctor's care team (403), and a form without CSRF (403)", async () => {
    const other = await createAccount("doctor");
    const outsider = await BrowserSession.login(other.email, other.password);
    const res = await postForm(outsider, "/dicom/a-rapprocher", [["intent", "attach"], ["entryId", entries[studies[0]!]!], ["patientId", lucie]]);
    expect(res.status).toBe(403);
    const noCsrf = await postForm(doctor, "/dicom/a-rapprocher", [["intent", "attach"], ["entryId", entries[studies[0]!]!], ["patientId", lucie]], null);
    expect(noCsrf.status).toBe(403);
    expect(await queueOf()).toHaveLength(3);
  });

  it("attaching to the wrong record names the differing fields and files nothing; with a reason it is filed", { timeout: SLOW }, async () => {
    const entry = entries[studies[0]!]!;
    const path = `/dicom/a-rapprocher?entree=${entry}&q=Dupont-Rapprochement`;
    const refused = await postForm(doctor, path, [["intent", "attach"], ["entryId", entry], ["patientId", marie]]);
    expect(refused.status).toBe(409);
    const text = textOf(refused.html);
    expect(text).toContain("Identité discordante");
    expect(text).toContain("Nom (PatientName)");
    expect(text).toContain("Date de naissance (PatientBirthDate)");
    expect(text).not.toContain("Sexe (PatientSex)");
    expect(refused.html).toContain('name="identityOverride"');
    expect(await queueOf()).toHaveLength(3);
    // A reason too short: refused, said, nothing filed.
    const short = await postForm(doctor, path, [["intent", "attach"], ["entryId", entry], ["patientId", marie], ["identityOverride", "vu"], ["mismatch", "PatientName,PatientBirthDate"]]);
    expect(short.status).toBe(400);
    expect(textOf(short.html)).toContain("Motif trop court : au moins 10 caractères.");
    expect(textOf(short.html)).toContain("Nom (PatientName)");
    expect(await queueOf()).toHaveLength(3);
    // With a reason: filed into an exam of that record, the reason in the audit trail.
    const reason = "Nom d'usage vérifié avec la patiente au guichet";
    const filed = await postForm(doctor, path, [["intent", "attach"], ["entryId", entry], ["patientId", marie], ["identityOverride", reason]]);
    expect(filed.status).toBe(303);
    const location = filed.headers.get("Location")!;
    expect(location).toMatch(/^\/dicom\/a-rapprocher\?rattachee=[0-9a-f-]{36}$/);
    const imageId = location.split("=")[1]!;
    expect(textOf((await doctor.get(location)).html)).toContain("Image rattachée");
    // Filed into an exam of hers (the exam of its StudyInstanceUID, found by QIDO-RS).
    const exams = await api("GET", `/api/v1/patients/${marie}/exams`, { token: doctorToken });
    expect((exams.body.exams as any[]).some((e) => e.views.some((v: any) => v.imageId === imageId))).toBe(true);
    const qido = await fetch(`${baseUrl()}/dicomweb/studies?StudyInstanceUID=${studies[0]}`, { headers: { Authorization: `Bearer ${doctorToken}` } });
    expect(((await qido.json()) as unknown[]).length).toBe(1);
    const image = await api("GET", `/api/v1/images/${imageId}`, { token: doctorToken });
    expect(image.status).toBe(200);
    const audit = await api("GET", `/api/v1/audit?action=inbox.resolve&patient=${marie}&limit=5`, { token: adminToken });
    const allowed = (audit.body.events as any[]).find((e) => e.outcome === "allowed")!;
    expect(allowed).toMatchObject({ resourceId: imageId, patientId: marie });
    expect(allowed.reason).toContain(reason);
    expect(allowed.reason).toContain("PatientName");
    expect((audit.body.events as any[]).some((e) => e.outcome === "denied" && /Identité discordante/.test(e.reason))).toBe(true);
    expect((await queueOf()).map((e) => e.id)).not.toContain(entry);
  });

  it("attaches a matching instance to its record without any override", async () => {
    const entry = entries[studies[1]!]!;
    const res = await postForm(doctor, `/dicom/a-rapprocher?entree=${entry}`, [["intent", "attach"], ["entryId", entry], ["patientId", lucie]]);
    expect(res.status).toBe(303);
    const imageId = res.headers.get("Location")!.split("=")[1]!;
    const exams = await api("GET", `/api/v1/patients/${lucie}/exams`, { token: doctorToken });
    expect((exams.body.exams as any[]).some((e) => e.views.some((v: any) => v.imageId === imageId))).toBe(true);
    // The same entry again: no longer in the queue.
    const again = await postForm(doctor, "/dicom/a-rapprocher", [["intent", "attach"], ["entryId", entry], ["patientId", lucie]]);
    expect(again.status).toBe(404);
    expect(textOf(again.html)).toContain("n'est plus dans la file");
  });

  it("rejects after a confirmation step: the instance is gone from the queue", async () => {
    const entry = entries[studies[2]!]!;
    const ask = await postForm(doctor, "/dicom/a-rapprocher", [["intent", "reject"], ["entryId", entry]]);
    expect(ask.status).toBe(303);
    const confirmation = await doctor.get(ask.headers.get("Location")!);
    expect(confirmation.html).toContain('data-testid="reject-confirm"');
    expect(await queueOf()).toHaveLength(1);
    const done = await postForm(doctor, "/dicom/a-rapprocher", [["intent", "reject"], ["entryId", entry], ["confirm", "1"]]);
    expect(done.status).toBe(303);
    expect(done.headers.get("Location")).toBe("/dicom/a-rapprocher?rejetee=1");
    expect(await queueOf()).toEqual([]);
    const again = await postForm(doctor, "/dicom/a-rapprocher", [["intent", "reject"], ["entryId", entry], ["confirm", "1"]]);
    expect(again.status).toBe(404);
    const unknown = await postForm(doctor, "/dicom/a-rapprocher", [["intent", "maybe"], ["entryId", entry]]);
    expect(unknown.status).toBe(400);
  });
});
