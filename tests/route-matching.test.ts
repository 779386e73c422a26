/**
 * The server's route matching computes the route table's ranked branches once per routes array
 * (patches/@remix-run+router+1.23.3.patch, applied by patch-package on install): a route added to an array after
 * its first match is therefore not seen — the server's routes never change, which is what makes the cache sound.
 * Without the patch (an install that skipped it) the second match below finds /b. Path patterns are compiled once
 * (same patch): the cache key must keep case sensitivity and end matching apart. Branches that cannot match (another
 * static start, another number of segments) are skipped (same patch): every path of the app's route table, with
 * variants, must match as the unpatched router matches it. Loaders and actions get the request itself when there is
 * nothing to strip (patches/@remix-run+server-runtime+2.17.5.patch).
 */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";

// The CommonJS build, as the server runtime loads it (the browser build is not patched).
const { matchPath, matchRoutes } = createRequire(import.meta.url)("@remix-run/router") as typeof import("@remix-run/router");

describe("route matching on the server", () => {
  it("ranks a routes array once, on its first match", () => {
    const routes: { path: string; id: string }[] = [{ path: "/a", id: "a" }];
    expect(matchRoutes(routes, "/a")?.map((m) => m.route.id)).toEqual(["a"]);
    routes.push({ path: "/b", id: "b" });
    expect(matchRoutes(routes, "/b")).toBeNull();
    // A new array (a new build, as in development) is ranked afresh.
    expect(matchRoutes([...routes], "/b")?.map((m) => m.route.id)).toEqual(["b"]);
  });

  it("still picks the most specific route among several", () => {
    const routes = [
      { path: "/patients/:id", id: "one" },
      { path: "/patients/nouveau", id: "new" },
      { path: "*", id: "splat" },
    ];
    for (let i = 0; i < 3; i++) {
      expect(matchRoutes(routes, "/patients/nouveau")?.[0]?.route.id).toBe("new");
      expect(matchRoutes(routes, "/patients/42")?.[0]?.route.id).toBe("one");
      expect(matchRoutes(routes, "/ailleurs")?.[0]?.route.id).toBe("splat");
    }
  });

  it("compiles a path pattern once per case sensitivity and end matching", () => {
    for (let i = 0; i < 2; i++) {
      expect(matchPath({ path: "/Patients/:id", caseSensitive: true }, "/patients/7")).toBeNull();
      expect(matchPath({ path: "/Patients/:id", caseSensitive: false }, "/patients/7")?.params).toEqual({ id: "7" });
      expect(matchPath({ path: "/patients", end: true }, "/patients/7")).toBeNull();
      expect(matchPath({ path: "/patients", end: false }, "/patients/7")?.pathnameBase).toBe("/patients");
      expect(matchPath("/images/:imageId/fichier", `/images/${i}/fichier`)?.params).toEqual({ imageId: String(i) });
    }
  });
});

describe("route matching on the server, against the unpatched router", () => {
  // The ESM build (dist/router.js, what the browser bundles) is not patched: it is the reference.
  it("matches every path of the app's route table as upstream does", async () => {
    const reference = (await import("@remix-run/router/dist/router.js")) as unknown as typeof import("@remix-run/router");
    // The app's route table as Remix builds it from app/routes (flat routes, as vite.config.ts leaves them) under the
    // root route, nested as the server runtime nests it. Read from the files: importing the server build would open
    // the database.
    type Route = { id: string; parentId?: string; path?: string; index?: boolean; caseSensitive?: boolean };
    const { flatRoutes } = createRequire(import.meta.url)("@remix-run/dev/dist/config/flat-routes.js") as {
      flatRoutes(appDirectory: string): Record<string, Route>;
    };
    const table: Record<string, Route> = { root: { id: "root", path: "" }, ...flatRoutes("app") };
    type Node = { id: string; path?: string; index?: boolean; caseSensitive?: boolean; children?: Node[] };
    const nest = (parentId?: string): Node[] =>
      Object.values(table)
        .filter((r) => r.parentId === parentId)
        .map((r) => ({ id: r.id, path: r.path, index: r.index, caseSensitive: r.caseSensitive, children: r.index ? undefined : nest(r.id) }));
    const routes = nest(undefined) as Parameters<typeof matchRoutes>[0];
    const pathnames = new Set(["/", "", "//", "/inconnu", "/inconnu/plus/loin", "/assets/x.js", "/favicon.svg"]);
    for (const r of Object.values(table)) {
      if (!r.path) continue;
      const concrete = r.path.replace(/:[\w-]+\??/g, "3f1c1b7e-8d3a-4c1e-9a57-0b6c2b1f9e21").replace(/\*$/, "a/b");
      const doubled = concrete.replace("/", "//");
      const truncated = concrete.split("/").slice(0, -1).join("/");
      for (const p of [`/${concrete}`, `/${concrete}/`, `/${concrete.toUpperCase()}`, `//${concrete}`, `/${doubled}`, `/${truncated}`, `/${truncated}x`, `/${concrete}/en-trop`, `/${concrete}x`, `/x${concrete}`]) pathnames.add(p);
    }
    const ids = (m: ReturnType<typeof matchRoutes>) => m?.map((x) => `${x.route.id}${JSON.stringify(x.params)}`) ?? null;
    expect(pathnames.size).toBeGreaterThan(500);
    for (const pathname of pathnames) expect(ids(matchRoutes(routes, pathname)), pathname).toEqual(ids(reference.matchRoutes(routes, pathname)));
  });
});

