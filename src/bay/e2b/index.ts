/**
 * Bay's E2B-compatible API: the control plane, envd (Connect RPC with the JSON
 * codec, plus its HTTP file routes) and the code interpreter, on one prefix of
 * Bay's own port, over Bay's own domain services. `createE2bApi` builds it from
 * the app's dependencies; app.ts mounts `prefixed` under the prefix and `root`
 * at the origin root (signed file URLs).
 */
import { Hono, type MiddlewareHandler } from "hono";
import type { AppDeps } from "../api/deps.ts";
import { jsonBodyLimit } from "../api/middleware/body-limit.ts";
import { BayError } from "../errors.ts";
import { controlRoutes } from "./control-routes.ts";
import { E2bCredentials } from "./credentials.ts";
import { E2bSandboxes } from "./e2b-sandboxes.ts";
import { DataPlaneAccess, type DataPlaneCall } from "./envd/access.ts";
import type { EnvdRpc } from "./envd/rpc.ts";
import { filesRoutes } from "./envd/files-routes.ts";
import { InteractiveProcessBackend } from "./envd/interactive-backend.ts";
import type { ProcessBackend } from "./envd/process-backend.ts";
import { PtySessions } from "./envd/pty-sessions.ts";
import { e2bErrorHandler, e2bErrorResponse } from "./errors.ts";
import { type CodeContexts, interpreterRoutes } from "./interpreter-routes.ts";
import { sandboxHosts } from "./sandbox-hosts.ts";
import { E2bSandboxStore } from "./store.ts";
import { TemplateCatalogue } from "./templates.ts";

export interface E2bApi {
  /** Mounted at `e2b.prefix`. */
  prefixed: Hono;
  /** Mounted at the origin root: `GET`/`POST /files` for signed URLs. */
  root: Hono;
  /** Serves `{port}-{id}.{e2b.sandbox_domain}` before anything else sees the request (null without a domain). */
  hosts: MiddlewareHandler | null;
  sandboxes: E2bSandboxes;
  credentials: E2bCredentials;
  envdVersion: string;
}

/**
 * The envd version Bay reports, which is what switches features on in the SDKs:
 * 0.5.7 = stdin (0.3.0), default user (0.4.0), closeStdin (0.5.2) and raw
 * uploads (0.5.7); never 0.6.2 (per-file metadata, which Bay does not keep).
 */
export function envdVersionFor(backend: ProcessBackend): string {
  return backend.supportsStdin ? "0.5.7" : "0.2.0";
}

/** Parts of Bay that only some builds have yet; without them those E2B calls answer 501. */
export interface E2bOptionalDeps {
  contexts?: CodeContexts;
}

/**
 * `guard` sets the owner of control-plane calls and applies the rate limit;
 * `rateLimit(owner)` takes from the same buckets for data-plane calls (throws when over).
 */
