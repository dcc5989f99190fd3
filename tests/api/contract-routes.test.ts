/**
 * The app's routes against its spec (after e2b-dev/infra's openapi_contract_test):
 * every handler route is a spec operation and every operation has a route, the
 * router stays Hono's fast one, one version everywhere, and the request fixtures
 * the status probes (contract.test.ts) send are valid.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { inspectRoutes } from "hono/dev";
import { version as packageVersion } from "../../package.json";
import type { OperationId } from "../../src/bay/api/generated/index.ts";
import { DOCS_SLASH_ROUTE } from "../../src/bay/api/routes/docs.ts";
import { PORT_ROUTE } from "../../src/bay/api/routes/ports.ts";
import { BAY_FIRST_SEGMENTS } from "../../src/bay/config.ts";
import { operations as E2B_OPS } from "../../src/bay/e2b/generated/openapi/index.ts";
import { TEMPLATE_ALIAS_PATH } from "../../src/bay/e2b/route-paths.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { BODY_FIXTURES, closeWithoutContainers, OPS } from "./support/fixtures.ts";

let t: TestBay;
beforeEach(async () => {
  t = await createTestBay();
});
afterEach(() => closeWithoutContainers(t));

describe("routes ↔ spec operations", () => {
  test("every handler route is a spec operation, and every spec operation has a handler route", () => {
    const key = (method: string, path: string) => `${method.toUpperCase()} ${path}`;
    const routes = new Set(
      inspectRoutes(t.bay.app)
        .filter((r) => !r.isMiddleware)
        .map((r) => key(r.method, r.path)),
    );
    // The E2B-compatible API has its own spec (openapi/e2b.v1.yaml, under the prefix, /files also
    // at the root) and its Connect services (proto/envd), answered by one route per service.
    const prefix = t.bay.deps.config.e2b.prefix;
    // (The alias lookup is routed at TEMPLATE_ALIAS_PATH so that Hono can use its RegExpRouter.)
    const honoPathOf = (op: { operationId: string; honoPath: string }) =>
      op.operationId === "e2bGetTemplateAlias" ? TEMPLATE_ALIAS_PATH : op.honoPath;
    const e2b = Object.values(E2B_OPS).flatMap((op) => [
      key(op.method, `${prefix}${honoPathOf(op)}`),
      ...(op.honoPath === "/files" ? [key(op.method, "/files")] : []),
    ]);
    const rpc = ["process.Process", "filesystem.Filesystem"].map((s) => key("POST", `${prefix}/${s}/:method`));
    // A server's port takes the rest of the path (`{path}`) as a trailing wildcard.
    const bayPath = (op: { operationId: string; honoPath: string }) => (op.operationId.startsWith("port") ? PORT_ROUTE : op.honoPath);
    // `/docs/` is no operation: a redirect to `/docs` for the URL typed with a slash.
    const docsSlash = key("GET", DOCS_SLASH_ROUTE);
    const spec = new Set([...OPS.map((op) => key(op.method, bayPath(op))), ...e2b, ...rpc, key("ALL", `${prefix}/*`), docsSlash]);
    const notInSpec = [...routes].filter((r) => !spec.has(r)).sort();
    const noRoute = [...spec].filter((s) => !routes.has(s)).sort();
    expect({ notInSpec, noRoute }).toEqual({ notInSpec: [], noRoute: [] });
  });

  test("the first segments the E2B prefix may not take are exactly those of Bay's own routes", () => {
    // config.ts refuses an e2b.prefix under one of them; a new top-level route must be added there.
    const prefix = t.bay.deps.config.e2b.prefix;
    const own = new Set(
      inspectRoutes(t.bay.app)
        .map((r) => r.path)
        .filter((path) => path !== prefix && !path.startsWith(`${prefix}/`) && path !== "/*")
        .map((path) => path.split("/")[1]!.toLowerCase()),
    );
    expect([...own].sort()).toEqual([...BAY_FIRST_SEGMENTS].sort());
  });

  test("every route fits Hono's RegExpRouter (one route that does not silently drops the app to its slower TrieRouter)", async () => {
    await t.bay.app.request("/health");
    expect((t.bay.app.router as { name: string }).name).toBe("SmartRouter + RegExpRouter");
  });

  test("the route check really sees routes (guards against an empty inspectRoutes)", () => {
    const handlers = inspectRoutes(t.bay.app).filter((r) => !r.isMiddleware);
    expect(handlers.length).toBeGreaterThan(10);
    expect(handlers.some((r) => r.method === "POST" && r.path === "/v1/sandboxes")).toBe(true);
  });
});

describe("one version", () => {
  test("/health, /openapi.json's info.version and package.json agree", async () => {
    const health = (await (await t.bay.app.request("/health")).json()) as { version: string };
    const doc = (await (await t.bay.app.request("/openapi.json")).json()) as { info: { version: string } };
    expect(health.version).toBe(packageVersion);
    expect(doc.info.version).toBe(packageVersion);
  });
});

describe("fixtures are valid", () => {
  test("every operation with a JSON body has a fixture that its schema accepts", () => {
    for (const op of OPS.filter((o) => o.body)) {
      const fixture = BODY_FIXTURES[op.operationId as OperationId];
      expect({ op: op.operationId, ok: fixture !== undefined && op.body!.safeParse(fixture).success }).toEqual({
        op: op.operationId,
        ok: true,
      });
    }
  });
});
