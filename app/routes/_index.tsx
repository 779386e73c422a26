import type { LoaderFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import type { Role } from "../db/schema";
import { pageContext, perform } from "../http/context.server";

const HOME: Record<Role, string> = {
  doctor: "/patients",
  patient: "/mon-dossier",
  admin: "/admin/comptes",
  researcher: "/recherche",
  system: "/compte",
};

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  if (!ctx.actor) throw redirect("/connexion");
  const actor = ctx.actor;
  await perform(ctx, "app.home", { type: "app" }, async () => null);
  throw redirect(HOME[actor.role]);
}
