import type { LoaderFunctionArgs } from "@remix-run/node";
import { useLoaderData } from "@remix-run/react";
import { pageContext, perform } from "../http/context.server";
import { researchDataset } from "../research/research.server";
import { useT } from "../ui/shell";
import { pageTitle } from "../ui/meta";

export const meta = pageTitle("nav.research");

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  return perform(ctx, "research.view", { type: "app" }, () => researchDataset());
}

export default function Research() {
  const t = useT();
  const { images, totals } = useLoaderData<typeof loader>();
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold">{t("research.title")}</h1>
        <p className="mt-1 text-sm text-slate-600">{t("research.intro")}</p>
      </div>
      <dl className="grid gap-4 sm:grid-cols-4">
        {[
          [t("research.patients"), totals.patients],
          [t("research.images"), totals.images],
          ...Object.entries(totals.byType).map(([k, v]) => [k, v] as const),
        ].map(([label, value]) => (
          <div key={String(label)} className="card p-4">
            <dt className="text-xs text-slate-500">{label}</dt>
            <dd className="text-2xl font-semibold">{value}</dd>
          </div>
        ))}
      </dl>
      {images.length === 0 ? (
        <p className="card text-slate-700">{t("research.nothing")}</p>
      ) : (
        <ul className="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
          {images.map((img) => (
            <li key={img.imageId} className="card p-3" data-pseudonym={img.pseudonym}>
              <img src={`/recherche/images/${img.imageId}`} alt={`${img.pseudonym} ${img.viewPosition ?? ""}`} loading="lazy" className="aspect-square w-full bg-black object-contain" />
              <p className="mt-2 font-mono text-sm">{img.pseudonym}</p>
              <p className="text-xs text-slate-500">
                {[img.modality, img.viewPosition, img.laterality, img.month].filter(Boolean).join(" · ")}
              </p>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
