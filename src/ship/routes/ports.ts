/**
 * Requests for servers listening inside the sandbox (`/ports/{port}/{path}`):
 * sent on to 127.0.0.1:{port} from the container's own network, the answer
 * returned as the server gave it and marked `X-Ship-Upstream`, so Bay can tell a
 * server's 401 or 404 from Ship's own. Ship's credentials never reach the
 * server (it is user code), and nothing the server sends can pass for Ship's:
 * its X-Ship-* headers are dropped, and Ship's proof is added after it.
 */
import { type Context, Hono } from "hono";
import { hopByHop } from "../../protocol/hop-by-hop.ts";
import { pathAfter } from "../../protocol/path-after.ts";
import { NONCE_HEADER, shipOperations as ops, SUBPROTOCOLS_HEADER, UPSTREAM_HEADER } from "../../protocol/ship/index.ts";
import { ShipError } from "../errors.ts";
import { isUpgrade } from "../ws.ts";
import { openPortSocket } from "./port-socket.ts";

/** Ship's own credentials and the Host (it becomes the server's address). */
const NOT_SENT = new Set(["authorization", "x-bay-nonce", "host"]);

const PORT = /^[1-9][0-9]{0,4}$/;

/** The port named in the path, checked: 1-65535 and not one of Ship's own. */
function portOf(raw: string, own: ReadonlySet<number>): number {
  const port = PORT.test(raw) ? Number(raw) : 0;
  const refuse = (message: string) => new ShipError("validation_error", message, { details: { issues: [{ path: "port", message }] } });
  if (port < 1 || port > 65535) throw refuse(`port must be a number from 1 to 65535, got "${raw.slice(0, 16)}"`);
  if (own.has(port)) throw refuse(`port ${port} is the sandbox runtime's own`);
  return port;
}

/** ["", "ports", port, ...rest] */
const REST_AT = 3;

function requestHeaders(incoming: Headers, port: number): Headers {
  const hop = hopByHop(incoming);
  const out = new Headers();
  incoming.forEach((value, name) => {
    if (!hop(name) && !NOT_SENT.has(name)) out.append(name, value);
  });
  out.set("host", `127.0.0.1:${port}`);
  // The body is passed on as it comes: the server compresses only if the client asked.
  if (!out.has("accept-encoding")) out.set("accept-encoding", "identity");
  return out;
}

function answerHeaders(upstream: Headers, status: number): Headers {
  const hop = hopByHop(upstream);
  const out = new Headers();
  upstream.forEach((value, name) => {
    if (!hop(name) && !name.startsWith("x-ship-") && name !== "set-cookie") out.append(name, value);
  });
  // Set-Cookie is not a list header: each one is passed on as its own.
  for (const cookie of upstream.getSetCookie()) out.append("set-cookie", cookie);
  out.set(UPSTREAM_HEADER, String(status));
  return out;
}

/** The subprotocols a WebSocket client offered, in its order. */
const subprotocols = (headers: Headers): string[] =>
  (headers.get(SUBPROTOCOLS_HEADER) ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");

const refused = (e: unknown) => {
  const code = (e as { code?: string } | null)?.code;
  return code === "ConnectionRefused" || code === "ECONNREFUSED";
};

/** GET, POST, PUT, PATCH and DELETE (and HEAD, as GET's) on /ports/{port}/{path}. */
export function portRoutes(deps: { ownPorts: ReadonlySet<number>; prove: (nonce: string | null | undefined) => string | null }) {
  const app = new Hono();
  const handler = async (c: Context) => {
    const port = portOf(c.req.param("port") ?? "", deps.ownPorts);
    const req = c.req.raw;
    if (req.method === "GET" && isUpgrade(req)) {
      const nonce = req.headers.get(NONCE_HEADER);
      return openPortSocket(c, {
        port,
        rest: pathAfter(req.url, REST_AT),
        headers: requestHeaders(req.headers, port),
        protocols: subprotocols(req.headers),
        proof: deps.prove(nonce),
      });
    }
    const target = `http://127.0.0.1:${port}${pathAfter(req.url, REST_AT)}`;
    const hasBody = req.method !== "GET" && req.method !== "HEAD" && req.body !== null;
    let res: Response;
    try {
      res = await fetch(target, {
        method: req.method,
        headers: requestHeaders(req.headers, port),
        body: hasBody ? req.body : undefined,
        redirect: "manual",
        decompress: false,
        signal: req.signal,
        duplex: "half",
      } as RequestInit);
    } catch (e) {
      if (refused(e)) {
        throw new ShipError("conflict", `nothing in the sandbox accepts connections on port ${port}`, {
          details: { reason: "port_closed", port },
        });
      }
      throw new ShipError("upstream_error", `the server on port ${port} broke the connection before answering`, { cause: e });
    }
    if (res.status < 200 || res.status > 599) {
      await res.body?.cancel().catch(() => {});
      throw new ShipError("upstream_error", `the server on port ${port} answered an invalid status (${res.status})`);
    }
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers: answerHeaders(res.headers, res.status) });
  };
  // `{path}` (the rest of the path, slashes included) as a trailing wildcard.
  const path = ops.portGet.honoPath.replace("/:path", "/*");
  app.on(["GET", "POST", "PUT", "PATCH", "DELETE"], path, handler);
  return app;
}
