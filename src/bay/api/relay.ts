/**
 * Turning a Ship response into Bay's response: the body is streamed through,
 * only end-to-end content headers are kept (hop-by-hop headers, Content-Length
 * and anything credential-like are dropped), and Bay's request id is set.
 */
import type { Context } from "hono";

const KEEP = ["content-type", "content-disposition", "content-encoding", "last-modified", "etag"];

export function relay(c: Context, res: Response): Response {
  const headers = new Headers();
  for (const name of KEEP) {
    const v = res.headers.get(name);
    if (v) headers.set(name, v);
  }
  headers.set("X-Request-Id", c.get("requestId"));
  return new Response(res.body, { status: res.status, headers });
}

export const JSON_HEADERS = (): Headers => new Headers({ "content-type": "application/json" });

/** Ship path with an encoded `path` query. */
export const withPath = (shipPath: string, path: string): string => `${shipPath}?path=${encodeURIComponent(path)}`;

/** Deadline for a call to the Ship: the exec timeout plus room for transport. */
export const execDeadlineMs = (timeoutSeconds: number): number => (timeoutSeconds + 15) * 1000;
