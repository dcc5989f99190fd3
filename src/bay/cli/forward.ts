/**
 * `bay sandbox forward ID PORT [--listen [HOST:]LOCAL]`: a local HTTP server
 * that sends every request on to the server on PORT in the sandbox, through
 * Bay's `…/ports/PORT/…` with the caller's credentials. A browser app served
 * in a sandbox then works at `http://127.0.0.1:LOCAL/`, an origin of its own,
 * with its relative paths, scripts and WebSockets (through Bay itself a page is
 * an opaque origin under a path prefix).
 *
 * The listener is the user's credentials made reachable, so it serves only
 * what a page of its own origin or a program sends: a Host that is a domain
 * name (a DNS-rebinding page) gets 421, and a request a browser says comes
 * from another site's page gets 403. Bay's own browser headers (the sandbox
 * CSP it adds for its origin) are not passed on: this origin is the
 * forwarder's.
 */
import type { Server, ServerWebSocket } from "bun";
import { hopByHop } from "../../protocol/hop-by-hop.ts";
import { fromOtherSite } from "../api/middleware/host-guard.ts";
import type { CliIo } from "./args.ts";
import { type ClientTarget, endpoint, request } from "./client.ts";

/** What a browser adds that says where a request comes from: checked here, not sent on (Bay's guard would read it as the forwarder's). */
const NOT_SENT = new Set([
  "host",
  "origin",
  "referer",
  "sec-fetch-site",
  "sec-fetch-mode",
  "sec-fetch-dest",
  "sec-fetch-user",
  "content-length",
]);
/** A WebSocket handshake's own headers: the forwarder's client makes its own. */
const HANDSHAKE = new Set(["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"]);
/** Bytes queued towards a side of a WebSocket before the forwarder gives up on it (1008). */
const HIGH_WATER = 8 * 1024 * 1024;
const OPEN_TIMEOUT_MS = 45_000;

export interface Listen {
  hostname: string;
  port: number;
}

export interface Forwarder {
  /** The local URL the sandbox's server is at. */
  url: string;
  stop(): void;
}

/** `[HOST:]PORT` for --listen; the host defaults to 127.0.0.1. */
export function parseListen(value: string): Listen {
  const at = value.lastIndexOf(":");
  const host = at >= 0 ? value.slice(0, at).replace(/^\[(.*)\]$/, "$1") : "127.0.0.1";
  const port = Number(at >= 0 ? value.slice(at + 1) : value);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || host === "") {
    throw new Error(`--listen must be [HOST:]PORT with PORT from 0 to 65535, got ${value}`);
  }
  return { hostname: host, port };
}

/** Whether a Host header names this machine by address (or as localhost), never by a domain name another site could point here. */
export function hostByAddress(host: string | null): boolean {
  if (host === null) return false;
  const h = host.trim().toLowerCase();
  if (h.startsWith("[") && !h.includes("]")) return false;
  const name = h.startsWith("[") ? h.slice(1, h.indexOf("]")) : h.replace(/:\d*$/, "");
  return name === "localhost" || /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || (h.startsWith("[") && /^[0-9a-f:.]+$/.test(name));
}

/**
 * Bay's URL for a local request's path and query, under `portPath`; null when the
 * URL parser's resolution of dot segments (%2e%2e and backslashes included) would
 * take it out of there: a page the sandbox serves must never reach Bay's API with
 * the caller's credentials. (Bun.serve resolves them in the request's own URL
 * already; this holds whatever the server in front does.)
 */
export function remoteUrl(target: ClientTarget, portPath: string, local: URL): URL | null {
  const root = endpoint(target, portPath).pathname;
  const remote = endpoint(target, `${portPath}${local.pathname}`);
  remote.search = local.search;
  return remote.pathname === root || remote.pathname.startsWith(`${root}/`) ? remote : null;
}

type Message = string | Uint8Array;
/** Bay's socket, with what it sent before the local client's socket opened. */
interface Upstream {
  ws: WebSocket;
  early: Message[];
}
type Socket = ServerWebSocket<{ upstream: Upstream }>;

