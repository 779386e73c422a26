/**
 * A real OpenID provider for the tests: the npm `oidc-provider` (a certified implementation) on loopback, behind a
 * thin front that forwards every request unchanged — except, when a fault is switched on, the token endpoint's
 * answer, whose ID token it rewrites (wrong audience, expired, other nonce, `alg: none`, a key the provider does
 * not publish). Those are faults a conforming provider never produces, so only such a front can cause them.
 * The provider's issuer is the front's address, so discovery, keys and tokens all name it.
 */
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, decodeJwt, type JWK } from "jose";
import Provider from "oidc-provider";

export type Fault = "none" | "wrong-audience" | "expired" | "other-nonce" | "alg-none" | "unknown-key";

export interface TestProvider {
  issuer: string;
  fault: Fault;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

const listen = (server: Server, port = 0) =>
  new Promise<number>((resolve) => server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));

export async function startTestProvider(client: { clientId: string; clientSecret: string; redirectUri: string; postLogoutUri: string }): Promise<TestProvider> {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const signingJwk: JWK = { ...(await exportJWK(privateKey)), kid: "test-key", alg: "RS256", use: "sig" };
  const stranger = await generateKeyPair("RS256", { extractable: true });

  const frontPort = await freePort();
  const issuer = `http://127.0.0.1:${frontPort}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        redirect_uris: [client.redirectUri],
        post_logout_redirect_uris: [client.postLogoutUri],
        response_types: ["code"],
        grant_types: ["authorization_code"],
      },
    ],
    jwks: { keys: [signingJwk] },
    cookies: { keys: ["test-cookie-key-0123456789abcdef"] },
    pkce: { required: () => true },
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  });
  const backend = createServer(provider.callback());
  const backendPort = await listen(backend);

  const state: TestProvider = { issuer, fault: "none", close: async () => {} };
  const front = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const upstream = httpRequest(
        { host: "127.0.0.1", port: backendPort, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on("data", (c: Buffer) => parts.push(c));
          answer.on("end", async () => {
            let body = Buffer.concat(parts);
            const isToken = req.url?.startsWith("/token") && answer.statusCode === 200;
            if (isToken && state.fault !== "none") body = Buffer.from(JSON.stringify(await forge(JSON.parse(body.toString()))));
            const headers = { ...answer.headers };
            delete headers["content-length"];
            res.writeHead(answer.statusCode ?? 502, headers);
            res.end(body);
          });
        },
      );
      upstream.end(Buffer.concat(chunks));
    });
  });

  async function forge(tokens: { id_token: string }): Promise<unknown> {
    const claims = decodeJwt(tokens.id_token);
    const now = Math.floor(Date.now() / 1000);
    let id_token: string;
    switch (state.fault) {
      case "alg-none": {
        const enc = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
        id_token = `${enc({ alg: "none", typ: "JWT" })}.${enc(claims)}.`;
        break;
      }
      case "unknown-key":
        id_token = await new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "test-key" }).sign(stranger.privateKey);
        break;
      default: {
        const changed = {
          ...claims,
          ...(state.fault === "wrong-audience" ? { aud: "another-client" } : {}),
          ...(state.fault === "expired" ? { iat: now - 7200, exp: now - 3600 } : {}),
          ...(state.fault === "other-nonce" ? { nonce: "not-the-nonce-nexus-sent" } : {}),
        };
        id_token = await new SignJWT(changed).setProtectedHeader({ alg: "RS256", kid: "test-key" }).sign(privateKey);
      }
    }
    return { ...tokens, id_token };
  }

  await listen(front, frontPort);
  state.close = async () => {
    await Promise.all([new Promise((r) => front.close(r)), new Promise((r) => backend.close(r))]);
  };
  return state;
}

/**
 * Plays the user at the provider's development login pages (any login, then consent), following redirects on the
 * provider's host with its cookies, until the provider sends the browser back to `returnPrefix`. Returns that URL.
 */
export async function signInAtProvider(authorizationUrl: string, subject: string, returnPrefix: string): Promise<string> {
  const jar = new Map<string, string>();
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const keep = (res: Response) => {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const i = pair!.indexOf("=");
      jar.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
  };
  let url = authorizationUrl;
  for (let hop = 0; hop < 20; hop++) {
    if (url.startsWith(returnPrefix)) return url;
    const res = await fetch(url, { headers: { Cookie: cookie() }, redirect: "manual" });
    keep(res);
    const location = res.headers.get("Location");
    if (location) {
      url = new URL(location, url).toString();
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
    if (!action || !prompt) throw new Error(`unexpected provider page (${res.status}) at ${url}`);
    const body = new URLSearchParams(prompt === "login" ? { prompt, login: subject, password: "any" } : { prompt });
    const posted = await fetch(new URL(action, url), {
      method: "POST",
      headers: { Cookie: cookie(), "Content-Type": "application/x-www-form-urlencoded" },
      body,
      redirect: "manual",
    });
    keep(posted);
    url = new URL(posted.headers.get("Location")!, url).toString();
  }
  throw new Error("the provider never sent the browser back");
}
