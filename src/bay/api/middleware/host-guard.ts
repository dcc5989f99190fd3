/**
 * Browser guard for anonymous mode, where reaching Bay is enough to act as an
 * owner. Two ways a web page in the user's browser could reach a local Bay:
 *
 * * DNS rebinding: the page's own host name resolves to Bay's address, so its
 *   requests carry that name in Host. Only the configured Host names (port
 *   ignored) are served.
 * * A plain cross-site request to an allowed Host (`http://127.0.0.1:8000`):
 *   "simple" requests (`mode: "no-cors"`, no custom header) need no CORS
 *   preflight, so their side effects happen even though the page cannot read the
 *   answer. The browser says where they come from: `Origin` (every POST) and
 *   `Sec-Fetch-Site` (every request of current browsers). A request from another
 *   origin is served only when that origin is in `server.cors_origins`; Bay's own
 *   pages (same origin) and clients that are not browsers (neither header) are.
 *
 * A request that carries its own credential (a terminal ticket a page got from
 * its backend) is not refused as cross-site.
 *
 * Anything refused is 403 `forbidden` in the error model.
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

/** Whether `origin` (an Origin header) names the origin the request was sent to (its Host). */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    const u = new URL(origin);
    return (u.protocol === "http:" || u.protocol === "https:") && u.host === host.trim().toLowerCase();
  } catch {
    // "null" (sandboxed frames, file: pages) and anything malformed.
    return false;
  }
}

/** Whether a browser sent this request from a page of another origin not configured for CORS. */
export function fromOtherSite(
  origin: string | undefined,
  fetchSite: string | undefined,
  host: string | undefined,
  trusted: ReadonlySet<string>,
): boolean {
  if (origin !== undefined) return !trusted.has(origin) && !sameOrigin(origin, host);
  return fetchSite !== undefined && fetchSite !== "same-origin" && fetchSite !== "none";
}

export interface HostGuardOptions {
  /**
   * Requests that carry a credential of their own, which no other site's page can
   * have (a terminal ticket): they are not refused as cross-site, since their
   * authority is the credential, not the reach of Bay. Host is still checked.
   */
  carriesCredential?: (req: Request) => boolean;
}

export function hostGuard(allowed: readonly string[], corsOrigins: readonly string[] = [], opts: HostGuardOptions = {}): MiddlewareHandler {
  const names = new Set(allowed.map((h) => h.toLowerCase()));
  const trusted = new Set(corsOrigins);
  return async function bayHostGuard(c, next) {
    const host = c.req.header("host");
    if (host !== undefined && !names.has(hostName(host))) {
      throw new BayError("forbidden", "this Host is not served in anonymous mode; add it to server.allowed_hosts", {
        details: { reason: "host_not_allowed" },
      });
    }
    if (fromOtherSite(c.req.header("origin"), c.req.header("sec-fetch-site"), host, trusted) && !opts.carriesCredential?.(c.req.raw)) {
      throw new BayError(
        "forbidden",
        "requests from another site's pages are not served in anonymous mode; add the origin to server.cors_origins",
        { details: { reason: "cross_site" } },
      );
    }
    return next();
  };
}
