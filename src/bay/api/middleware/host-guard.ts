/**
 * DNS-rebinding guard for anonymous mode: a web page can make a browser send
 * requests to a local Bay under a host name the page controls, and anonymous
 * mode would serve them. Only the configured Host names (port ignored) are
 * served; anything else is 403 `forbidden` in the error model.
 */
import type { MiddlewareHandler } from "hono";
import { BayError } from "../../errors.ts";

/** The host name of a Host header, without its port (`[::1]:8000` → `[::1]`). */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.lastIndexOf(":");
  return colon >= 0 ? h.slice(0, colon) : h;
}

export function hostGuard(allowed: readonly string[]): MiddlewareHandler {
  const names = new Set(allowed.map((h) => h.toLowerCase()));
  return async function bayHostGuard(c, next) {
    const host = c.req.header("host");
    if (host !== undefined && !names.has(hostName(host))) {
      throw new BayError("forbidden", "this Host is not served in anonymous mode; add it to server.allowed_hosts", {
        details: { reason: "host_not_allowed" },
      });
    }
    return next();
  };
}
