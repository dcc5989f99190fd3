/**
 * Every answer the client reads whole is bounded (review s100 L4, left open in
 * stop 58): JSON answers at `maxAnswerBytes` (64 MiB by default), error answers at
 * 1 MiB, by their Content-Length or as read; a hostile or broken server's endless
 * body is a BayRequestError `answer_too_large`, never held. Streams pass whole.
 */
import { afterAll, expect, test } from "bun:test";
import { BayRequestError, createBayClient } from "../src/index.ts";

let answer: () => Response = () => new Response("");
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => answer() });
afterAll(() => server.stop(true));
const base = `http://127.0.0.1:${server.port}`;
const client = createBayClient({ baseUrl: base, token: "t", maxAnswerBytes: 1000 });

/** A body of `size` bytes sent without a Content-Length. */
const streamed = (size: number, init: ResponseInit = {}) => new Response(new Blob([new Uint8Array(size).fill(0x20)]).stream(), init);
const json = (size: number) => `{"id":"${"x".repeat(size - 9)}"}`;

async function refusal(call: () => Promise<unknown>): Promise<string> {
  const e = await call().catch((x) => x);
  expect(e).toBeInstanceOf(BayRequestError);
  return (e as BayRequestError).body.error.code as string;
}
const getSandbox = (c = client) => c.GET("/v1/sandboxes/{id}", { params: { path: { id: "sb-1" } } });

test("a JSON answer within the limit is parsed; past it, by Content-Length or as read, it is answer_too_large", async () => {
  answer = () => new Response(json(1000), { headers: { "content-type": "application/json", "x-kept": "yes" } });
  const within = await getSandbox();
  expect((within.data as { id: string }).id).toHaveLength(991);
  // The answer is still the server's: its headers and where it came from.
  expect(within.response.headers.get("x-kept")).toBe("yes");
  expect(within.response.url).toBe(`${base}/v1/sandboxes/sb-1`);
  answer = () => new Response(json(1001), { headers: { "content-type": "application/json" } });
  expect(await refusal(getSandbox)).toBe("answer_too_large");
  answer = () => streamed(5000, { headers: { "content-type": "application/json" } });
  expect(await refusal(getSandbox)).toBe("answer_too_large");
});

test("an error answer is read up to 1 MiB: Bay's error is still the error; an endless one is answer_too_large", async () => {
  answer = () => Response.json({ error: { code: "not_found", message: "no", details: {}, request_id: "r" } }, { status: 404 });
  const r = await getSandbox();
  expect(r.error?.error.code).toBe("not_found");
  const roomy = createBayClient({ baseUrl: base, maxAnswerBytes: 1 << 30 });
  answer = () => streamed(1024 * 1024 + 1, { status: 502 });
  expect(await refusal(() => getSandbox(roomy))).toBe("answer_too_large");
  answer = () => new Response(new Uint8Array(2 * 1024 * 1024), { status: 500 });
  expect(await refusal(() => getSandbox(roomy))).toBe("answer_too_large");
});

test("a stream (parseAs: stream) is not cut; an empty answer is none", async () => {
  answer = () => streamed(50_000, { headers: { "content-type": "text/event-stream" } });
  const r = await client.POST("/v1/sandboxes/{id}/shell/exec", {
    params: { path: { id: "sb-1" } },
    body: { command: "true" },
    parseAs: "stream",
  });
  expect((await new Response(r.data as ReadableStream).arrayBuffer()).byteLength).toBe(50_000);
  answer = () => new Response(null, { status: 204 });
  expect((await client.DELETE("/v1/sandboxes/{id}", { params: { path: { id: "sb-1" } } })).response.status).toBe(204);
});

test("by default, 64 MiB", async () => {
  const plain = createBayClient({ baseUrl: base });
  answer = () => streamed(64 * 1024 * 1024 + 1, { headers: { "content-type": "application/json" } });
  expect(await refusal(() => getSandbox(plain))).toBe("answer_too_large");
}, 30_000);
