/**
 * The one fixture builder: accounts and patients created through the real server, the way an admin and a doctor
 * would (admin page form, patients API), so fixtures work on PostgreSQL and PGlite alike.
 */
import { randomUUID } from "node:crypto";
import type { Role } from "../../app/vocabulary";
import { api, BrowserSession, tokenFor } from "./http";

let adminSession: BrowserSession | null = null;
async function admin(): Promise<BrowserSession> {
  adminSession ??= await BrowserSession.login("admin@demo.nexus");
  return adminSession;
}

export const uniqueEmail = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}@test.nexus`;

export async function createAccount(role: Role, password = "correct-horse-battery"): Promise<{ email: string; password: string }> {
  const email = uniqueEmail(role);
  const session = await admin();
  const res = await session.post(
    "/admin/comptes",
    { intent: "create", name: `Test ${role}`, email, role, password },
    { csrf: await session.csrf("/admin/comptes") },
  );
  if (res.status !== 201) throw new Error(`account creation failed: ${res.status}`);
  return { email, password };
}

export async function createPatient(
  doctorToken: string,
  body: { displayName?: string; email?: string; consents?: Record<string, boolean> } = {},
): Promise<{ id: string; account?: { email: string; password: string } }> {
  const res = await api("POST", "/api/v1/patients", {
    token: doctorToken,
    json: { displayName: body.displayName ?? "Patiente Test", ...body },
  });
  if (res.status !== 201) throw new Error(`patient creation failed: ${res.status} ${JSON.stringify(res.body)}`);
  const created = res.body as { id: string; account?: { email: string; temporaryPassword: string } };
  if (!created.account) return { id: created.id };
  // The temporary password works once: the patient's first sign-in replaces it by her own.
  const password = await activateAccount(created.account.email, created.account.temporaryPassword);
  return { id: created.id, account: { email: created.account.email, password } };
}

/** The first sign-in of an account with a temporary password, as its owner does it: she chooses her own. */
export async function activateAccount(email: string, temporaryPassword: string, password = `chosen-${randomUUID()}`): Promise<string> {
  const res = await api("POST", "/api/v1/tokens", { json: { email, password: temporaryPassword, newPassword: password } });
  if (res.status !== 201) throw new Error(`account activation failed: ${res.status} ${JSON.stringify(res.body)}`);
  return password;
}

export { tokenFor };
