import { failure, type Ctx } from "./context.server";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a value has the form of an id (a UUID): a statement's `uuid` parameter refuses anything else. */
export const isUuid = (value: string) => UUID.test(value);

/**
 * A route's id parameter. A value that cannot be an id at all is a 404 (it names nothing, so answering it leaks
 * nothing); a well-formed id goes to the policy, which answers 403 whether or not the patient exists.
 */
export function idParam(ctx: Pick<Ctx, "channel">, value: string | undefined): string {
  if (!value || !isUuid(value)) throw failure(ctx, 404, "not_found", "Ressource introuvable.");
  return value.toLowerCase();
}
