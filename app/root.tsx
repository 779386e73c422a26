import type { LinksFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import {
  Links,
  Meta,
  Outlet,
  Scripts,
  ScrollRestoration,
  isRouteErrorResponse,
  useRouteError,
  useRouteLoaderData,
} from "@remix-run/react";
import { csrfToken } from "./accounts/csrf.server";
import { actorFromSession } from "./accounts/session.server";
import { parseLang, translator } from "./i18n/strings";
import { AppShell } from "./ui/shell";
import stylesheet from "./tailwind.css?url";

export const links: LinksFunction = () => [
  { rel: "stylesheet", href: stylesheet },
  { rel: "icon", href: "/favicon.svg", type: "image/svg+xml" },
];
export const meta: MetaFunction = () => [{ title: "Nexus" }];

export async function loader({ request }: LoaderFunctionArgs) {
  const cookies = request.headers.get("Cookie") ?? "";
  const lang = parseLang(/(?:^|;\s*)nexus_lang=(\w+)/.exec(cookies)?.[1]);
  const [{ token, setCookie }, actor] = await Promise.all([csrfToken(request), actorFromSession(request)]);
  const user = actor ? { name: actor.name, role: actor.role, email: actor.email } : null;
  return data({ lang, csrf: token, user }, setCookie ? { headers: { "Set-Cookie": setCookie } } : undefined);
}

export type RootData = Awaited<ReturnType<typeof loader>>["data"];

export function Layout({ children }: { children: React.ReactNode }) {
  const root = useRouteLoaderData<typeof loader>("root");
  return (
    <html lang={root?.lang ?? "fr"} className="h-full bg-slate-50">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <Meta />
        <Links />
      </head>
      <body className="h-full text-slate-900">
        {children}
        <ScrollRestoration />
        <Scripts />
      </body>
    </html>
  );
}

export default function App() {
  return (
    <AppShell>
      <Outlet />
    </AppShell>
  );
}

export function ErrorBoundary() {
  const error = useRouteError();
  const root = useRouteLoaderData<typeof loader>("root");
  const t = translator(root?.lang ?? "fr");
  let status = 500;
  let message = t("error.title");
  if (isRouteErrorResponse(error)) {
    status = error.status;
    const payload = error.data as { message?: string } | string | undefined;
    message = typeof payload === "object" && payload?.message ? payload.message : status === 404 ? t("error.notFound") : message;
  }
  const title = status === 403 ? t("error.forbidden") : status === 404 ? t("error.notFound") : t("error.title");
  return (
    <AppShell>
      <div className="card mx-auto max-w-xl" role="alert">
        <p className="text-sm font-semibold text-brand-700">{status}</p>
        <h1 className="mt-1 text-2xl font-bold">{title}</h1>
        <p className="mt-3 text-slate-700">{message}</p>
        <a className="btn mt-6" href="/">
          {t("error.back")}
        </a>
      </div>
    </AppShell>
  );
}
