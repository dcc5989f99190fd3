/**
 * The TypeScript client's own parsing and URLs, against a scripted server (what Bay
 * never answers, so the real-Bay tests cannot show it): ids and port paths that would
 * reach another route, event streams cut anywhere and with any line end, a JSON answer
 * to a streamed call, a proxy's HTML page, data that is not JSON.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { BayRequestError, createBayClient, type ExecEvent, execEvents } from "../src/index.ts";

let answer: () => Response = () => new Response("{}", { headers: { "content-type": "application/json" } });
const seen: string[] = [];
const server = Bun.serve({
  port: 0,
  fetch(req) {
    seen.push(new URL(req.url).pathname);
    return answer();
  },
});
afterAll(() => server.stop(true));
const client = createBayClient({ baseUrl: `http://127.0.0.1:${server.port}`, token: "t" });

/** A text/event-stream body sent `size` bytes at a time. */
function sse(text: string, size: number): Response {
  const bytes = new TextEncoder().encode(text);
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.length; i += size) c.enqueue(bytes.slice(i, i + size));
      c.close();
    },
  });
  return new Response(stream, { headers: { "content-type": "text/event-stream" } });
}

const collect = (route: "python" | "shell" = "python") =>
  Array.fromAsync(execEvents(client, "sb-1", route, { code: "1", command: "x" } as never));

describe("URLs", () => {
  test("an id that is empty, . or .. is refused before anything is sent", async () => {
    seen.length = 0;
    for (const id of ["", ".", ".."]) {
      await expect(client.GET("/v1/sandboxes/{id}", { params: { path: { id } } })).rejects.toBeInstanceOf(TypeError);
    }
    const port = (path: string, portValue: unknown = "8080") =>
      client.GET("/v1/sandboxes/{id}/ports/{port}/{path}", { params: { path: { id: "sb-1", port: portValue as string, path } } });
    for (const path of ["..", "../../x", "a/./b", "a/.."]) await expect(port(path)).rejects.toBeInstanceOf(TypeError);
    await expect(port("x", "..")).rejects.toBeInstanceOf(TypeError);
    await port("api/v1/a b?c#d");
    await port("");
    await client.GET("/v1/sandboxes/{id}", { params: { path: { id: "a/b?c" } } });
    expect(seen).toEqual([
      "/v1/sandboxes/sb-1/ports/8080/api/v1/a%20b%3Fc%23d",
      "/v1/sandboxes/sb-1/ports/8080/",
      "/v1/sandboxes/a%2Fb%3Fc",
    ]);
  });
});

describe("execEvents", () => {
  const stream = 'event: stdout\r\ndata: {"text": "a"}\r\n\r\n: ping\n\nevent: result\rdata:{"ok":\rdata: true}\r\r';
  const want: ExecEvent[] = [
    { event: "stdout", data: { text: "a" } },
    { event: "result", data: { ok: true } as never },
  ];

  test("events are the same however the stream is cut, with CRLF, LF or CR line ends", async () => {
    for (let size = 1; size <= stream.length; size++) {
      answer = () => sse(stream, size);
      expect([size, await collect()]).toEqual([size, want]);
    }
  });

  test("a JSON answer (a background command) is one result event", async () => {
    answer = () => Response.json({ success: true, process_id: "proc-1" });
    expect(await collect("shell")).toEqual([{ event: "result", data: { success: true, process_id: "proc-1" } as never }]);
  });

  test("what is not Bay's answer throws BayRequestError: a proxy's page, a stranger's JSON, data that is not JSON, another content type", async () => {
    const cases: Array<[string, () => Response, number, string]> = [
      [
        "Bay's own refusal",
        () => Response.json({ error: { code: "not_found", message: "no", details: {}, request_id: "r" } }, { status: 404 }),
        404,
        "not_found",
      ],
      [
        "an HTML 502",
        () => new Response("<html>bad gateway</html>", { status: 502, headers: { "content-type": "text/html" } }),
        502,
        "bad_answer",
      ],
      ["JSON without error", () => Response.json({ message: "slow down" }, { status: 429 }), 429, "bad_answer"],
      ["data that is not JSON", () => sse("data: nope\n\n", 4), 200, "bad_answer"],
      ["a text/html 200", () => new Response("<html></html>", { headers: { "content-type": "text/html" } }), 200, "bad_answer"],
    ];
    for (const [what, respond, status, code] of cases) {
      answer = respond;
      const e = await collect().catch((x) => x);
      expect([what, e instanceof BayRequestError, e.status, e.body?.error?.code]).toEqual([what, true, status, code]);
    }
  });
});

test("a redirect (a server in a sandbox answering through …/ports/…) is the answer: never followed with the client's credentials", async () => {
  seen.length = 0;
  answer = () => new Response(null, { status: 307, headers: { location: "/v1/sandboxes/sandbox-b" } });
  const res = await client.DELETE("/v1/sandboxes/{id}/ports/{port}/{path}", {
    params: { path: { id: "sandbox-a", port: "9001", path: "items/1" } },
  });
  expect(res.response.status).toBe(307);
  expect(res.response.headers.get("location")).toBe("/v1/sandboxes/sandbox-b");
  expect(seen).toEqual(["/v1/sandboxes/sandbox-a/ports/9001/items/1"]);
});
