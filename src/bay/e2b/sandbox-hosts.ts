/**
 * Sandbox hosts: what E2B's `getHost(port)` names. A request whose Host is
 * `{port}-{sandbox id}.{e2b.sandbox_domain}` goes to that port in that sandbox,
 * through the same relay as `/v1/sandboxes/{id}/ports/{port}/…` (HTTP and
 * WebSockets), on an origin of the sandbox's own: the app gets its cookies
 * (host-only) and sets its own page rules.
 *
 * Who may: whoever presents the sandbox's traffic token
 * (`E2B-Traffic-Access-Token`), or anyone when the sandbox was created with
 * `network.allowPublicTraffic: true`. Bay's API is never served on a name under
 * the domain, whatever its path, so a sandbox's page can never be Bay's origin.
 * The call runs as the sandbox's owner; it holds one of the owner's open-stream
 * slots, or, without a token, one of the sandbox's own and one of all visitors'
 * (visitors of public sandboxes can never use up an owner's, nor Bay's sockets).
 * It never starts a stopped sandbox, nor restarts a dead runtime (409 port_closed).
 */
import type { Context, MiddlewareHandler } from "hono";
import { pathAfter } from "../../protocol/path-after.ts";
import { portSocket } from "../api/routes/ports.ts";
import { isUpgradeRequest } from "../api/websocket.ts";
import { sentBody } from "../api/relay.ts";
import type { CallContext } from "../domain/capability-router.ts";
import type { SandboxPorts } from "../domain/sandbox-ports.ts";
import { BayError } from "../errors.ts";
import type { SandboxStore } from "../store/sandbox-store.ts";
import type { E2bCredentials } from "./credentials.ts";
import { liveSandbox } from "./envd/access.ts";

/** The header E2B's SDKs and docs name for a sandbox's traffic token. */
export const TRAFFIC_TOKEN_HEADER = "e2b-traffic-access-token";
/** Route label of these requests in metrics and the access log (no route of the app matched them). */
export const SANDBOX_HOST_ROUTE = "{port}-{sandboxID}.{sandbox_domain}";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]);

export interface SandboxHost {
  port: number;
  sandboxId: string;
}

/** A sandbox host, as sent: `{port}-{id}.{name}` with one optional trailing dot and an optional port. */
const SANDBOX_HOST = /^([1-9][0-9]{0,4})-(sandbox-[0-9a-z]{1,64})\.([^:]+)(?::[0-9]{1,5})?$/;

/**
 * What a Host header names: null when the domain's host name is nowhere in it
 * under a dot (Bay's API then answers as usual); a sandbox host; or "malformed"
 * for anything else that has it (another name under it, any port, odd bytes, or
 * several Host headers, which Bun joins with commas): answered 404, never by Bay's API.
 */
export function sandboxHost(host: string | undefined, domain: string): SandboxHost | "malformed" | null {
  if (host === undefined) return null;
  const name = domain.replace(/:[0-9]+$/, "");
  const h = host.trim().toLowerCase();
  if (!h.includes(`.${name}`)) return null;
  const m = SANDBOX_HOST.exec(h);
  if (!m) return "malformed";
  const under = m[3]!.endsWith(".") ? m[3]!.slice(0, -1) : m[3]!;
  const port = Number(m[1]);
  return under === name && port <= 65535 ? { port, sandboxId: m[2]! } : "malformed";
}

export interface SandboxHostsDeps {
  domain: string;
  credentials: E2bCredentials;
  sandboxes: SandboxStore;
  /** Whether a sandbox answers without its token (its E2B row's allowPublicTraffic). */
  publicTraffic: (sandboxId: string) => Promise<boolean>;
  ports: SandboxPorts;
  /** Visitors' requests open at once, all public sandboxes together (e2b.max_public_streams). */
  maxPublicStreams: number;
  now?: () => number;
}

/**
 * The open-stream slots a token-less visitor takes: one of the sandbox's own (as
 * many as an owner has) and one of all visitors' on this process, never the owner's.
 * (Keys start with NUL, which no owner name can.)
 */
