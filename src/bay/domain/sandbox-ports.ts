/**
 * Requests for servers running in a sandbox (`/v1/sandboxes/{id}/ports/{port}/…`),
 * through its Ship, which sends them on to 127.0.0.1:{port} from inside the
 * container. The rules that are Bay's live here: what of the caller's request
 * may reach the server (user code: never Bay's credentials, the caller's
 * cookies or where the caller is on the network), what of the server's answer
 * may reach the caller (never cookies for Bay's origin, CORS grants or headers
 * that pass for Bay's or Ship's), and that a page the sandbox serves never runs
 * as Bay's origin in a browser.
 */
import { hopByHop } from "../../protocol/hop-by-hop.ts";
import { BayError } from "../errors.ts";
import { DEADLINES, UPSTREAM_HEADER } from "../runtime/ship-client.ts";
import type { CallContext, CapabilityRouter } from "./capability-router.ts";
import { callerHosts, portLocation } from "./port-locations.ts";
import { PortSocketBridge } from "./port-socket-bridge.ts";
import { tooLargeError } from "./sandbox-files.ts";

/** Marks a server's answer to Bay's client (its value: the server's status). */
export const BAY_UPSTREAM_HEADER = "X-Bay-Upstream";

/**
 * A page the server sends runs in a browser as an opaque origin (scripts, forms
 * and pop-ups allowed): it can never read Bay's answers or use its credentials.
 */
export const SERVER_PAGE_POLICY = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

export interface PortRequest {
  port: number;
  method: string;
  /** The path after `/ports/{port}` plus the query, as the client sent them; starts with "/". */
  rest: string;
  /** The URL the client asked for: the server's redirects are kept under its port (port-locations.ts). */
  url: string;
  /** The client's headers, as received. */
  headers: Headers;
  body: ReadableStream<Uint8Array> | null;
}

/** A client's WebSocket request for a server in the sandbox. */
export type PortSocketRequest = Pick<PortRequest, "port" | "rest" | "headers">;

/** Answer headers naming a URL that a client may go to next. */
const LOCATIONS = new Set(["location", "content-location"]);

/**
 * Where the answer is read: on Bay's own origin (`/v1/…/ports/…`: the page must
 * never act as Bay's, so it runs as an opaque origin and gets no cookies), or on
 * an origin of the sandbox's own (`{port}-{id}.{e2b.sandbox_domain}`: the page is
 * the app's, with its cookies and its own login, but never a cookie for the
 * domain its neighbours share).
 */
export type PortOrigin = "bay" | "own";

/** The handshake's own headers: Ship's WebSocket client makes its own. */
const WEBSOCKET_HANDSHAKE = ["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"];

/** RFC 9110 token characters (a subprotocol is a token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The subprotocols a client offered (Sec-WebSocket-Protocol), in its order; a malformed list is the client's error. */
export function subprotocols(header: string | null): string[] {
  if (header === null) return [];
  const list = header.split(",").map((p) => p.trim());
  if (list.length > 32 || list.some((p) => !TOKEN.test(p))) {
    throw new BayError("validation_error", "Sec-WebSocket-Protocol must be a comma-separated list of at most 32 tokens", {
      details: { issues: [{ path: "headers.sec-websocket-protocol", message: "not a list of tokens" }] },
    });
  }
  return list;
}

export interface SandboxPortsDeps {
  router: CapabilityRouter;
  /** The largest request body sent on (limits.max_upload_bytes). */
  maxBodyBytes: number;
  /** Bay's configured host names (server.allowed_hosts, server.host): a redirect to one stays under its port. */
  hosts?: readonly string[];
  /** Whether a path is one of Bay's credentialed routes: a redirect to it on another host is dropped (port-locations.ts). */
  bayRoute?: (path: string) => boolean;
}

