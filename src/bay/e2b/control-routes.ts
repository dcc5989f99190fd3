/**
 * E2B's control plane: sandboxes (both SDK generations' paths) and templates.
 * Thin handlers over E2bSandboxes; bodies and queries are checked against the
 * schemas generated from openapi/e2b.v1.yaml.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { validate, validateOptionalJson, validationError } from "../api/middleware/validate.ts";
import { checkWindow, type SandboxMetrics, type SandboxMetricsSample } from "../domain/sandbox-metrics.ts";
import { BayError } from "../errors.ts";
import type { E2bSandboxes } from "./e2b-sandboxes.ts";
import { operations as ops } from "./generated/openapi/index.ts";
import { ALIASES_SEGMENT, TEMPLATE_ALIAS_PATH } from "./route-paths.ts";
import type { TemplateCatalogue } from "./templates.ts";

export interface ControlRoutesDeps {
  sandboxes: E2bSandboxes;
  templates: TemplateCatalogue;
  /** Sets the owner (X-API-Key, Bearer, or anonymous mode) and applies the rate limit. */
  guard: MiddlewareHandler[];
  metrics: Pick<SandboxMetrics, "sampleOf" | "historyOf">;
  /** The JSON body limit, run after the guard: a body is read only for a caller with a key (review s87). */
  bodyLimit: MiddlewareHandler;
}

export function controlRoutes({ sandboxes, templates, guard, metrics, bodyLimit }: ControlRoutesDeps): Hono {
  const app = new Hono();
  for (const path of ["/sandboxes", "/sandboxes/*", "/v2/*", "/templates/*"]) app.use(path, ...guard);
  for (const path of ["/sandboxes", "/sandboxes/*", "/v2/sandboxes", "/v2/sandboxes/*"]) app.on("POST", path, bodyLimit);

  for (const op of [ops.e2bCreateSandbox, ops.e2bCreateSandboxLegacy]) {
    app.post(op.honoPath, validate("json", op.body), async (c) => c.json(await sandboxes.create(c.get("owner"), c.req.valid("json")), 201));
  }

  app.get(ops.e2bListSandboxes.honoPath, validate("query", ops.e2bListSandboxes.query), async (c) => {
    const q = c.req.valid("query");
    const page = await sandboxes.list(c.get("owner"), {
      limit: q.limit,
      nextToken: q.nextToken,
      template: q.template,
      startedAfter: q.startedAfter,
      order: q.order,
      metadata: q.metadata === undefined ? undefined : parseMetadataFilter(q.metadata),
      states: q.state === undefined ? undefined : q.state.split(",").map((s) => s.trim()),
    });
    if (page.nextToken) c.header("X-Next-Token", page.nextToken);
    return c.json(page.items, 200);
  });

  app.get(ops.e2bListSandboxesLegacy.honoPath, validate("query", ops.e2bListSandboxesLegacy.query), async (c) => {
    const q = c.req.valid("query");
    const metadata = q.metadata === undefined ? undefined : parseMetadataFilter(q.metadata);
    const items = [];
    let nextToken: string | undefined;
    do {
      const page = await sandboxes.list(c.get("owner"), { limit: 100, nextToken, metadata });
      items.push(...page.items);
      nextToken = page.nextToken ?? undefined;
    } while (nextToken);
    return c.json(items, 200);
  });

  app.get(ops.e2bGetSandbox.honoPath, validate("param", ops.e2bGetSandbox.params), async (c) =>
    c.json(await sandboxes.get(c.get("owner"), c.req.valid("param").sandboxID), 200),
  );

  app.delete(ops.e2bKillSandbox.honoPath, validate("param", ops.e2bKillSandbox.params), async (c) => {
    await sandboxes.kill(c.get("owner"), c.req.valid("param").sandboxID);
    return c.body(null, 204);
  });

  app.post(ops.e2bSetTimeout.honoPath, validate("param", ops.e2bSetTimeout.params), validate("json", ops.e2bSetTimeout.body), async (c) => {
    await sandboxes.setTimeout(c.get("owner"), c.req.valid("param").sandboxID, c.req.valid("json").timeout);
    return c.body(null, 204);
  });

  for (const [op, status] of [
    [ops.e2bConnectSandbox, 200],
    [ops.e2bConnectSandboxLegacy, 200],
    [ops.e2bResumeSandbox, 201],
  ] as const) {
    app.post(op.honoPath, validate("param", op.params), validateOptionalJson(op.body), async (c) => {
      const body = c.req.valid("json") as { timeout?: number } | undefined;
      return c.json(await sandboxes.connect(c.get("owner"), c.req.valid("param").sandboxID, body?.timeout), status);
    });
  }

  app.post(ops.e2bPauseSandbox.honoPath, validate("param", ops.e2bPauseSandbox.params), async (c) =>
    sandboxes.pause(c.get("owner"), c.req.valid("param").sandboxID),
  );

  app.put(ops.e2bUpdateSandboxNetwork.honoPath, validate("param", ops.e2bUpdateSandboxNetwork.params), async (c) => {
    await sandboxes.require(c.get("owner"), c.req.valid("param").sandboxID);
    throw new BayError(
      "not_implemented",
      "Bay does not change a sandbox's network: its egress is its template's profile's (network: egress or none), and its hosts' public traffic is set at create",
    );
  });

  app.get(
    ops.e2bSandboxMetrics.honoPath,
    validate("param", ops.e2bSandboxMetrics.params),
    validate("query", ops.e2bSandboxMetrics.query),
    async (c) => {
      const owner = c.get("owner");
      const id = c.req.valid("param").sandboxID;
      const { start, end } = metricsWindow(c.req.query("start"), c.req.query("end"));
      // Read once: E2B's own check of the sandbox, then its samples.
      const { sb } = await sandboxes.require(owner, id);
      // The samples Bay took while the sandbox ran (metrics-sampler.ts), as E2B keeps them.
      const history = await metrics.historyOf(sb, { start, end });
      if (history.length > 0) return c.json(history.map(e2bMetric), 200);
      // None yet (a runtime's first interval, sampling off): one taken now, when the window can hold it.
      const now = Math.floor(Date.now() / 1000);
      if ((start !== undefined && now + 1 < start) || (end !== undefined && now > end + 1)) return c.json([], 200);
      const m = await metrics.sampleOf(sb);
      const at = Math.floor(m.sampledAt / 1000);
      if ((start !== undefined && at < start) || (end !== undefined && at > end)) return c.json([], 200);
      return c.json([e2bMetric(m)], 200);
    },
  );

  // GET /templates/aliases/{alias} is routed as /templates/:templateID/:alias: Hono's
  // RegExpRouter (its fastest, which the whole app uses only when it can hold every
  // route) cannot hold a static segment where another route has a parameter. Any
  // other first segment falls through to the prefix's catch-all (E2B's 404). (`next`
  // comes as a rest parameter: Hono lists a handler declaring two as middleware.)
  app.get(TEMPLATE_ALIAS_PATH, (c, ...[next]) => {
    if (c.req.param("templateID") !== ALIASES_SEGMENT) return next();
    const params = ops.e2bGetTemplateAlias.params.safeParse({ alias: c.req.param("alias") });
    if (!params.success) throw validationError("param", params.error.issues);
    const alias = params.data.alias;
    templates.resolve(alias);
    return Promise.resolve(c.json({ templateID: alias, public: true }, 200));
  });

  app.get(ops.e2bGetTemplate.honoPath, validate("param", ops.e2bGetTemplate.params), (c) => {
    const id = c.req.valid("param").templateID;
    const profile = templates.resolve(id);
    return c.json(
      {
        templateID: id,
        public: true,
        aliases: [id],
        names: [id],
        cpuCount: profile.cpus,
        memoryMB: profile.memory_mb,
        buildStatus: "ready",
      },
      200,
    );
  });
  return app;
}