const visitorSlots = (sandboxId: string, max: number) => [
  { key: `\u0000public:${sandboxId}`, scope: "for a public sandbox's visitors" },
  { key: "\u0000public", scope: "for all public sandboxes' visitors on this Bay process", max },
];

/** Who a request to a sandbox host acts for. */
export interface HostCaller {
  owner: string;
  /** True when it came without a token (a public sandbox's visitor): it uses the sandbox's own open-stream slots. */
  anonymous: boolean;
}

/** The caller of a request to a sandbox host, or the refusal: 401 (wrong token), 404 (no such live sandbox), 403 (private, no token). */
export async function hostCaller(deps: SandboxHostsDeps, sandboxId: string, token: string | undefined): Promise<HostCaller> {
  // A presented token is checked before the database is read: a wrong one learns nothing about which ids exist.
  if (token !== undefined && !(await deps.credentials.check("traffic", sandboxId, token))) {
    throw new BayError("unauthorized", `wrong ${TRAFFIC_TOKEN_HEADER} for this sandbox`);
  }
  const sb = await liveSandbox(deps.sandboxes, sandboxId, (deps.now ?? Date.now)());
  if (token === undefined && !(await deps.publicTraffic(sandboxId))) {
    throw new BayError(
      "forbidden",
      `this sandbox's servers are private: send its traffic token (sandbox.trafficAccessToken) in ${TRAFFIC_TOKEN_HEADER}, or create it with network.allowPublicTraffic: true`,
      { details: { reason: "traffic_token_required" } },
    );
  }
  return { owner: sb.owner, anonymous: token === undefined };
}

const stopped = (port: number) =>
  new BayError(
    "conflict",
    `nothing in the sandbox accepts connections on port ${port}: the sandbox is stopped (its servers start again with its commands)`,
    {
      details: { reason: "port_closed", port },
    },
  );

/** Serves requests to sandbox hosts; every other request goes on to Bay's API. */
export function sandboxHosts(deps: SandboxHostsDeps): MiddlewareHandler {
  return async function baySandboxHosts(c: Context, next) {
    const target = sandboxHost(c.req.header("host"), deps.domain);
    if (target === null) return next();
    c.set("routeLabel", SANDBOX_HOST_ROUTE);
    if (target === "malformed") {
      throw new BayError(
        "not_found",
        `no sandbox host '${c.req.header("host")!.slice(0, 300)}': sandbox hosts are {port}-{sandbox id}.${deps.domain}`,
      );
    }
    const req = c.req.raw;
    if (!METHODS.has(req.method)) {
      throw new BayError(
        "method_not_allowed",
        `${req.method.slice(0, 32)} is not relayed to a sandbox's server (${[...METHODS].join(", ")} are)`,
      );
    }
    const caller = await hostCaller(deps, target.sandboxId, req.headers.get(TRAFFIC_TOKEN_HEADER) ?? undefined);
    const ctx: CallContext = {
      owner: caller.owner,
      sandboxId: target.sandboxId,
      requestId: c.get("requestId"),
      ...sentBody(c),
      // No runtime, no server: a request (a crawler's, say) never starts a stopped sandbox, nor restarts a dead one.
      neverStarts: () => stopped(target.port),
      // Visitors without a token share the sandbox's own slots (as many as an owner has), never the owner's.
      ...(caller.anonymous ? { slots: visitorSlots(target.sandboxId, deps.maxPublicStreams) } : {}),
    };
    const rest = pathAfter(req.url, 1);
    if (req.method === "GET" && isUpgradeRequest(req)) {
      return portSocket(
        { sandboxPorts: deps.ports },
        c,
        { ...ctx, signal: req.signal },
        { port: target.port, rest, headers: req.headers },
        "own",
      );
    }
    return deps.ports.request(
      ctx,
      { port: target.port, method: req.method, rest, url: req.url, headers: req.headers, body: req.body },
      "own",
    );
  };
}