/**
 * The caller's credentials (Bay's own, and the E2B API's: `X-API-Key` is a Bay key
 * there) and where the caller is on the network: never the server's. Content-Length
 * is set by Bay from the one it checked (a repeated one, "2, 2", would break the hop).
 */
export const PORT_HEADERS_NOT_SENT: ReadonlySet<string> = new Set([
  "host",
  "authorization",
  "x-owner",
  "cookie",
  "x-api-key",
  "x-access-token",
  "x-request-id",
  "content-length",
  "forwarded",
  "via",
  "x-real-ip",
  "x-client-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "fastly-client-ip",
  "x-cluster-client-ip",
  "client-ip",
  "remote-user",
  "x-remote-user",
  "x-webauth-user",
  "x-ms-client-principal",
  "x-ms-client-principal-id",
  "x-ms-client-principal-name",
  "x-ms-client-principal-idp",
]);
/**
 * Prefixes of headers that are Bay's, Ship's, E2B's or the network's in front of Bay,
 * and those the identity proxies put in front of an app set (review s88 M2: their tokens
 * are bearer credentials at the identity provider or the edge): Cloudflare Access, AWS
 * ALB OIDC, Google IAP, oauth2-proxy, Azure EasyAuth, Pomerium, authentik, Vouch, and
 * Envoy's view of the client.
 */
export const PORT_HEADER_PREFIXES_NOT_SENT: readonly string[] = [
  "x-forwarded-",
  "x-bay-",
  "x-ship-",
  "e2b-",
  "cf-access-",
  "x-amzn-oidc-",
  "x-goog-iap-",
  "x-goog-authenticated-",
  "x-auth-request-",
  "x-ms-token-",
  "x-pomerium-",
  "x-authentik-",
  "x-vouch-",
  "x-original-",
  "x-envoy-",
];
/**
 * Not returned from the server: cookies and logins for Bay's origin, CORS grants
 * (Bay's settings apply), headers passing for ours; headers a browser applies to
 * Bay's whole origin (storage wipes, HSTS pins, error reporting, service worker
 * scope, other transports, client hints, credential prompts, redirects by
 * refresh), whatever the page's own sandbox; and headers a proxy or CDN in front
 * of Bay acts on (internal redirects, sendfile, caching rules that override
 * Cache-Control, Envoy's health and degraded marks: review s88 L1).
 */
const NOT_RETURNED = new Set([
  "set-cookie",
  "set-login",
  "www-authenticate",
  "refresh",
  "x-request-id",
  "content-security-policy",
  "content-security-policy-report-only",
  "clear-site-data",
  "strict-transport-security",
  "nel",
  "report-to",
  "reporting-endpoints",
  "service-worker-allowed",
  "alt-svc",
  "origin-agent-cluster",
  "accept-ch",
  "critical-ch",
  "x-sendfile",
  "x-lighttpd-send-file",
  "surrogate-control",
  "surrogate-key",
  "cdn-cache-control",
  "cloudflare-cdn-cache-control",
  "edge-control",
]);
const NOT_RETURNED_PREFIX = ["access-control-", "x-bay-", "x-ship-", "x-accel-", "x-envoy-"];

/**
 * What an app on an origin of its own may receive and set that it may not on
 * Bay's: its cookies, CORS grants and page rules. (Authorization stays Bay's:
 * the hop to the Ship carries the session's own, so a login prompt is not passed
 * on; Clear-Site-Data stays dropped, since its "cookies" clears the whole
 * registrable domain, every neighbouring sandbox's included.)
 */
const OWN_ORIGIN_SENT = new Set(["cookie"]);
const OWN_ORIGIN_RETURNED = new Set([
  "set-cookie",
  "refresh",
  "content-security-policy",
  "content-security-policy-report-only",
  "service-worker-allowed",
  "origin-agent-cluster",
]);
const OWN_ORIGIN_RETURNED_PREFIX = ["access-control-"];

/**
 * A Set-Cookie an app on its own origin may set: host-only ones. A `Domain`
 * attribute would reach every sandbox host under the shared domain (and the
 * domain itself), so such cookies are dropped.
 */
