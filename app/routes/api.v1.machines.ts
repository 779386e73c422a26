import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { createMachine, listMachines, newMachineSchema } from "../accounts/machines.server";
import { invalid, methodNotAllowed, readJson } from "../http/api.server";
import { apiContext, perform } from "../http/context.server";
import { parseWith } from "../http/validation.server";

/** GET /api/v1/machines — the machine accounts (modalities, PACS), their tokens (never the secrets) and latest activity: admins only. */
export async function loader(args: LoaderFunctionArgs) {
  const ctx = await apiContext(args);
  const machines = await perform(ctx, "machine.list", { type: "machine" }, () => listMachines());
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return Response.json({
    machines: machines.map((m) => ({
      ...m,
      createdAt: m.createdAt.toISOString(),
      disabledAt: iso(m.disabledAt),
      lastActivityAt: iso(m.lastActivityAt),
      tokens: m.tokens.map((t) => ({ id: t.id, createdAt: t.createdAt.toISOString(), expiresAt: t.expiresAt.toISOString(), revokedAt: iso(t.revokedAt) })),
    })),
  });
}

/** POST /api/v1/machines `{name, scopes:["store"]|["store","query"], aeTitle?}` → 201 `{id, token, expiresAt}` (token shown once). */
export async function action(args: ActionFunctionArgs) {
  if (args.request.method !== "POST") return methodNotAllowed("GET, POST");
  const ctx = await apiContext(args);
  const created = await perform(
    ctx,
    "machine.create",
    { type: "machine" },
    async () => {
      const parsed = parseWith(newMachineSchema, await readJson(args.request));
      if (!parsed.ok) throw invalid(parsed.errors);
      return createMachine(parsed.data);
    },
    { describe: (r) => ({ resourceId: r.id }) },
  );
  return Response.json({ ...created, expiresAt: created.expiresAt.toISOString() }, { status: 201 });
}
