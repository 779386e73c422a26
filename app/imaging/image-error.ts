/**
 * A refusal to decode an image, with its reason in French (the message) and in English. Thrown by the decoder (in
 * the decode worker) and rebuilt on the main thread from its plain fields; no server-only imports here.
 */
import { HttpError } from "../http/errors.server";

export class ImageError extends HttpError {
  constructor(
    status: number,
    code: string,
    message: string,
    readonly messageEn: string,
    headers?: Record<string, string>,
  ) {
    super(status, code, message, undefined, headers);
    this.name = "ImageError";
  }

  /** The message in the reader's language. */
  text(lang: string): string {
    return lang === "en" ? this.messageEn : this.message;
  }

  toJSON() {
    return { status: this.status, code: this.code, message: this.message, messageEn: this.messageEn, headers: this.headers };
  }
}

/** 422 "unreadable": the file is not a decodable image, with the reason in both languages. */
export const unreadable = (fr: string, en: string) => new ImageError(422, "unreadable", `Image illisible : ${fr}.`, `Unreadable image: ${en}.`);

/** 422 "unsupported_image": a valid file using a feature the decoder does not handle (named). */
export const unsupported = (fr: string, en: string) =>
  new ImageError(422, "unsupported_image", `Image non prise en charge : ${fr}.`, `Unsupported image: ${en}.`);

export const tooManyPixels = (declared: number, limit: number) =>
  new ImageError(
    422,
    "too_many_pixels",
    `Image trop grande pour être décodée : ${mp(declared)} millions d'échantillons déclarés, limite ${mp(limit)} (DECODE_PIXEL_LIMIT_MP).`,
    `Image too large to decode: ${mp(declared)} million samples declared, limit ${mp(limit)} (DECODE_PIXEL_LIMIT_MP).`,
  );

const mp = (n: number) => String(Math.round(n / 1e5) / 10);