export function hostOnlyCookie(setCookie: string): boolean {
  return !setCookie
    .split(";")
    .slice(1)
    .some((attr) => attr.split("=")[0]!.trim().toLowerCase() === "domain");
}

/** Cache-Control directives, split on commas outside quoted strings; null when a quote is left open. */
function directives(value: string): string[] | null {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted && ch === "\\") {
      cur += ch + (value[++i] ?? "");
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === "," && !quoted) {
      out.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  if (quoted) return null;
  out.push(cur.trim());
  return out.filter((d) => d !== "");
}

/**
 * The server's Cache-Control, made private: an answer to an authenticated caller
 * is never stored by a shared cache in front of Bay for others. Directives named
 * public, private or s-maxage (whatever their argument) are dropped; a value that
 * does not parse becomes `private, no-store`.
 */
export function privateCaching(value: string | null): string {
  const parsed = directives(value ?? "");
  if (parsed === null) return "private, no-store";
  const kept = parsed.filter((d) => !/^(public|private|s-maxage)\s*(=|$)/i.test(d));
  return ["private", ...kept].join(", ");
}

/** What of the client's headers is sent on to the server. */
export function forwardedHeaders(client: Headers, origin: PortOrigin = "bay"): Headers {
  const hop = hopByHop(client);
  const out = new Headers();
  client.forEach((value, name) => {
    if (hop(name) || (PORT_HEADERS_NOT_SENT.has(name) && !(origin === "own" && OWN_ORIGIN_SENT.has(name)))) return;
    if (PORT_HEADER_PREFIXES_NOT_SENT.some((p) => name.startsWith(p))) return;
    out.append(name, value);
  });
  return out;
}

/** Whether a server's answer header reaches the client on that origin. */
function returned(name: string, origin: PortOrigin): boolean {
  if (origin === "own" && (OWN_ORIGIN_RETURNED.has(name) || OWN_ORIGIN_RETURNED_PREFIX.some((p) => name.startsWith(p)))) return true;
  return !NOT_RETURNED.has(name) && !NOT_RETURNED_PREFIX.some((p) => name.startsWith(p));
}

/**
 * The server's answer as Bay's client gets it; on Bay's origin its redirects go through
 * `location` (portLocation: kept under the port, or dropped).
 */
export function serverAnswer(
  res: Response,
  requestId: string,
  origin: PortOrigin = "bay",
  location: (value: string) => string | null = () => null,
): Response {
  const hop = hopByHop(res.headers);
  const headers = new Headers();
  res.headers.forEach((value, name) => {
    if (hop(name) || name === "set-cookie" || !returned(name, origin)) return;
    const kept = origin === "bay" && LOCATIONS.has(name) ? location(value) : value;
    if (kept !== null) headers.append(name, kept);
  });
  if (origin === "own") for (const cookie of res.headers.getSetCookie()) if (hostOnlyCookie(cookie)) headers.append("set-cookie", cookie);
  headers.set("Cache-Control", privateCaching(res.headers.get("cache-control")));
  headers.set(BAY_UPSTREAM_HEADER, res.headers.get(UPSTREAM_HEADER) ?? String(res.status));
  if (origin === "bay") headers.set("Content-Security-Policy", SERVER_PAGE_POLICY);
  headers.set("X-Content-Type-Options", "nosniff");
  headers.set("X-Request-Id", requestId);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

/** A body without a length, cut off once it passes `max` bytes (`over()` then says so). */
function capped(body: ReadableStream<Uint8Array>, max: number): { body: ReadableStream<Uint8Array>; over: () => boolean } {
  let seen = 0;
  const capped = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctrl) {
        seen += chunk.byteLength;
        if (seen > max) ctrl.error(tooLargeError(max));
        else ctrl.enqueue(chunk);
      },
    }),
  );
  return { body: capped, over: () => seen > max };
}

