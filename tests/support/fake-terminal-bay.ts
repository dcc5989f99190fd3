/**
 * Fake Bays for `bay sandbox shell` tests: sandbox `sb-1` and its terminal, as a
 * Bun server (the WebSocket's handlers are the test's), or answered by hand on a
 * raw socket (for Bays that stop answering or reading after the handshake).
 */
import { createHash } from "node:crypto";

export const FAKE_SANDBOX = { id: "sb-1", status: "running" };

type Socket = import("bun").ServerWebSocket<unknown>;

/** A Bay whose `sb-1` terminal runs `open` on each WebSocket (and `drain` when it drains); Bun answers pings itself. */
export function serveTerminalBay(open: (ws: Socket) => void, drain?: (ws: Socket) => void): import("bun").Server<unknown> {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, srv) {
      const path = new URL(req.url).pathname;
      if (path === "/v1/sandboxes/sb-1/terminal")
        return srv.upgrade(req, { data: undefined }) ? undefined : new Response("no", { status: 400 });
      if (path === "/v1/sandboxes/sb-1") return Response.json(FAKE_SANDBOX);
      return Response.json({ error: { code: "not_found", message: "no" } }, { status: 404 });
    },
    websocket: { open, message() {}, drain },
  });
}

/**
 * What a hand-made Bay writes for a request whose head is `head`: the terminal's 101
 * (`upgrade`), or `sb-1` with the connection closed; null while the head is incomplete.
 */
export function answerByHand(head: string): { upgrade: string } | { close: string } | null {
  if (!head.includes("\r\n\r\n")) return null;
  const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1];
  if (head.startsWith("GET /v1/sandboxes/sb-1/terminal") && key) {
    const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
    return {
      upgrade: `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    };
  }
  const body = JSON.stringify(FAKE_SANDBOX);
  return {
    close: `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
  };
}
