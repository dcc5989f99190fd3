/**
 * The terminal's WebSocket is proved like every Ship answer: Bay sends the
 * derived bearer key and a nonce with the upgrade and takes the socket only
 * when its first frame proves the nonce under the session's secret. A listener
 * at a stale endpoint (no proof, a wrong one, or output first) never reaches a
 * client. Against small WebSocket servers on loopback.
 */
import { afterEach, expect, test } from "bun:test";
import { NONCE_HEADER, shipBearer, shipProof } from "../../src/protocol/ship/index.ts";
import { ShipWrongSessionError } from "../../src/bay/runtime/errors/ship-wrong-session-error.ts";
import { ShipClient } from "../../src/bay/runtime/ship-client.ts";

const SECRET = "t".repeat(43);
const target = (port: number) => ({ sessionId: "sess-1", endpoint: `http://127.0.0.1:${port}`, secret: SECRET });
let server: ReturnType<typeof Bun.serve> | null = null;
afterEach(() => {
  server?.stop(true);
  server = null;
});

/** A WebSocket server whose first frame is `first(nonce)`; records the upgrade's headers. */
function listener(first: (nonce: string) => string | Uint8Array | null) {
  const seen: Array<{ authorization: string | null; nonce: string | null }> = [];
  server = Bun.serve<{ nonce: string }>({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, srv) {
      const nonce = req.headers.get(NONCE_HEADER) ?? "";
      seen.push({ authorization: req.headers.get("authorization"), nonce });
      return srv.upgrade(req, { data: { nonce } }) ? undefined : new Response("no", { status: 400 });
    },
    websocket: {
      open(ws) {
        const frame = first(ws.data.nonce);
        if (frame !== null) ws.send(frame);
        ws.send(new TextEncoder().encode("$ "));
      },
      message() {},
    },
  });
  return { port: server.port!, seen };
}

test("a proved first frame: the socket is handed over, having sent the derived key and a fresh nonce", async () => {
  const { port, seen } = listener((nonce) => JSON.stringify({ type: "proof", proof: shipProof(SECRET, nonce) }));
  const ws = await new ShipClient().attachTerminal(target(port), "term-1");
  expect(ws.readyState).toBe(WebSocket.OPEN);
  expect(seen[0]!.authorization).toBe(`Bearer ${shipBearer(SECRET)}`);
  expect(seen[0]!.authorization).not.toContain(SECRET);
  expect(seen[0]!.nonce?.length).toBeGreaterThan(16);
  ws.close();
});

test("no proof, a wrong one, a proof of another secret, or output first: the socket is refused as another session's", async () => {
  const cases: Array<(nonce: string) => string | Uint8Array | null> = [
    () => null,
    () => JSON.stringify({ type: "proof", proof: "x".repeat(43) }),
    (nonce) => JSON.stringify({ type: "proof", proof: shipProof("u".repeat(43), nonce) }),
    (nonce) => JSON.stringify({ type: "proof", proof: shipProof(SECRET, `${nonce}x`) }),
    () => new TextEncoder().encode("login: "),
    () => "not json",
  ];
  for (const first of cases) {
    const { port } = listener(first);
    const err = await new ShipClient().attachTerminal(target(port), "term-1").catch((e) => e);
    expect(err).toBeInstanceOf(ShipWrongSessionError);
    server?.stop(true);
  }
});
