/**
 * An id Bay puts in a Ship path is one segment: "." or ".." would be resolved away by
 * any URL parser (`/contexts/../restart` is `POST /restart`), so Bay answers them
 * not_found itself and sends nothing (review s59). Against a loopback server playing
 * a Ship that records what reaches it.
 */
import { afterEach, expect, test } from "bun:test";
import { NONCE_HEADER, PROOF_HEADER, shipProof } from "../../src/protocol/ship/index.ts";
import { ShipClient } from "../../src/bay/runtime/ship-client.ts";
import { BayError } from "../../src/bay/errors.ts";

const SECRET = "s".repeat(43);
const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

function ship() {
  const heard: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      heard.push(`${req.method} ${new URL(req.url).pathname}`);
      const res = Response.json({ error: { code: "not_found", message: "no such thing", details: {} } }, { status: 404 });
      res.headers.set(PROOF_HEADER, shipProof(SECRET, req.headers.get(NONCE_HEADER) ?? ""));
      return res;
    },
  });
  stops.push(() => server.stop(true));
  return { target: { sessionId: "sess-dots", endpoint: `http://127.0.0.1:${server.port}`, secret: SECRET }, heard };
}

test('a context, process or terminal id "." or ".." is not_found without a request; any other id goes as one segment', async () => {
  const { target, heard } = ship();
  const client = new ShipClient();
  for (const id of [".", ".."]) {
    for (const call of [
      () => client.getContext(target, id),
      () => client.deleteContext(target, id),
      () => client.restartContext(target, id),
      () => client.getProcess(target, id),
      () => client.killProcess(target, id),
      () => client.attachTerminal(target, id),
    ]) {
      const err = await call().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BayError);
      expect((err as BayError).code).toBe("not_found");
      expect((err as BayError).message).toContain(id);
    }
  }
  expect(heard).toEqual([]);
  // Dots inside an id, or an escaped one, stay in their segment.
  for (const id of ["...", ".a", "%2e%2e", "a/.."]) await client.getContext(target, id).catch(() => {});
  expect(heard).toEqual(["GET /contexts/...", "GET /contexts/.a", "GET /contexts/%252e%252e", "GET /contexts/a%2F.."]);
});
