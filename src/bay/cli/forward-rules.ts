/**
 * The rules of `bay sandbox forward` (forward.ts), kept apart from its server:
 * which Host names it serves, the origin a browser gets for a sandbox, the URL
 * at Bay a local request goes to, and which of its headers go with it.
 */
import { createHash } from "node:crypto";
import { forwardedHeaders, subprotocols } from "../domain/sandbox-ports.ts";
import { type ClientTarget, endpoint } from "./client.ts";

export interface Listen {
  hostname: string;
  port: number;
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

/** Whether the listener is reachable from this machine only. */
export const loopbackOnly = (hostname: string): boolean => hostname === "localhost" || hostname === "::1" || /^127\./.test(hostname);

/**
 * The sandbox's own browser origin is `http://{label}.localhost:{port}`: browsers
 * send `*.localhost` to this machine and keep its cookies, storage and service
 * workers apart from every other local app's (cookies ignore ports) and from
 * other sandboxes'. The label is the id when it is a host name label.
 */
export function siteLabel(id: string): string {
  const lower = id.toLowerCase();
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(lower) ? lower : `s-${createHash("sha256").update(id).digest("hex").slice(0, 16)}`;
}

/**
 * What a Host header names: this machine by address (or as `localhost`), the
 * sandbox's own site (`{label}.localhost`), or anything else (null: a domain name
 * another site could point here, as a DNS-rebinding page sends).
 */
export function hostKind(host: string | null, label: string): "address" | "site" | null {
  if (host === null) return null;
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end > 1 && /^[0-9a-f:.]+$/.test(h.slice(1, end)) && /^(:\d*)?$/.test(h.slice(end + 1)) ? "address" : null;
  }
  const name = h.replace(/:\d*$/, "");
  if (name === "localhost" || /^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return "address";
  return name === `${label}.localhost` ? "site" : null;
}

/** Whether a browser is loading a document (a page or a frame): it must get the sandbox's own origin. */
export function loadsDocument(headers: Headers): boolean {
  const dest = headers.get("sec-fetch-dest") ?? "";
  return headers.get("sec-fetch-mode") === "navigate" || ["document", "iframe", "frame", "embed", "object"].includes(dest);
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

/** What says where a browser request comes from: checked by the forwarder, never sent on (Bay would read it as the forwarder's). */
const BROWSER_CONTEXT = ["origin", "referer", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "sec-fetch-user"];
/** A WebSocket handshake's own headers: the forwarder's client makes its own. */
const HANDSHAKE = ["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"];

/**
 * The headers a local request is sent to Bay with: Bay's own rule for what may
 * reach a server (no credentials, cookies or network context of the page's), less
 * the browser's context and the handshake's own, plus the caller's credentials.
 */
export function headersForBay(local: Headers, target: ClientTarget): Record<string, string> {
  const sent = forwardedHeaders(local);
  for (const name of [...BROWSER_CONTEXT, ...HANDSHAKE]) sent.delete(name);
  const out: Record<string, string> = {};
  sent.forEach((value, name) => {
    out[name] = value;
  });
  return { ...out, ...target.headers };
}

/** The subprotocols a local WebSocket client offered (Bay's own rule, `subprotocols`); null when the list is malformed. */
export function offeredProtocols(header: string | null): string[] | null {
  try {
    return subprotocols(header);
  } catch {
    return null;
  }
}

/**
 * A `Location` or `Content-Location` from Bay as the local origin serves it: Bay keeps
 * a server's redirects under its port (`…/v1/sandboxes/ID/ports/PORT/path`), which is
 * `/path` here. Anything else (another site) is passed as it is.
 */
export function localLocation(value: string, target: ClientTarget, portPath: string): string {
  let path = value;
  if (/^[a-z][a-z0-9+.-]*:/i.test(value) || value.startsWith("//")) {
    // An absolute URL: Bay's own origin only.
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return value;
    }
    if (url.origin !== target.url.origin) return value;
    path = url.pathname + url.search + url.hash;
  } else if (!value.startsWith("/")) return value;
  // Under BAY_URL's path prefix (as the client sent it), or without it (a proxy in front that strips it).
  for (const root of new Set([endpoint(target, portPath).pathname, portPath])) {
    if (path === root) return "/";
    if (path.startsWith(root) && "/?#".includes(path.charAt(root.length))) {
      const rest = path.slice(root.length);
      return rest.startsWith("/") ? rest : `/${rest}`;
    }
  }
  return value;
}
