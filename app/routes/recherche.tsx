import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { pageContext, perform } from "../http/context.server";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Recherche — Nexus" }];

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  await perform(ctx, "research.view", { type: "app" }, async () => null);
  return null;
}

export default function Research() {
  const t = useT();
  return (
    <div className="card mx-auto max-w-2xl">
      <h1 className="text-2xl font-bold">{t("research.title")}</h1>
      <p className="mt-3 text-slate-700">{t("research.nothing")}</p>
    </div>
  );
}
