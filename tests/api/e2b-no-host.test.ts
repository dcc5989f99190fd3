/**
 * A request without Host (HTTP/1.0 allows it) is refused with 400 before any
 * route; under the E2B prefix the refusal is in E2B's body, as every E2B answer
 * is. Bun gives such a request a relative URL, whose path Hono misread, so the
 * refusal was in Bay's body. Over real HTTP (Bun.serve) and a raw socket.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createMemoryBay, type MemoryBay } from "./support/memory-bay.ts";

let t: MemoryBay;
let server: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  t = await createMemoryBay();
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: t.bay.app.fetch, websocket: t.bay.websocket });
});
afterAll(async () => {
  server.stop(true);
  await t.close();
});

/** The answer to `head` (a request without a body) on a new connection, as text. */
function rawRequest(head: string): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    void Bun.connect({
      hostname: "127.0.0.1",
      port: server.port!,
      socket: {
        open(s) {
          s.write(head);
        },
        data(_s, d) {
          text += new TextDecoder().decode(d);
        },
        close() {
          resolve(text);
        },
      },
    });
  });
}

const bodyOf = (text: string) => JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4));

describe("a request without Host", () => {
  test("under the E2B prefix: 400 in E2B's body", async () => {
    for (const target of ["/e2b/sandboxes/sandbox-x", "/e2b/v2/sandboxes?limit=1", "/e2b"]) {
      const text = await rawRequest(`GET ${target} HTTP/1.0\r\nX-Owner: alice\r\nConnection: close\r\n\r\n`);
      expect(text).toStartWith("HTTP/1.1 400");
      expect(bodyOf(text)).toEqual({ code: 400, message: "a Host header is required" });
    }
  });

  test("on Bay's own API: 400 in Bay's body", async () => {
    const text = await rawRequest("GET /v1/sandboxes HTTP/1.0\r\nX-Owner: alice\r\nConnection: close\r\n\r\n");
    expect(text).toStartWith("HTTP/1.1 400");
    expect(bodyOf(text).error.code).toBe("validation_error");
  });
});