describe("loaders and actions get the request as it came (patches/@remix-run+server-runtime+2.17.5.patch)", () => {
  type Args = { request: Request };
  const { callRouteLoader, callRouteAction } = createRequire(import.meta.url)("@remix-run/server-runtime/dist/data.js") as {
    callRouteLoader(o: { loadContext: object; loader: (a: Args) => unknown; params: object; request: Request; routeId: string; singleFetch: boolean }): Promise<unknown>;
    callRouteAction(o: { loadContext: object; action: (a: Args) => unknown; params: object; request: Request; routeId: string; singleFetch: boolean }): Promise<unknown>;
  };
  const seenBy = async (request: Request, singleFetch = true): Promise<Request> => {
    let seen: Request | undefined;
    await callRouteLoader({ loadContext: {}, loader: ({ request: r }) => ((seen = r), null), params: {}, request, routeId: "r", singleFetch });
    return seen!;
  };

  it("passes the same Request to every loader when there is no parameter to strip (the session is then read once per page)", async () => {
    const request = new Request("http://nexus.test/patients?q=Dupont");
    expect(await seenBy(request)).toBe(request);
    expect(await seenBy(request, false)).toBe(request);
    let acted: Request | undefined;
    const post = new Request("http://nexus.test/patients/nouveau", { method: "POST", body: "a=1", headers: { "Content-Type": "application/x-www-form-urlencoded" } });
    await callRouteAction({ loadContext: {}, action: ({ request: r }) => ((acted = r), null), params: {}, request: post, routeId: "r", singleFetch: true });
    expect(acted).toBe(post);
    expect(await acted!.text()).toBe("a=1");
  });

  it("still strips `index`, `_routes` and `_data` into a copy", async () => {
    const indexed = await seenBy(new Request("http://nexus.test/patients?index&q=Dupont&_routes=root"));
    expect([...new URL(indexed.url).searchParams.keys()]).toEqual(["q"]);
    const data = await seenBy(new Request("http://nexus.test/patients?_data=root&q=Dupont"), false);
    expect([...new URL(data.url).searchParams.keys()]).toEqual(["q"]);
  });
});

describe("the static render's routes are built once (patches/react-router-dom+6.30.4.patch, @remix-run+react+2.17.5.patch)", () => {
  // The CommonJS build, as @remix-run/react's RemixServer loads it on the server.
  const { createStaticRouter } = createRequire(import.meta.url)("react-router-dom/server") as typeof import("react-router-dom/server");
  type Context = Parameters<typeof createStaticRouter>[1];
  const routes = [{ id: "root", path: "/", children: [{ id: "list", index: true }, { id: "one", path: "patients/:id" }] }];
  const contextAt = (pathname: string, params: Record<string, string>, ids: string[]): Context =>
    ({
      basename: "/",
      location: { pathname, search: "", hash: "", state: null, key: "default" },
      matches: ids.map((id) => ({ params, pathname, pathnameBase: pathname, route: { id } })),
      loaderData: {},
      actionData: null,
      errors: null,
      statusCode: 200,
      loaderHeaders: {},
      actionHeaders: {},
      activeDeferreds: null,
    }) as unknown as Context;

  it("converts a routes array once, and still gives each render its own matches", () => {
    const first = createStaticRouter(routes, contextAt("/patients/7", { id: "7" }, ["root", "one"]));
    const second = createStaticRouter(routes, contextAt("/", {}, ["root", "list"]));
    // The same data routes (so route matching during the render finds its cached branches)…
    expect(second.routes).toBe(first.routes);
    // …and each router its own location and matches, on the converted routes.
    expect(first.state.matches.map((m) => [m.route.id, m.params])).toEqual([["root", { id: "7" }], ["one", { id: "7" }]]);
    expect(second.state.matches.map((m) => [m.route.id, m.params])).toEqual([["root", {}], ["list", {}]]);
    expect(second.state.matches[1]!.route).toBe(second.routes[0]!.children![0]);
    expect(second.state.location.pathname).toBe("/");
    // Another routes array (another build) is converted afresh.
    expect(createStaticRouter([...routes], contextAt("/", {}, ["root", "list"])).routes).not.toBe(first.routes);
  });
});
