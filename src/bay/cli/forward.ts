/**
 * `bay sandbox forward ID PORT [--listen [HOST:]LOCAL]`: a local HTTP server
 * that sends every request on to the server on PORT in the sandbox, through
 * Bay's `…/ports/PORT/…` with the caller's credentials. A browser app served
 * in a sandbox then works at `http://{id}.localhost:LOCAL/`, an origin of its
 * own, with its relative paths, scripts and WebSockets (through Bay itself a
 * page is an opaque origin under a path prefix). Programs may use
 * `http://127.0.0.1:LOCAL/`; a browser loading a page there is sent to the
 * sandbox's own origin, so that no page of the sandbox shares an origin, or
 * cookies, with the user's other local apps or another sandbox.
 *
 * The listener is the user's credentials made reachable, so it serves only
 * what a page of its own origin or a program sends: a Host that is a domain
 * name (a DNS-rebinding page) gets 421, and a request a browser says comes
 * from another site's page gets 403 (rules: forward-rules.ts).
 */
import type { Server, ServerWebSocket } from "bun";
import { fromOtherSite } from "../api/middleware/host-guard.ts";
import { handshakeValid } from "../api/websocket.ts";
import { errorMessage } from "../logger.ts";
import type { CliIo } from "./args.ts";
import {
  headersForBay,
  hostKind,
  type Listen,
  loadsDocument,
  localLocation,
  loopbackOnly,
  offeredProtocols,
  remoteUrl,
  siteLabel,
} from "./forward-rules.ts";
import { type ClientTarget, request } from "./client.ts";

export { type Listen, parseListen } from "./forward-rules.ts";

/** A local client is read again once what it sent Bay is under RESUME_AT; reading pauses over PAUSE_AT. */
const PAUSE_AT = 1024 * 1024;
const RESUME_AT = 256 * 1024;
/** Bytes queued towards a side that takes nothing, before the forwarder gives up on it (1008). */
const HIGH_WATER = 16 * 1024 * 1024;
const OPEN_TIMEOUT_MS = 45_000;
/** Bun's words for a 101 that names no subprotocol after the client offered some. */
const NO_PROTOCOL_CHOSEN = /missing client protocol/i;

export interface Forwarder {
  /** Where a browser opens the sandbox's server (its own origin). */
  siteUrl: string;
  /** Where programs reach it. */
  url: string;
  stop(): void;
}

type Message = string | Uint8Array;
/** Bay's socket, with what it sent before the local client's socket opened. */
interface Upstream {
  ws: WebSocket;
  early: Message[];
  /** Polls Bay's socket while the local client is paused. */
  resumeTimer?: ReturnType<typeof setInterval>;
}
type Socket = ServerWebSocket<{ upstream: Upstream }>;

const toMessage = (data: unknown): Message => (typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer));

/** From the local client's open on, Bay's messages and close go to it. */
function relayFromBay(upstream: Upstream, local: Socket): void {
  const up = upstream.ws;
  const toLocal = (data: Message) => {
    if (local.getBufferedAmount() > HIGH_WATER) {
      up.close(1000);
      local.close(1008, "the client is not taking messages");
      return;
    }
    local.send(data);
  };
  for (const m of upstream.early.splice(0)) toLocal(m);
  up.onmessage = (e) => toLocal(toMessage(e.data));
  const closed = (code: number, reason: string) => {
    clearInterval(upstream.resumeTimer);
    local.close(code === 1005 || code === 1006 ? 1000 : code, reason);
  };
  up.onclose = (e) => closed(e.code, e.reason);
  if (up.readyState === WebSocket.CLOSED) closed(1000, "");
}

/** A local client's message for Bay; the client is not read while Bay's socket has too much waiting. */
function relayToBay(upstream: Upstream, local: Socket, data: Message): void {
  const up = upstream.ws;
  if (up.readyState !== WebSocket.OPEN) return;
  if (up.bufferedAmount > HIGH_WATER) {
    up.close(1000);
    local.close(1008, "the sandbox's server is not taking messages");
    return;
  }
  up.send(data);
  if (up.bufferedAmount <= PAUSE_AT || upstream.resumeTimer) return;
  local.pause();
  upstream.resumeTimer = setInterval(() => {
    if (up.readyState === WebSocket.OPEN && up.bufferedAmount > RESUME_AT) return;
    clearInterval(upstream.resumeTimer);
    upstream.resumeTimer = undefined;
    if (up.readyState === WebSocket.OPEN) local.resume();
  }, 5);
}

/**
 * A WebSocket to Bay, once open (its messages kept until the local client's opens);
 * null when Bay refused it (a client cannot read why). A 101 naming no subprotocol
 * after an offer fails Bun's client (a browser takes it): then once more without.
 */
