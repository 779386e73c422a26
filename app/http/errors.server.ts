/** A thrown failure from domain code: validation (400), conflict (409), … carried to the caller's channel. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields?: Record<string, string>,
    readonly headers?: Record<string, string>,
    /** A refusal of the request itself (audited as denied, not as an error), e.g. 409 `identity_mismatch`. */
    readonly denial = false,
  ) {
    super(message);
  }
}