/** From the local client's open on, Bay's messages and close go to it. */
function relayToBay({ ws: up, early }: Upstream, local: Socket): void {
  const toLocal = (data: Message) => {
    if (local.getBufferedAmount() > HIGH_WATER) {
      up.close(1000);
      local.close(1008, "the client is not taking messages");
      return;
    }
    local.send(data);
  };
  for (const m of early.splice(0)) toLocal(m);
  up.onmessage = (e) => toLocal(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
  const closed = (code: number, reason: string) => local.close(code === 1005 || code === 1006 ? 1000 : code, reason);
  up.onclose = (e) => closed(e.code, e.reason);
  if (up.readyState === WebSocket.CLOSED) closed(1000, "");
}

export async function startForwarder(target: ClientTarget, id: string, port: number, listen: Listen, io: CliIo): Promise<Forwarder> {
  const base = `/v1/sandboxes/${encodeURIComponent(id)}`;
  // Bay's own words for an unknown sandbox or bad credentials, before anything listens.
  await request(target, "GET", base);
  const portPath = `${base}/ports/${port}`;

  const refuse = (status: number, message: string) => new Response(`bay sandbox forward: ${message}\n`, { status });

  const server: Server<{ upstream: Upstream }> = Bun.serve<{ upstream: Upstream }>({
    hostname: listen.hostname,
    port: listen.port,
    async fetch(req, srv) {
      if (!hostByAddress(req.headers.get("host"))) return refuse(421, "this forwarder serves requests to an address, not a host name");
      const u = new URL(req.url);
      if (
        fromOtherSite(
          req.headers.get("origin") ?? undefined,
          req.headers.get("sec-fetch-site") ?? undefined,
          req.headers.get("host") ?? undefined,
          new Set(),
        )
      ) {
        return refuse(403, "requests from another site's pages are not forwarded");
      }
      const hop = hopByHop(req.headers);
      const headers: Record<string, string> = {};
      req.headers.forEach((value, name) => {
        if (!hop(name) && !NOT_SENT.has(name) && !HANDSHAKE.has(name)) headers[name] = value;
      });
      Object.assign(headers, target.headers);
      const remote = remoteUrl(target, portPath, u);
      if (!remote) return refuse(400, "a path that leaves the sandbox's server is not forwarded");
      if ((req.headers.get("upgrade") ?? "").toLowerCase() === "websocket") {
        remote.protocol = remote.protocol === "https:" ? "wss:" : "ws:";
        const protocols = (req.headers.get("sec-websocket-protocol") ?? "")
          .split(",")
          .map((p) => p.trim())
          .filter((p) => p !== "");
        const up = await openUpstream(remote.href, headers, protocols);
        if (!up) return refuse(502, `Bay refused the WebSocket to port ${port} (send a plain GET to the same path to see why)`);
        // Bay's choice; empty when the server chose none (Bun would otherwise answer the first offer itself).
        if (srv.upgrade(req, { data: { upstream: up }, headers: { "Sec-WebSocket-Protocol": up.ws.protocol } })) return undefined;
        up.ws.close();
        return refuse(400, "not a valid WebSocket handshake");
      }
      const hasBody = req.method !== "GET" && req.method !== "HEAD";
      const declared = req.headers.get("content-length");
      if (hasBody && declared !== null) headers["content-length"] = declared;
      let res: Response;
      try {
        res = await fetch(remote, {
          method: req.method,
          headers,
          body: hasBody ? req.body : undefined,
          redirect: "manual",
          decompress: false,
          duplex: "half",
        } as RequestInit);
      } catch (e) {
        return refuse(502, `cannot reach Bay at ${target.url.origin}: ${(e as Error).message}`);
      }
      const out = new Headers(res.headers);
      out.delete("content-security-policy");
      return new Response(res.body, { status: res.status, statusText: res.statusText, headers: out });
    },
    websocket: {
      maxPayloadLength: 1024 * 1024,
      open: (ws) => relayToBay(ws.data.upstream, ws),
      message: (ws, data) => {
        const up = ws.data.upstream.ws;
        if (up.readyState !== WebSocket.OPEN) return;
        if (up.bufferedAmount > HIGH_WATER) {
          up.close(1000);
          ws.close(1008, "the sandbox's server is not taking messages");
          return;
        }
        up.send(data);
      },
      close: (ws, code, reason) => {
        const up = ws.data.upstream.ws;
        if (up.readyState === WebSocket.OPEN || up.readyState === WebSocket.CONNECTING) {
          up.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason);
        }
      },
    },
  });
  const shown = listen.hostname.includes(":") ? `[${listen.hostname}]` : listen.hostname;
  const url = `http://${shown}:${server.port}/`;
  io.err(`bay: forwarding ${url} to port ${port} in sandbox ${id} (Ctrl-C to stop)`);
  return { url, stop: () => void server.stop(true) };
}

/** A WebSocket to Bay, once open (its messages kept until the local client's opens); null when Bay refused it (a client cannot read why). */
function openUpstream(url: string, headers: Record<string, string>, protocols: string[]): Promise<Upstream | null> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, ...(protocols.length ? { protocols } : {}) } as unknown as string[]);
    ws.binaryType = "arraybuffer";
    const early: Message[] = [];
    const timer = setTimeout(() => ws.close(), OPEN_TIMEOUT_MS);
    ws.onmessage = (e) => early.push(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
    ws.onopen = () => {
      clearTimeout(timer);
      resolve({ ws, early });
    };
    ws.onclose = () => {
      clearTimeout(timer);
      resolve(null);
    };
  });
}
