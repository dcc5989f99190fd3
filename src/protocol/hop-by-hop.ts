/**
 * Headers that belong to one connection and are never passed on by a relay
 * (RFC 9110 §7.6.1): Bay's and Ship's relays of a request for a server in the
 * sandbox, in both directions, drop them.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "trailers",
  "transfer-encoding",
  "upgrade",
  "expect",
]);

/** Whether `name` (lower case) is hop-by-hop in a message with these headers: always, or named by its Connection header. */
export function hopByHop(headers: Headers): (name: string) => boolean {
  const listed = new Set(
    (headers.get("connection") ?? "")
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
  return (name) => HOP_BY_HOP.has(name) || listed.has(name);
}
