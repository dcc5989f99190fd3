/**
 * Turning a Ship response into Bay's response: only end-to-end content headers
 * are kept (hop-by-hop headers, Content-Length and anything credential-like are
 * dropped), and Bay's request id is set. The body is streamed through, except a
 * small one whose length Ship announced (an exec's JSON result): that is read
 * whole and sent as it is, which costs a third of a millisecond less per call
 * than piping it through a stream, and bounds what is held to SMALL_BODY_BYTES. An
 * answer that came over a call channel holds its status, type and body only: it is
 * sent as it is, with the request id added (channelAnswer).
 */
import type { Context } from "hono";
import type { CallContext } from "../domain/capability-router.ts";
import { plainLength } from "../runtime/bounded-answer.ts";
import { channelAnswer } from "../runtime/ship-channel.ts";
import { bunServer } from "./served.ts";

// cache-control and x-accel-buffering: an event stream must not be cached or buffered by a proxy on the way.
const KEEP = ["content-type", "content-disposition", "content-encoding", "last-modified", "etag", "cache-control", "x-accel-buffering"];

/** Bodies up to this size, with a Content-Length, are relayed as one buffer. */
export const SMALL_BODY_BYTES = 64 * 1024;

export function relay(c: Context, res: Response): Response | Promise<Response> {
  // A channel's answer carries nothing to drop (its status, type and body): relayed as it is.
  if (channelAnswer(res)) {
    res.headers.set("X-Request-Id", c.get("requestId"));
    return res;
  }
  return relayed(c, res);
}

/** An answer over HTTP: its content headers kept, its body read whole when small and announced, else streamed. */
async function relayed(c: Context, res: Response): Promise<Response> {
  const headers = new Headers();
  for (const name of KEEP) {
    const v = res.headers.get(name);
    if (v) headers.set(name, v);
  }
  headers.set("X-Request-Id", c.get("requestId"));
  const length = plainLength(res.headers);
  if (length !== null && length <= SMALL_BODY_BYTES) {
    return new Response(await res.arrayBuffer(), { status: res.status, headers });
  }
  return new Response(res.body, { status: res.status, headers });
}

/** True when the client asked for an event stream (`Accept: text/event-stream`): a streamed exec, a followed output. */
export const wantsEventStream = (c: Context): boolean => /\btext\/event-stream\b/i.test(c.req.header("accept") ?? "");

/** The domain's view of this request: owner, sandbox, request id, and a signal for a client that goes away. */
export function callContext(c: Context, sandboxId: string): CallContext {
  return { owner: c.get("owner"), sandboxId, requestId: c.get("requestId"), signal: c.req.raw.signal };
}

/**
 * A call whose file body Bun.serve may stream on by itself (a download): the
 * server (Hono's `env` under Bun.serve) tells when the answer is over, since its
 * `requestIP` of a request is null once that request is closed. Anywhere else
 * (app.request in tests, a Unix socket) the plain context: the body is then
 * pulled through JavaScript, as every other streamed answer.
 */
export function sentBodyContext(c: Context, sandboxId: string): CallContext {
  return { ...callContext(c, sandboxId), ...sentBody(c) };
}

/** The `signal` and `sent` of a download's call context (see sentBodyContext), for contexts built elsewhere. */
export function sentBody(c: Context): Pick<CallContext, "signal" | "sent"> {
  const server = bunServer(c);
  const req = c.req.raw;
  if (!server || server.requestIP(req) === null) return { signal: req.signal };
  const cut = new AbortController();
  return {
    signal: AbortSignal.any([req.signal, cut.signal]),
    sent: { over: () => server.requestIP(req) === null, cut: () => cut.abort() },
  };
}
