/** openapi/ship.v1.yaml and Ship's routes describe the same API (both directions). */
import { expect, test } from "bun:test";
import { inspectRoutes } from "hono/dev";
import { parse } from "yaml";
import { createShipApp } from "../../src/ship/app.ts";
import { testCredentials } from "./support/caller.ts";

test("every Ship route is in openapi/ship.v1.yaml and vice versa", async () => {
  const spec = parse(await Bun.file(new URL("../../openapi/ship.v1.yaml", import.meta.url)).text());
  const specOps = new Set<string>();
  for (const [path, item] of Object.entries<Record<string, unknown>>(spec.paths)) {
    for (const method of ["get", "put", "post", "delete", "patch"]) {
      if (item[method]) specOps.add(`${method.toUpperCase()} ${path}`);
    }
  }
  const ship = createShipApp({ workspace: "/tmp", startKernel: false, credentials: testCredentials() });
  const appOps = new Set(
    inspectRoutes(ship.app)
      .filter((r) => !r.isMiddleware)
      // A trailing wildcard stands for the spec's `{path}` (the rest of a path, slashes included).
      .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z_]+)/g, "{$1}").replace(/\/\*$/, "/{path}")}`),
  );
  expect([...appOps].sort()).toEqual([...specOps].sort());
});
