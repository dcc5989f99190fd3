/**
 * Where a redirect from a server in a sandbox may take Bay's client. On Bay's own
 * origin (`/v1/sandboxes/{id}/ports/{port}/…`) a `Location` or `Content-Location`
 * naming the server's own origin — a relative reference, an absolute path (the server
 * sees itself at `/`), or an absolute URL on a host the caller called Bay by — stays
 * under that port, written relative to the URL the client asked for (what a reverse
 * proxy's `proxy_redirect` does). Passed on as the server wrote it, it could name
 * another of Bay's routes, which a client following redirects calls with its own
 * credentials (review s88 M1: a DELETE answered `307 Location: /v1/sandboxes/<B>`
 * deleted sandbox B). A target on another origin passes as it is; one that is no URL
 * is dropped.
 */

/** The origin the server sees itself on (it is called at `/`, whatever Bay's path). */
const SERVER = "http://server.invalid";
/** The path segments up to the port: ["", "v1", "sandboxes", id, "ports", port]. */
const PORT_AT = 5;

/** The hosts the caller named Bay by: the URL it asked for, and its Origin and Referer. */
export function callerHosts(url: string, headers: Headers): string[] {
  const hosts = [new URL(url).host];
  for (const name of ["origin", "referer"]) {
    const value = headers.get(name);
    if (!value) continue;
    try {
      hosts.push(new URL(value).host);
    } catch {
      // Not a URL: names no host.
    }
  }
  return hosts.map((h) => h.toLowerCase());
}

/**
 * `value` as Bay's client gets it: for the answer to `clientUrl` (the client's request,
 * whose path after the port the server got as `rest`), or null to drop it.
 */
export function portLocation(value: string, clientUrl: string, rest: string, hosts: readonly string[]): string | null {
  let target: URL;
  try {
    target = new URL(value.trim(), SERVER + rest);
  } catch {
    return null;
  }
  if (target.origin !== SERVER && !hosts.includes(target.host.toLowerCase())) return value;
  const segments = new URL(clientUrl).pathname.split("/");
  const below = segments.length - PORT_AT - 1;
  // From the directory of the client's URL up to the port's root ("./" first: a first segment
  // with a colon in it would otherwise read as a scheme).
  const root = below <= 0 ? `./${segments[PORT_AT]}/` : below === 1 ? "./" : "../".repeat(below - 1);
  return root + target.pathname.slice(1) + target.search + target.hash;
}
