import { Form, Link, NavLink, useLocation, useMatches, useRouteLoaderData } from "@remix-run/react";
import type { ReactNode } from "react";
import type { Role } from "../vocabulary";
import { translator, type StringKey } from "../i18n/strings";
import type { loader as rootLoader } from "../root";
import { CsrfInput } from "./forms";

/** The translator for the current page's language (from the root loader). */
export function useT() {
  const root = useRouteLoaderData<typeof rootLoader>("root");
  return translator(root?.lang ?? "fr");
}

/** Navigation shows only what the role may do; the policy still decides on the server. */
const NAV: Record<Role, { to: string; label: StringKey }[]> = {
  doctor: [
    { to: "/patients", label: "nav.patients" },
    { to: "/patients/nouveau", label: "nav.newPatient" },
    { to: "/statistiques", label: "nav.stats" },
    { to: "/lectures", label: "nav.worklists" },
    { to: "/dicom/a-rapprocher", label: "nav.inbox" },
    { to: "/statistiques/programme", label: "nav.programme" },
  ],
  patient: [{ to: "/mon-dossier", label: "nav.myRecord" }],
  admin: [
    { to: "/admin/comptes", label: "nav.accounts" },
    { to: "/admin/machines", label: "nav.machines" },
    { to: "/admin/envois", label: "nav.outbox" },
    { to: "/admin/audit", label: "audit.nav" },
    { to: "/patients", label: "nav.patients" },
    { to: "/statistiques/programme", label: "nav.programme" },
  ],
  researcher: [
    { to: "/recherche", label: "nav.research" },
    { to: "/statistiques", label: "nav.stats" },
  ],
  system: [],
};

export function AppShell({ children }: { children: ReactNode }) {
  const root = useRouteLoaderData<typeof rootLoader>("root");
  const t = translator(root?.lang ?? "fr");
  const location = useLocation();
  const user = root?.user ?? null;
  const otherLang = root?.lang === "en" ? "fr" : "en";
  // A page whose route says `handle = { wide: true }` (the exam viewer) uses the whole width of a large screen.
  const wide = useMatches().some((m) => (m.handle as { wide?: boolean } | undefined)?.wide === true);
  return (
    <div className="min-h-full">
      <header className="bg-white shadow-sm">
        <div className="mx-auto flex max-w-6xl flex-wrap items-center gap-x-6 gap-y-2 px-4 py-3">
          <Link to="/" className="flex items-baseline gap-2">
            <span className="text-xl font-bold text-brand-700">Nexus</span>
            <span className="hidden text-sm text-slate-500 sm:inline">{t("app.tagline")}</span>
          </Link>
          {user ? (
            <nav aria-label="Navigation principale" className="flex flex-1 flex-wrap items-center gap-4 text-sm">
              {NAV[user.role].map((item) => (
                <NavLink
                  key={item.to}
                  to={item.to}
                  end
                  className={({ isActive }) =>
                    isActive ? "font-semibold text-brand-700" : "text-slate-700 hover:text-brand-700"
                  }
                >
                  {t(item.label)}
                  {item.to === "/dicom/a-rapprocher" && root?.inbox ? (
                    <span className="relative ml-1 inline-block rounded-full bg-red-700 px-1.5 text-xs font-semibold text-white" data-testid="inbox-badge">
                      {root.inbox}
                      <span className="sr-only"> {t("nav.inboxWaiting")}</span>
                    </span>
                  ) : null}
                </NavLink>
              ))}
              <span className="ml-auto text-slate-500">
                <NavLink to="/compte" className="hover:text-brand-700">
                  {user.name}
                </NavLink>{" "}
                · {t(`role.${user.role}`)}
              </span>
              <Form method="post" action="/deconnexion">
                <CsrfInput />
                <button type="submit" className="btn-secondary">
                  {t("nav.logout")}
                </button>
              </Form>
            </nav>
          ) : (
            <span className="flex-1" />
          )}
          <a
            className="text-sm text-slate-600 underline hover:text-brand-700"
            href={`/langue?l=${otherLang}&retour=${encodeURIComponent(location.pathname + location.search)}`}
            lang={otherLang}
          >
            {t("nav.language")}
          </a>
        </div>
      </header>
      <main className={`mx-auto max-w-6xl px-4 py-8${wide ? " 2xl:max-w-none" : ""}`}>{children}</main>
    </div>
  );
}
