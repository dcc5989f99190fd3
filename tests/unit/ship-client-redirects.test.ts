/**
 * Bay's Ship client never follows a redirect: whatever answers at a session's
 * endpoint (a Ship, something squatting its port, a server in the sandbox whose
 * answer a Ship relays) cannot make Bay send a request anywhere else. Against
 * small loopback servers playing a Ship and the place it points to.
 */
import { afterEach, expect, test } from "bun:test";
import { NONCE_HEADER, PROOF_HEADER, shipProof } from "../../src/protocol/ship/index.ts";
import { ShipClient, UPSTREAM_HEADER } from "../../src/bay/runtime/ship-client.ts";

const SECRET = "s".repeat(43);
const target = (port: number) => ({ sessionId: "sess-redirect", endpoint: `http://127.0.0.1:${port}`, secret: SECRET });
const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

function serve(fetch: (req: Request) => Response) {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch });
  stops.push(() => server.stop(true));
  return server.port!;
}

/** Where the redirects point: counts what reaches it. */
function elsewhere() {
  const heard: string[] = [];
  const port = serve((req) => {
    heard.push(`${req.method} ${new URL(req.url).pathname}`);
    return new Response("you should not be here");
  });
  return { port, heard };
}

const proved = (req: Request, res: Response) => {
  res.headers.set(PROOF_HEADER, shipProof(SECRET, req.headers.get(NONCE_HEADER) ?? ""));
  return res;
};

test("a redirect from whatever answers at the endpoint, proved or not, sends nothing elsewhere", async () => {
  const other = elsewhere();
  for (const status of [301, 302, 303, 307, 308]) {
    for (const prove of [true, false]) {
      const port = serve((req) => {
        const res = new Response(null, { status, headers: { location: `http://127.0.0.1:${other.port}/v1/sandboxes` } });
        return prove ? proved(req, res) : res;
      });
      const client = new ShipClient();
      await expect(client.meta(target(port))).rejects.toThrow();
      await expect(client.execShell(target(port), { command: "true", timeout: 5, background: false, stdin: false })).rejects.toThrow();
      expect(await client.isHealthy(target(port).endpoint)).toBe(false);
    }
  }
  expect(other.heard).toEqual([]);
});

test("a server's redirect relayed by a Ship comes back as the server's answer, not followed", async () => {
  const other = elsewhere();
  const port = serve((req) =>
    proved(req, new Response(null, { status: 302, headers: { location: `http://127.0.0.1:${other.port}/`, [UPSTREAM_HEADER]: "302" } })),
  );
  const res = await new ShipClient().port(target(port), { port: 8080, method: "POST", rest: "/x", headers: new Headers(), body: "b" });
  expect([res.status, res.headers.get("location")]).toEqual([302, `http://127.0.0.1:${other.port}/`]);
  expect(other.heard).toEqual([]);
});
