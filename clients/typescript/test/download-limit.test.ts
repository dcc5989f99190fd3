/**
 * downloadFile reads at most `maxAnswerBytes` (64 MiB by default, as the Python
 * client's max_answer_bytes): a larger file, by its Content-Length or as read, is a
 * BayRequestError `answer_too_large` (review s100 L5).
 */
import { afterAll, expect, test } from "bun:test";
import { BayRequestError, createBayClient, downloadFile } from "../src/index.ts";

let answer: () => Response = () => new Response("");
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => answer() });
afterAll(() => server.stop(true));
const client = createBayClient({ baseUrl: `http://127.0.0.1:${server.port}`, token: "t" });

const streamed = (bytes: Uint8Array<ArrayBuffer>) => new Response(new Blob([bytes]).stream());

test("a file within the limit is its bytes; an empty one is empty", async () => {
  answer = () => new Response("hello");
  expect(new TextDecoder().decode((await downloadFile(client, { sandbox: "sb-1" }, "f")).data)).toBe("hello");
  answer = () => streamed(new Uint8Array(1000).fill(7));
  expect((await downloadFile(client, { workspace: "ws-1" }, "f", { maxAnswerBytes: 1000 })).data?.byteLength).toBe(1000);
  answer = () => new Response("");
  expect((await downloadFile(client, { sandbox: "sb-1" }, "f")).data?.byteLength).toBe(0);
});

test("a file over maxAnswerBytes is refused, by its Content-Length or as read", async () => {
  for (const make of [() => new Response(new Uint8Array(1001)), () => streamed(new Uint8Array(1001))]) {
    answer = make;
    const e = await downloadFile(client, { sandbox: "sb-1" }, "f", { maxAnswerBytes: 1000 }).catch((x) => x);
    expect(e).toBeInstanceOf(BayRequestError);
    expect((e as BayRequestError).body.error.code as string).toBe("answer_too_large");
  }
});

test("by default, 64 MiB", async () => {
  answer = () => streamed(new Uint8Array(64 * 1024 * 1024 + 1));
  const e = await downloadFile(client, { sandbox: "sb-1" }, "f").catch((x) => x);
  expect((e as BayRequestError).body.error.code as string).toBe("answer_too_large");
}, 30_000);

test("Bay's error answer is still the error", async () => {
  answer = () => Response.json({ error: { code: "not_found", message: "no", details: {}, request_id: "r" } }, { status: 404 });
  const r = await downloadFile(client, { sandbox: "sb-1" }, "f");
  expect(r.data).toBeUndefined();
  expect(r.error?.error.code).toBe("not_found");
});
