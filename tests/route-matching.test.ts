/**
 * The server's route matching computes the route table's ranked branches once per routes array
 * (patches/@remix-run+router+1.23.3.patch, applied by patch-package on install): a route added to an array after
 * its first match is therefore not seen — the server's routes never change, which is what makes the cache sound.
 * Without the patch (an install that skipped it) the second match below finds /b. Path patterns are compiled once
 * (same patch): the cache key must keep case sensitivity and end matching apart.
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
