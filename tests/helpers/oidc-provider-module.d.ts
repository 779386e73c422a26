// The npm `oidc-provider` ships no type declarations; the tests use its constructor, `callback()` and `listen()`.
declare module "oidc-provider" {
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void;
  }
}