function openUpstream(url: string, headers: Record<string, string>, protocols: string[]): Promise<Upstream | null> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, ...(protocols.length ? { protocols } : {}) } as unknown as string[]);
    ws.binaryType = "arraybuffer";
    const early: Message[] = [];
    let failure = "";
    const timer = setTimeout(() => ws.close(), OPEN_TIMEOUT_MS);
    ws.onmessage = (e) => early.push(toMessage(e.data));
    ws.onerror = (e) => {
      failure = (e as ErrorEvent).message ?? "";
    };
    ws.onopen = () => {
      clearTimeout(timer);
      resolve({ ws, early });
    };
    ws.onclose = () => {
      clearTimeout(timer);
      resolve(protocols.length > 0 && NO_PROTOCOL_CHOSEN.test(failure) ? openUpstream(url, headers, []) : null);
    };
  });
}

export async function startForwarder(target: ClientTarget, id: string, port: number, listen: Listen, io: CliIo): Promise<Forwarder> {
  const base = `/v1/sandboxes/${encodeURIComponent(id)}`;
  // Bay's own words for an unknown sandbox or bad credentials, before anything listens.
  await request(target, "GET", base);
  const portPath = `${base}/ports/${port}`;
  const label = siteLabel(id);
  const refuse = (status: number, message: string) => new Response(`bay sandbox forward: ${message}\n`, { status });

  const serve = async (req: Request, srv: Server<{ upstream: Upstream }>, local: URL): Promise<Response | undefined> => {
    const host = req.headers.get("host");
    const kind = hostKind(host, label);
    if (kind === null) return refuse(421, `this forwarder serves ${label}.localhost and addresses, not this host name`);
    if (
      fromOtherSite(req.headers.get("origin") ?? undefined, req.headers.get("sec-fetch-site") ?? undefined, host ?? undefined, new Set())
    ) {
      return refuse(403, "requests from another site's pages are not forwarded");
    }
    if (kind === "address" && loadsDocument(req.headers)) {
      // A page at an address would share its origin (and cookies) with other local apps: it gets the sandbox's own.
      return new Response(null, {
        status: 307,
        headers: { location: `http://${label}.localhost:${srv.port}${local.pathname}${local.search}` },
      });
    }
    const remote = remoteUrl(target, portPath, local);
    if (!remote) return refuse(400, "a path that leaves the sandbox's server is not forwarded");
    const headers = headersForBay(req.headers, target);
    if ((req.headers.get("upgrade") ?? "").toLowerCase() === "websocket") {
      const protocols = offeredProtocols(req.headers.get("sec-websocket-protocol"));
      if (!handshakeValid(req) || protocols === null) return refuse(400, "not a valid WebSocket handshake");
      remote.protocol = remote.protocol === "https:" ? "wss:" : "ws:";
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
      return refuse(502, `cannot reach Bay at ${target.url.origin}: ${errorMessage(e)}`);
    }
    const out = new Headers(res.headers);
    // Bay's sandbox CSP keeps a page from acting as Bay's origin; this origin is the sandbox's own.
    out.delete("content-security-policy");
    // Bay keeps a server's redirects under its port path; here the server is at the origin's root.
    for (const name of ["location", "content-location"]) {
      const value = out.get(name);
      if (value !== null) out.set(name, localLocation(value, target, portPath));
    }
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers: out });
  };

  const server: Server<{ upstream: Upstream }> = Bun.serve<{ upstream: Upstream }>({
    hostname: listen.hostname,
    port: listen.port,
    async fetch(req, srv) {
      let local: URL;
      try {
        local = new URL(req.url);
      } catch {
        return refuse(400, "not a request this forwarder understands");
      }
      try {
        return await serve(req, srv, local);
      } catch (e) {
        return refuse(400, `the request cannot be forwarded: ${errorMessage(e)}`);
      }
    },
    websocket: {
      maxPayloadLength: 1024 * 1024,
      open: (ws) => relayFromBay(ws.data.upstream, ws),
      message: (ws, data) => relayToBay(ws.data.upstream, ws, data),
      close: (ws, code, reason) => {
        const up = ws.data.upstream;
        clearInterval(up.resumeTimer);
        if (up.ws.readyState === WebSocket.OPEN || up.ws.readyState === WebSocket.CONNECTING) {
          up.ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason);
        }
      },
    },
  });
  const shown = listen.hostname.includes(":") ? `[${listen.hostname}]` : listen.hostname;
  const url = `http://${shown}:${server.port}/`;
  const siteUrl = `http://${label}.localhost:${server.port}/`;
  io.err(`bay: forwarding port ${port} of sandbox ${id}: open ${siteUrl} in a browser, or ${url} from programs (Ctrl-C to stop)`);
  if (!loopbackOnly(listen.hostname)) {
    io.err(
      `bay: warning: ${listen.hostname} is reachable from other machines, and what they send here goes to the sandbox with your credentials`,
    );
  }
  return { siteUrl, url, stop: () => void server.stop(true) };
}
