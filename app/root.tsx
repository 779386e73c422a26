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
import { pendingCount } from "./dicomweb/inbox.server";
import { parseLang } from "./i18n/strings";
import { authorize } from "./policy/policy.server";
import { ErrorContent, describeError, type ErrorInfo } from "./ui/error-page";
import { AppShell } from "./ui/shell";
import stylesheet from "./tailwind.css?url";

export const links: LinksFunction = () => [
  { rel: "stylesheet", href: stylesheet },
  { rel: "icon", href: "/favicon.svg", type: "image/svg+xml" },
];
export const meta: MetaFunction = ({ data, error }) => {
  if (!error) return [{ title: "Nexus" }];
  return [{ title: `${describeError(errorInfo(error), parseLang((data as { lang?: string } | undefined)?.lang)).title} — Nexus` }];
};

/** Status, code and message of what a loader or action threw (500 for anything unexpected). */
function errorInfo(error: unknown): ErrorInfo {
  const info: ErrorInfo = { status: 500 };
  if (isRouteErrorResponse(error)) {
    const payload = error.data as { code?: string; message?: string } | string | undefined;
    info.status = error.status;
    if (typeof payload === "object" && payload) Object.assign(info, { code: payload.code, message: payload.message });
  }
  return info;
}

export async function loader({ request }: LoaderFunctionArgs) {
  const cookies = request.headers.get("Cookie") ?? "";
  const lang = parseLang(/(?:^|;\s*)nexus_lang=(\w+)/.exec(cookies)?.[1]);
  const [{ token, setCookie }, actor] = await Promise.all([csrfToken(request), actorFromSession(request)]);
  const user = actor ? { name: actor.name, role: actor.role, email: actor.email } : null;
  // The navigation's badge: how many instances wait in the reconciliation queue, for whoever the policy lets list
  // it (doctors). A number only, no identity: the queue page itself is the audited read.
  const inbox = actor && (await authorize(actor, "inbox.list", { type: "inbox" })).allowed ? await pendingCount() : null;
  return data({ lang, csrf: token, user, inbox }, setCookie ? { headers: { "Set-Cookie": setCookie } } : undefined);
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
  const lang = root?.lang ?? "fr";
  return (
    <AppShell>
      <ErrorContent error={errorInfo(error)} lang={lang} />
    </AppShell>
  );
}
