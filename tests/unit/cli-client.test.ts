/**
 * The client commands' request helper (src/bay/cli/client.ts) against real
 * servers: credentials never follow a redirect to another server, and a
 * server's words never reach the user's terminal as control characters.
 */
import { afterEach, expect, test } from "bun:test";
import { ClientError, clientTarget, printable, request } from "../../src/bay/cli/client.ts";

const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

test.each([301, 302, 303, 307, 308])("a %d to another server is refused, and that server never hears from us", async (status) => {
  const seen: Array<{ authorization: string | null; owner: string | null }> = [];
  const elsewhere = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      seen.push({ authorization: req.headers.get("authorization"), owner: req.headers.get("x-owner") });
      return Response.json({ id: "x" });
    },
  });
  stops.push(() => elsewhere.stop(true));
  const bay = Bay(status, `http://localhost:${elsewhere.port}/v1/sandboxes/x`);
  for (const [token, owner] of [
    ["secret-token-value", undefined],
    [undefined, "alice"],
  ] as const) {
    const target = clientTarget({}, `http://127.0.0.1:${bay.port}`, token, owner);
    const err = (await request(target, "GET", "/v1/sandboxes/x").catch((e) => e)) as ClientError;
    expect(err).toBeInstanceOf(ClientError);
    expect(err.code).toBe("redirect");
    expect(err.message).toContain(`answered a redirect (${status})`);
    expect(err.message).toContain("--url");
  }
  expect(seen).toEqual([]);
});

function Bay(status: number, location: string) {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(null, { status, headers: { location } }) });
  stops.push(() => server.stop(true));
  return server;
}

test("an error's words from the server are shown without control characters", async () => {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => Response.json({ error: { code: "not_found", message: "\u001b[2J\u001b[31mFAKE PROMPT $ \u0007" } }, { status: 404 }),
  });
  stops.push(() => server.stop(true));
  const err = (await request(clientTarget({}, `http://127.0.0.1:${server.port}`), "GET", "/x").catch((e) => e)) as ClientError;
  expect(err.message).toBe("not_found: ?[2J?[31mFAKE PROMPT $ ?");
});

test("printable keeps text, replaces C0, DEL and C1 controls, and bounds the length", () => {
  expect(printable("sandbox not found: ü-1")).toBe("sandbox not found: ü-1");
  expect(printable("a\u0000b\nc\u007fd\u009be")).toBe("a?b?c?d?e");
  expect(printable("x".repeat(10_000))).toHaveLength(500);
});
