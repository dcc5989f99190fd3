/** A test Bay served over real HTTP on loopback (WebSockets and browsers need a server, not app.request). */
import http from "node:http";
import { TRANSPORT_MAX_HEADER_BYTES } from "../../../src/protocol/ship/constants.ts";
import type { TestBay } from "../../support/harness.ts";

export interface ServedBay {
  /** `127.0.0.1:port` */
  host: string;
  http: string;
  ws: string;
  stop(): Promise<void>;
}

export function serveBay(t: TestBay): ServedBay {
  // As src/bay/main.ts does: Bun's parser refuses heads only far above Bay's own limit, which answers in the error model.
  (http as { maxHeaderSize: number }).maxHeaderSize = TRANSPORT_MAX_HEADER_BYTES;
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: t.bay.app.fetch, websocket: t.bay.websocket, idleTimeout: 0 });
  const host = `127.0.0.1:${server.port}`;
  return { host, http: `http://${host}`, ws: `ws://${host}`, stop: () => server.stop(true) };
}
