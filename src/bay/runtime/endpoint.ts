/**
 * A session's endpoint as stored: `http://host:port` (a published port or a
 * container address) or `unix:<path>` (Ship's socket on the host, see
 * drivers/docker/runtime-socket.ts). How to send a request or open a WebSocket there.
 */
const UNIX = "unix:";

/** The URL and fetch options for `path` (with its query) at `endpoint`. */
export function shipRequestTarget(endpoint: string, path: string): { url: string; unix?: string } {
  if (endpoint.startsWith(UNIX)) return { url: `http://ship${path}`, unix: endpoint.slice(UNIX.length) };
  return { url: `${endpoint}${path}` };
}

/** The WebSocket URL of `path` at `endpoint` (Bun's client takes `ws+unix://<socket>:<path>`). */
export function shipWebSocketUrl(endpoint: string, path: string): string {
  if (endpoint.startsWith(UNIX)) return `ws+unix://${endpoint.slice(UNIX.length)}:${path}`;
  return `${endpoint.replace(/^http/, "ws")}${path}`;
}
