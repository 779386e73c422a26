import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Link, useLoaderData, useRouteLoaderData } from "@remix-run/react";
import { pageContext, perform } from "../http/context.server";
import { listPatients } from "../patients/patients.server";
import type { loader as rootLoader } from "../root";
import { formatDate } from "../ui/format";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Patients — Nexus" }];

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const patients = await perform(ctx, "patient.list", { type: "patient" }, () => listPatients(ctx.actor!));
  return { patients, isDoctor: ctx.actor!.role === "doctor" };
}

export default function Patients() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { patients, isDoctor } = useLoaderData<typeof loader>();
  return (
    <div className="space-y-6">
      <div className="flex items-center justify-between">
        <h1 className="text-2xl font-bold">{isDoctor ? t("patients.title") : t("patients.titleAdmin")}</h1>
        {isDoctor ? (
          <Link to="/patients/nouveau" className="btn">
            {t("nav.newPatient")}
          </Link>
        ) : null}
      </div>
      {patients.length === 0 ? (
        <p className="text-slate-600">{t("patients.empty")}</p>
      ) : (
        <div className="card overflow-x-auto p-0">
          <table className="min-w-full divide-y divide-slate-200 text-sm">
            <thead className="bg-slate-50 text-left text-slate-600">
              <tr>
                <th scope="col" className="px-4 py-3 font-medium">{t("patients.name")}</th>
                <th scope="col" className="px-4 py-3 font-medium">{t("patients.created")}</th>
                {isDoctor ? <th scope="col" className="px-4 py-3"><span className="sr-only">{t("patients.open")}</span></th> : null}
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {patients.map((p) => (
                <tr key={p.id}>
                  <td className="px-4 py-3 font-medium">{p.displayName}</td>
                  <td className="px-4 py-3 text-slate-600">{formatDate(p.createdAt, lang)}</td>
                  {isDoctor ? (
                    <td className="px-4 py-3 text-right">
                      <Link className="text-brand-700 underline" to={`/patients/${p.id}`}>
                        {t("patients.open")}
                      </Link>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
