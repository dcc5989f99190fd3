/**
 * Where a redirect from a server in a sandbox may take Bay's client. On Bay's own
 * origin (`/v1/sandboxes/{id}/ports/{port}/…`) a `Location` or `Content-Location`
 * naming the server's own origin — a relative reference, an absolute path (the server
 * sees itself at `/`), or an absolute URL on a host name the caller may know Bay by —
 * stays under that port, as an absolute path (what a reverse proxy's `proxy_redirect`
 * does). Passed on as the server wrote it, it could name another of Bay's routes, which
 * a client following redirects calls with its own credentials (review s88 M1: a DELETE
 * answered `307 Location: /v1/sandboxes/<B>` deleted sandbox B).
 *
 * Any other target is passed as WHATWG's serialisation of it, never as written: clients
 * parse odd forms differently (`/\host/…`, `http://a\@b/…`, `https:/path` are another
 * host to WHATWG and Bay's own to curl or `requests`, review s90 M1), and the serialised
 * URL reads the same to all of them. A value that is no URL is dropped.
 */

/** The origin the server sees itself on (it is called at `/`, whatever Bay's path). */
const SERVER = "http://server.invalid";
/** The path segments up to the port: ["", "v1", "sandboxes", id, "ports", port]. */
const PORT_AT = 5;

/** The host name (no port, lower case) in a Host-like value, or null. */
function hostname(value: string): string | null {
  try {
    return new URL(`http://${value.trim()}`).hostname;
  } catch {
    return null;
  }
}

/**
 * Every host name the caller may know Bay by: the URL it asked for, what a proxy in front
 * says it was asked for (X-Forwarded-Host, Forwarded's host=), the Origin and Referer, and
 * Bay's configured names (server.allowed_hosts, server.host). More names only mean more
 * redirects kept under the port: the safe direction.
 */
export function callerHosts(url: string, headers: Headers, configured: readonly string[] = []): Set<string> {
  const hosts = new Set<string>([new URL(url).hostname]);
  const add = (value: string | null | undefined) => {
    const h = value ? hostname(value) : null;
    if (h) hosts.add(h);
  };
  for (const h of (headers.get("x-forwarded-host") ?? "").split(",")) add(h);
  for (const m of (headers.get("forwarded") ?? "").matchAll(/host="?([^";,]+)/gi)) add(m[1]);
  for (const name of ["origin", "referer"]) {
    try {
      hosts.add(new URL(headers.get(name) ?? "").hostname);
    } catch {
      // Not a URL: names no host.
    }
  }
  for (const h of configured) add(h);
  return hosts;
}

/**
 * `value` as Bay's client gets it: for the answer to `clientUrl` (the client's request,
 * whose path after the port the server got as `rest`), or null to drop it.
 */
export function portLocation(
  value: string,
  clientUrl: string,
  rest: string,
  hosts: ReadonlySet<string>,
  bayRoute: (path: string) => boolean = () => false,
): string | null {
  let target: URL;
  try {
    target = new URL(value, SERVER + rest);
  } catch {
    return null;
  }
  if (target.origin !== SERVER && !hosts.has(target.hostname)) {
    // A path of Bay's own credentialed routes on a host Bay does not know as its own may still be
    // its public name (a proxy in front that rewrites Host and says nothing): dropped (review s91).
    return bayRoute(target.pathname) ? null : target.href;
  }
  const port = new URL(clientUrl).pathname
    .split("/")
    .slice(0, PORT_AT + 1)
    .join("/");
  return port + target.pathname + target.search + target.hash;
}

/**
 * Whether a URL path is one of Bay's own routes that take credentials, by their fixed
 * prefixes (`/v1/sandboxes`, `/mcp`, the E2B prefix, …), compared as a router would see
 * it: percent-decoded, and in any case.
 */
export function bayRoutes(prefixes: readonly string[]): (path: string) => boolean {
  const lower = [...new Set(prefixes.map((p) => p.toLowerCase().replace(/\/+$/, "")))].filter((p) => p !== "");
  return (path) => {
    let decoded = path;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      // Not decodable: judged as it is.
    }
    const p = decoded.toLowerCase().replace(/\/{2,}/g, "/");
    return lower.some((prefix) => p === prefix || p.startsWith(`${prefix}/`));
  };
}
