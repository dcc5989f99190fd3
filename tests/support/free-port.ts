/**
 * A free TCP port on 127.0.0.1, for a server a test starts itself (Bay, sqld,
 * a forwarder): bound with port 0 and released at once. Another process could
 * take it in between; on loopback in a test run that has not been seen.
 *
 * Linux hands `bind(0)` ports from a small pool (~14k), so two ports taken before
 * either is bound (two Bays started together) could be the same: a port handed out
 * recently by this process is not handed out again (probed anew instead).
 */
export function freePort(probe: () => number = bindZero): number {
  for (let i = 0; i < MAX_PROBES; i++) {
    const port = probe();
    if (recent.has(port)) continue;
    recent.add(port);
    // The oldest goes first (a Set keeps insertion order).
    if (recent.size > RECENT_PORTS) recent.delete(recent.values().next().value!);
    return port;
  }
  throw new Error(`no free port that this process did not hand out recently (${MAX_PROBES} probes)`);
}

/** How many of the ports this process handed out last are not handed out again. */
const RECENT_PORTS = 1024;
/** Probes before giving up (with 1024 of ~14k ports taken, one in 14 is a repeat). */
const MAX_PROBES = 64;
const recent = new Set<number>();

function bindZero(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}
