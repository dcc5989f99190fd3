/**
 * Every E2B door checks its caller before it reads a body (review s87: envd's Connect
 * routes, /execute and /contexts read and parsed up to 4 MiB, and the control plane's
 * body limit buffered a chunked body, all before any credential was checked; a client
 * with none could hold Bay's memory and, with deeply nested JSON, its event loop).
 * Each request here sends a body that never ends: a door that reads it first never
 * answers. Memory driver (fake Ship), real app and libSQL.
 */
import { afterEach, expect, test } from "bun:test";
import { createMemoryBay, e2bSandbox, type MemoryBay } from "./support/memory-bay.ts";

let t: MemoryBay | null = null;
afterEach(async () => {
  await t?.close();
  t?.engine.shutdown();
  t = null;
});

/** A body whose first bytes come and whose end never does; `pulls` counts the reads past the first chunk. */
function endless(first: string) {
  const state = { pulls: 0 };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(first));
    },
    pull() {
      state.pulls++;
      return new Promise<void>(() => {});
    },
  });
  return { body, state };
}

/** The answer, or "hung" when none came in 5 s (a door waiting for the body's end). */
async function answer(path: string, headers: Record<string, string>): Promise<Response | "hung"> {
  const { body } = endless('{"path":"/home/user", "deep": [[[[[[');
  const res = t!.bay.app.request(path, { method: "POST", headers, body, duplex: "half" } as RequestInit);
  return Promise.race([res, Bun.sleep(5000).then(() => "hung" as const)]);
}

const decode = (b: ArrayBuffer) => new TextDecoder().decode(b);

test("envd's Connect calls without the right token are refused before the body is read: unary 401, a stream's end-stream", async () => {
  t = await createMemoryBay();
  const { id } = await e2bSandbox(t);
  const tokens: Array<Record<string, string>> = [{}, { "x-access-token": "wrong" }, { "e2b-sandbox-id": id, "x-access-token": "wrong" }];
  for (const token of tokens) {
    const unary = await answer("/e2b/filesystem.Filesystem/Stat", { "content-type": "application/json", ...token });
    if (unary === "hung") throw new Error("the unary call waited for its body");
    expect(unary.status).toBe(401);
    expect(unary.headers.get("x-request-id")).toBeTruthy();
    expect(JSON.parse(decode(await unary.arrayBuffer())).code).toBe("unauthenticated");

    const stream = await answer("/e2b/process.Process/Start", { "content-type": "application/connect+json", ...token });
    if (stream === "hung") throw new Error("the stream waited for its body");
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toBe("application/connect+json");
    const bytes = new Uint8Array(await stream.arrayBuffer());
    expect(bytes[0]).toBe(0x02);
    expect(new DataView(bytes.buffer).getUint32(1)).toBe(bytes.byteLength - 5);
    expect(JSON.parse(decode(bytes.subarray(5).slice().buffer)).error.code).toBe("unauthenticated");
  }
});

test("/execute and /contexts without a token, and the control plane without a key, answer 401 before the body", async () => {
  t = await createMemoryBay({ config: { auth: { mode: "api_key" } } });
  const json = { "content-type": "application/json" };
  for (const path of ["/e2b/execute", "/e2b/contexts", "/e2b/contexts/ctx-1/restart"]) {
    const res = await answer(path, { ...json, "x-access-token": "wrong" });
    if (res === "hung") throw new Error(`${path} waited for its body`);
    expect(res.status).toBe(401);
  }
  for (const path of ["/e2b/sandboxes", "/e2b/v2/sandboxes", "/e2b/sandboxes/sb-1/timeout", "/e2b/sandboxes/sb-1/connect"]) {
    const res = await answer(path, { ...json, "x-api-key": "not-a-key-of-this-bay" });
    if (res === "hung") throw new Error(`${path} waited for its body`);
    expect(res.status).toBe(401);
  }
});

test("a caller with the token still has its body read, limited and checked", async () => {
  t = await createMemoryBay();
  const { auth } = await e2bSandbox(t);
  const limit = t.bay.deps.config.limits.max_body_bytes;
  const big = await t.bay.app.request("/e2b/execute", {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ code: "x".repeat(limit) }),
  });
  expect(big.status).toBe(413);
  const bad = await t.bay.app.request("/e2b/execute", {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: "{",
  });
  expect(bad.status).toBe(400);
  const ran = await t.bay.app.request("/e2b/execute", {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ code: "1+1" }),
  });
  expect(ran.status).toBe(200);
  expect(await ran.text()).toContain('"type":"result"');
});

test("an envd call past its owner's rate limit is refused before its body is read (review s91)", async () => {
  t = await createMemoryBay({ config: { limits: { rate_limit_per_minute: 3 } } });
  const { auth } = await e2bSandbox(t);
  const headers = { ...auth, "content-type": "application/json" };
  // Whatever the create left of the bucket, spent on calls with whole bodies.
  for (let i = 0; i < 4; i++) {
    const r = await t.bay.app.request("/e2b/filesystem.Filesystem/Stat", { method: "POST", headers, body: '{"path":"/home/user"}' });
    await r.arrayBuffer();
  }
  for (let i = 0; i < 2; i++) {
    const res = await answer("/e2b/filesystem.Filesystem/Stat", headers);
    if (res === "hung") throw new Error("a call past the rate limit waited for its body");
    expect(res.status).toBe(429);
    await res.arrayBuffer();
  }
});