export class SandboxPorts {
  constructor(private readonly deps: SandboxPortsDeps) {}

  /** Refusals first: nothing starts for a sandbox that is not the caller's or cannot run a server. */
  private async check(ctx: CallContext, port: number): Promise<void> {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new BayError("validation_error", `port must be a number from 1 to 65535, got ${port}`, {
        details: { issues: [{ path: "port", message: "must be 1-65535" }] },
      });
    }
    const { profile } = await this.deps.router.preflight(ctx.owner, ctx.sandboxId, "shell");
    if (port === profile.runtime_port) {
      throw new BayError("validation_error", `port ${port} is the sandbox runtime's own`, {
        details: { issues: [{ path: "port", message: "the runtime's own port" }] },
      });
    }
  }

  /**
   * Opens a WebSocket to the server on its port (the client's upgrade request in
   * `req`); resolves once the server accepted, before the client is upgraded, so
   * every refusal is an answer in the error model.
   */
  async openSocket(ctx: CallContext, req: PortSocketRequest, origin: PortOrigin = "bay"): Promise<PortSocketBridge> {
    const protocols = subprotocols(req.headers.get("sec-websocket-protocol"));
    await this.check(ctx, req.port);
    const headers = forwardedHeaders(req.headers, origin);
    for (const name of WEBSOCKET_HANDSHAKE) headers.delete(name);
    return this.deps.router.call(ctx, {
      capability: "shell",
      operation: "port",
      coverMs: DEADLINES.portSocket,
      // Nothing reached the server before it accepted: a fresh session may take it.
      replayable: true,
      // Held open for as long as either side keeps it: one of the owner's open-stream slots meanwhile.
      opens: true,
      run: async (ship, s) => new PortSocketBridge(await ship.portSocket(s, { port: req.port, rest: req.rest, headers, protocols }, ctx)),
    });
  }

  /** Sends `req` to the server on its port in the sandbox; returns the server's answer as the client gets it. */
  async request(ctx: CallContext, req: PortRequest, origin: PortOrigin = "bay"): Promise<Response> {
    const { router, maxBodyBytes } = this.deps;
    await this.check(ctx, req.port);
    const declared = req.headers.get("content-length");
    const length = declared !== null && /^\d+$/.test(declared) ? Number(declared) : null;
    if (length !== null && length > maxBodyBytes) throw tooLargeError(maxBodyBytes);
    const hasBody = req.body !== null && req.method !== "GET" && req.method !== "HEAD";
    // A body without a length is counted as it streams to the Ship.
    const counted = hasBody && length === null ? capped(req.body!, maxBodyBytes) : null;
    const body = counted?.body ?? (hasBody ? req.body : null);
    const sent = forwardedHeaders(req.headers, origin);
    // A body of known length keeps it (servers that read no chunked body need it); one without is sent chunked.
    if (body !== null && length !== null) sent.set("content-length", String(length));
    try {
      const res = await router.call(ctx, {
        capability: "shell",
        operation: "port",
        coverMs: DEADLINES.port,
        // A body streams: it cannot be sent twice.
        replayable: body === null,
        // Its answer may stream for as long as the server sends: it holds one of the owner's open-stream slots meanwhile.
        opens: true,
        relaysServer: true,
        run: (ship, s) => ship.port(s, { port: req.port, method: req.method, rest: req.rest, headers: sent, body }, ctx),
      });
      if (origin === "own") return serverAnswer(res, ctx.requestId, origin);
      const hosts = callerHosts(req.url, req.headers, this.deps.hosts);
      return serverAnswer(res, ctx.requestId, origin, (value) => portLocation(value, req.url, req.rest, hosts, this.deps.bayRoute));
    } catch (e) {
      // The transfer broke because the body passed the limit: that is the client's error.
      if (counted?.over()) throw tooLargeError(maxBodyBytes);
      throw e;
    }
  }
}