/**
 * The list filter as the SDKs send it: `k=v&k2=v2`, each key and value
 * URI-encoded by the SDK before the pairs are joined and encoded again.
 */
export function parseMetadataFilter(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  try {
    for (const [k, v] of new URLSearchParams(raw)) out[decodeURIComponent(k)] = decodeURIComponent(v);
  } catch {
    throw new BayError("validation_error", "metadata filter is not valid URL encoding", { details: { field: "metadata" } });
  }
  return out;
}

/** A sample in E2B's SandboxMetric shape. */
function e2bMetric(m: SandboxMetricsSample) {
  return {
    timestamp: new Date(m.sampledAt).toISOString(),
    timestampUnix: Math.floor(m.sampledAt / 1000),
    cpuCount: m.cpuCount,
    cpuUsedPct: m.cpuUsedPct,
    memUsed: m.memoryUsedBytes,
    memTotal: m.memoryLimitBytes,
    memCache: m.memoryCacheBytes,
    diskUsed: m.diskUsedBytes,
    diskTotal: m.diskLimitBytes,
  };
}

/** getMetrics' `start` and `end`: Unix seconds in digits (the schema's coercion would take "" or "0x10"), start not after end. */
function metricsWindow(rawStart: string | undefined, rawEnd: string | undefined): { start?: number; end?: number } {
  const read = (raw: string | undefined, field: string) => {
    if (raw === undefined) return undefined;
    if (!/^[0-9]{1,11}$/.test(raw)) throw badWindow(`${field} must be Unix seconds (digits)`, field);
    return Number(raw);
  };
  const start = read(rawStart, "start");
  const end = read(rawEnd, "end");
  return checkWindow({ ...(start !== undefined ? { start } : {}), ...(end !== undefined ? { end } : {}) });
}

const badWindow = (message: string, field: string) => new BayError("validation_error", message, { details: { field } });
