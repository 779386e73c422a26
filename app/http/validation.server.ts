import type { z } from "zod";
import { issueMessage } from "../i18n/fields";

export type ParseResult<T> = { ok: true; data: T } | { ok: false; errors: Record<string, string> };

/** Parses with a zod schema; on failure, the first message per top-level field (for forms and 400 answers). */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown): ParseResult<z.infer<S>> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return { ok: true, data: parsed.data };
  const errors: Record<string, string> = {};
  for (const issue of parsed.error.issues) {
    const key = String(issue.path[0] ?? "form");
    // zod's own English messages become codes, translated where they are shown (app/i18n/fields.ts).
    errors[key] ??= issueMessage(issue as Parameters<typeof issueMessage>[0]);
  }
  return { ok: false, errors };
}

/** Form fields as a plain object; empty strings become undefined so optional fields stay optional. */
export function formFields(form: FormData, names: string[]): Record<string, string | undefined> {
  return Object.fromEntries(
    names.map((n) => {
      const v = form.get(n);
      return [n, typeof v === "string" && v.trim() !== "" ? v : undefined];
    }),
  );
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/**
 * True when `value` holds a control character PostgreSQL or a person cannot use (NUL above all: PostgreSQL's
 * `text` refuses it, which surfaced as a 500). Tabs and newlines stay allowed.
 */
export const hasControlCharacter = (value: string) => CONTROL.test(value);
export const CONTROL_MESSAGE = "caractère de contrôle interdit (NUL…).";
