/**
 * A free TCP port on 127.0.0.1, for a server a test starts itself (Bay, sqld,
 * a forwarder): bound with port 0 and released at once. Another process could
 * take it in between; on loopback in a test run that has not been seen.
 */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}
