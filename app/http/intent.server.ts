/**
 * Multi-intent actions (one form, several buttons) parse their intent with a zod discriminated union: an unknown
 * or incomplete intent (e.g. an erase without its confirmation) is a 400 that does nothing — never a default branch.
 * The form is read from a clone, so the CSRF check (`readMutation`) still reads the body afterwards.
 */
import type { z } from "zod";
import { failure, type Ctx } from "./context.server";

export async function readIntent<S extends z.ZodType<{ intent: string }>>(ctx: Ctx, schema: S): Promise<z.infer<S>> {
  const form = await ctx.request.clone().formData();
  const fields = Object.fromEntries([...form.entries()].filter((entry): entry is [string, string] => typeof entry[1] === "string"));
  const parsed = schema.safeParse(fields);
  if (!parsed.success) throw failure(ctx, 400, "invalid", "Action inconnue ou non confirmée.");
  return parsed.data;
}