export function createE2bApi(
  deps: AppDeps,
  guard: MiddlewareHandler[],
  optional: E2bOptionalDeps = {},
  rateLimit: (owner: string) => void = () => {},
): E2bApi {
  const { config, stores, logger } = deps;
  const e2bStore = new E2bSandboxStore(stores.db);
  const credentials = new E2bCredentials(() => e2bStore.tokenSecret());
  const templates = new TemplateCatalogue(deps.profiles, config.e2b.default_profile);
  const backend: ProcessBackend = new InteractiveProcessBackend(deps.sandboxExec, deps.sandboxProcesses);
  const ptys = new PtySessions(deps.sandboxTerminal);
  const envdVersion = envdVersionFor(backend);
  const sandboxes = new E2bSandboxes({
    sandboxes: deps.sandboxes,
    stores,
    e2bStore,
    credentials,
    templates,
    envdVersion,
    defaultTimeoutSeconds: config.e2b.default_timeout,
    sandboxDomain: config.e2b.sandbox_domain ?? null,
    diskSizeMb: config.limits.workspace_size_limit_mb,
  });
  const access = new DataPlaneAccess(credentials, stores.sandboxes, rateLimit);
  // JSON bodies, read only once a caller's key or token is checked (each route places it after that).
  const bodyLimit = jsonBodyLimit(config.limits.max_body_bytes);
  const envVars = (call: DataPlaneCall) => sandboxes.envVars(call.owner, call.sandboxId);
  // envd's Connect services load with the first envd call (see envd/rpc.ts).
  let rpc: Promise<EnvdRpc> | null = null;
  const envdRpc = () =>
    (rpc ??= import("./envd/rpc.ts").then(({ buildEnvdRpc }) =>
      buildEnvdRpc({
        logger,
        backend,
        ptys,
        envVars,
        exec: deps.sandboxExec,
        files: deps.sandboxFiles,
        watch: deps.sandboxWatch,
        maxWatchersPerOwner: config.limits.max_open_streams_per_owner,
        readMaxBytes: config.limits.max_body_bytes,
      }),
    ));

  const prefixed = new Hono();
  prefixed.onError(e2bErrorHandler(logger));

  // envd's /health when a sandbox is named, by the header or by its access token alone (what
  // Python SDKs before 2.25.1 send after connect): 204, or 502 once it is gone; the API's otherwise.
  prefixed.get("/health", async (c) => {
    const accessToken = c.req.header("x-access-token");
    const sandboxId = c.req.header("e2b-sandbox-id");
    if (!sandboxId && accessToken === undefined) return c.json({ status: "healthy" }, 200);
    try {
      await access.authorize({
        sandboxId,
        accessToken,
        authorization: undefined,
        requestId: c.get("requestId") ?? "",
      });
    } catch (e) {
      if (e instanceof BayError && e.code === "not_found") throw new BayError("ship_error", "the sandbox is not running");
      throw e;
    }
    return c.body(null, 204);
  });

  prefixed.route("/", controlRoutes({ sandboxes, templates, guard, metrics: deps.sandboxMetrics, bodyLimit }));

  for (const service of ["process.Process", "filesystem.Filesystem"]) {
    prefixed.post(`/${service}/:method`, async (c) => {
      const { handlers, refusal, shapedBody } = await envdRpc();
      const handler = handlers.get(`/${service}/${c.req.param("method")}`);
      if (!handler) return e2bErrorResponse(c, new BayError("not_found", `no such method: ${service}/${c.req.param("method")}`));
      const requestId = c.get("requestId") ?? "";
      // The caller first, from the headers: a client without a token never has its body read or parsed
      // (review s87), and the owner's rate limit is taken before Connect decodes anything (s91).
      // The service runs as this call, not authorized again (envd-calls.ts).
      let call: DataPlaneCall;
      try {
        call = await access.authorize({
          sandboxId: c.req.header("e2b-sandbox-id"),
          accessToken: c.req.header("x-access-token"),
          authorization: c.req.header("authorization"),
          requestId,
        });
      } catch (e) {
        const res = refusal(c.req.header("content-type") ?? "", e);
        res.headers.set("X-Request-Id", requestId);
        return res;
      }
      const body = shapedBody(`/${service}/${c.req.param("method")}`, c.req.header("content-type") ?? "", c.req.raw.body);
      const { url, headers, signal } = c.req.raw;
      const res = await handler(new Request(url, { method: "POST", headers, body, signal, duplex: "half" } as RequestInit), call);
      // The handler's own Response: headers set on the context (X-Request-Id) are not merged into it.
      res.headers.set("X-Request-Id", requestId);
      return res;
    });
  }

  const files = filesRoutes({
    access,
    credentials,
    files: deps.sandboxFiles,
    sandboxes: stores.sandboxes,
    e2bStore,
    spool: deps.uploadSpool,
  });
  prefixed.route("/", files);
  prefixed.route(
    "/",
    interpreterRoutes({
      access,
      exec: deps.sandboxExec,
      envVars,
      runCodeTimeoutSeconds: deps.config.e2b.run_code_timeout,
      bodyLimit,
      ...(optional.contexts ? { contexts: optional.contexts } : {}),
    }),
  );
  prefixed.all("*", (c) => e2bErrorResponse(c, new BayError("not_found", `no E2B route for ${c.req.method} ${c.req.path}`)));

  const root = new Hono();
  root.onError(e2bErrorHandler(logger));
  root.route("/", files);
  const domain = config.e2b.sandbox_domain;
  const hosts = domain
    ? sandboxHosts({
        domain,
        credentials,
        sandboxes: stores.sandboxes,
        publicTraffic: (id) => e2bStore.publicTraffic(id),
        ports: deps.sandboxPorts,
        maxPublicStreams: config.e2b.max_public_streams,
      })
    : null;
  return { prefixed, root, hosts, sandboxes, credentials, envdVersion };
}
