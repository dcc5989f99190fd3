/**
 * The fake sandbox's servers, for `/ports/{port}/{path}` (src/ship/routes/ports.ts):
 * an echo server listens on every port from 1024 up, nothing below. It answers
 * what it received (method, path with query, headers, body size) as JSON, with
 * the status `?status=` asks for (default 200) and each `?header=Name:value` as
 * a header of its answer, marked as a server's answer (a status outside 200-599 is
 * Ship's upstream_error, as a real server's would be). Port 1431 stands for a
 * request Ship's HTTP server refuses by itself before Ship's code sees it (Bun's
 * parser answers a head past its limit with a bare 431: no proof, no body).
 */
import { pathAfter } from "../../../protocol/path-after.ts";
import { UPSTREAM_HEADER } from "../../../protocol/ship/constants.ts";
import { BayError } from "../../errors.ts";

const PORT = /^[1-9][0-9]{0,4}$/;

/** The port whose requests the fake's HTTP server refuses itself (see above). */
export const REFUSED_BY_SERVER_PORT = 1431;

/** Whether the fake's HTTP server refuses `url` before any route sees it. */
export const refusedByServer = (url: URL): boolean => url.pathname.startsWith(`/ports/${REFUSED_BY_SERVER_PORT}/`);

/** The answer for a `/ports/…` request, or null for any other path. */
export async function fakePortAnswer(req: Request, url: URL, ownPort: number): Promise<Response | null> {
  const segments = url.pathname.split("/"); // ["", "ports", port, ...rest]
  if (segments[1] !== "ports" || segments.length < 4) return null;
  const rest = pathAfter(url.href, 3);
  if (!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].includes(req.method)) return null;
  const raw = segments[2]!;
  const port = PORT.test(raw) ? Number(raw) : 0;
  if (port < 1 || port > 65535 || port === ownPort) {
    throw new BayError("validation_error", `port must be a number from 1 to 65535 and not the runtime's own, got "${raw.slice(0, 16)}"`);
  }
  if (port < 1024) {
    throw new BayError("conflict", `nothing in the sandbox accepts connections on port ${port}`, {
      details: { reason: "port_closed", port },
    });
  }
  const body = req.method === "GET" || req.method === "HEAD" ? 0 : (await req.arrayBuffer()).byteLength;
  const status = Number(url.searchParams.get("status") ?? 200);
  if (!(status >= 200 && status <= 599)) {
    // As Ship does: a status no HTTP answer may carry is the server's failure, Ship's upstream_error.
    return Response.json(
      { error: { code: "upstream_error", message: `the server on port ${port} answered an invalid status (${status})`, details: {} } },
      { status: 502 },
    );
  }
  const headers: Record<string, string> = {};
  req.headers.forEach((v, k) => {
    // As Ship does: the session's own Authorization and Bay's nonce are Ship's, never the server's.
    if (k !== "authorization" && k !== "x-bay-nonce") headers[k] = v;
  });
  const answer = new Headers();
  for (const h of url.searchParams.getAll("header")) {
    const at = h.indexOf(":");
    // As Ship does: the server's own X-Ship-* headers never pass; the mark is Ship's.
    if (at > 0 && !h.toLowerCase().startsWith("x-ship-")) answer.append(h.slice(0, at), h.slice(at + 1));
  }
  answer.set(UPSTREAM_HEADER, String(status));
  return Response.json({ port, method: req.method, path: rest, headers, body_bytes: body }, { status, headers: answer });
}
