/** HTTP helpers for tests that drive the running server like a client would: API calls and browser-like sessions. */
import { inject } from "vitest";

export const baseUrl = () => inject("baseUrl");
export const DEMO_PASSWORD = process.env.NEXUS_DEMO_PASSWORD ?? "nexus-demo-2026";

export interface ApiResult<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export async function api<T = any>(
  method: string,
  path: string,
  /** `base`: another server than the run's own. */
  options: { token?: string | null; json?: unknown; headers?: Record<string, string>; base?: string } = {},
): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch((options.base ?? baseUrl()) + path, {
    method,
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
    redirect: "manual",
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: body as T, headers: res.headers };
}

export async function tokenFor(email: string, password = DEMO_PASSWORD): Promise<string> {
  const res = await api<{ token: string }>("POST", "/api/v1/tokens", { json: { email, password } });
  if (res.status !== 201) throw new Error(`login ${email} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token;
}

/** A browser without JavaScript: keeps cookies, submits forms with the page's CSRF token. */
export class BrowserSession {
  readonly cookies = new Map<string, string>();

  /** `base`: another server than the run's own. */
  constructor(readonly base: string = baseUrl()) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  private keep(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const i = pair!.indexOf("=");
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1);
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<Response & { html: string }> {
    const res = await fetch(new URL(path, this.base), { headers: { Cookie: this.cookieHeader(), ...headers }, redirect: "manual" });
    this.keep(res);
    return Object.assign(res, { html: await res.text() });
  }

  /** The CSRF token rendered in the page's forms (the logout form of any page once logged in). */
  async csrf(path = this.cookies.has("nexus_session") ? "/compte" : "/connexion"): Promise<string> {
    const page = await this.get(path);
    const match = /name="csrf" value="([^"]+)"/.exec(page.html);
    if (!match) throw new Error(`no CSRF field on ${path} (status ${page.status})`);
    return match[1]!;
  }

  async post(
    path: string,
    fields: Record<string, string>,
    options: { csrf?: string | null; headers?: Record<string, string> } = {},
  ): Promise<Response & { html: string }> {
    const csrf = options.csrf === undefined ? await this.csrf() : options.csrf;
    const body = new URLSearchParams(fields);
    if (csrf !== null) body.set("csrf", csrf);
    const res = await fetch(new URL(path, this.base), {
      method: "POST",
      headers: {
        Cookie: this.cookieHeader(),
        "Content-Type": "application/x-www-form-urlencoded",
        ...options.headers,
      },
      body,
      redirect: "manual",
    });
    this.keep(res);
    return Object.assign(res, { html: await res.text() });
  }

  static async login(email: string, password = DEMO_PASSWORD, headers: Record<string, string> = {}, base?: string): Promise<BrowserSession> {
    const session = new BrowserSession(base);
    const res = await session.post("/connexion", { email, password }, { headers });
    if (res.status !== 302 && res.status !== 204) {
      throw new Error(`browser login ${email} failed: ${res.status}`);
    }
    return session;
  }
}
