/**
 * server.idle_timeout cuts a connection Bun waits on: a request that stops
 * arriving, whoever sends it. Only while a stream that may fall silent by design
 * is sent (an exec's events, a watch, E2B's NDJSON and Connect streams) does its
 * connection have none, and the timeout is back once that stream ends. Over real
 * HTTP (Bun.serve and server.idle_timeout of 1 s; Bun checks about every 4 s)
 * and raw sockets, on the in-memory driver.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { pollUntil } from "../support/harness.ts";
import { createMemoryBay, type MemoryBay } from "./support/memory-bay.ts";
import { connectFrame } from "../support/connect-frame.ts";

const KEY = "idle-lift-key-0123456789abcdef";
let t: MemoryBay;
let server: ReturnType<typeof Bun.serve>;
let sandboxId: string;
let e2b: { sandboxID: string; envdAccessToken: string };

beforeAll(async () => {
  t = await createMemoryBay({
    config: { auth: { mode: "api_key", api_keys: [{ key: KEY, owner: "alice" }] }, server: { idle_timeout: 1 } },
  });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: t.bay.app.fetch, websocket: t.bay.websocket, idleTimeout: 1 });
  const auth = { authorization: `Bearer ${KEY}` };
  sandboxId = (await t.json("POST", "/v1/sandboxes", { body: {}, headers: auth })).body.id;
  const res = await t.bay.app.request("/e2b/v2/sandboxes", {
    method: "POST",
    headers: { "x-api-key": KEY, "content-type": "application/json" },
    body: JSON.stringify({ templateID: "base" }),
  });
  expect(res.status).toBe(201);
  e2b = (await res.json()) as typeof e2b;
});
afterAll(async () => {
  server.stop(true);
  await t.close();
});

/** Sends `bytes` on a new connection; resolves with what came back and whether the server closed it within `waitMs` (or once `until` holds). */
function hold(bytes: string | Uint8Array, waitMs: number, until?: (text: string) => boolean): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = "";
    let done = false;
    let sock: { end(): void } | undefined;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      sock?.end();
      resolve({ text, closed });
    };
    void Bun.connect({
      hostname: "127.0.0.1",
      port: server.port!,
      socket: {
        open(s) {
          sock = s;
          s.write(bytes);
        },
        data(_s, d) {
          text += d.toString();
          if (until?.(text)) finish(false);
        },
        close: () => finish(true),
        error: () => finish(true),
      },
    });
    setTimeout(() => finish(false), waitMs);
  });
}

/** A request head announcing `length` bytes of body, then `sent` of them. */
const request = (method: string, path: string, headers: Record<string, string>, length: number, sent = "") =>
  `${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}Content-Length: ${length}\r\n\r\n${sent}`;

const CUT_MS = 10_000;
/** Longer than two of Bun's idle-timeout checks. */
const LIFTED_MS = 10_000;

describe("a client that stops sending is cut, credentials or not", () => {
  test("Bay's API: no credentials, a wrong key, and a valid key with half a JSON body", async () => {
    const exec = `/v1/sandboxes/${sandboxId}/shell/exec`;
    const json = { "content-type": "application/json" };
    const [none, wrong, valid] = await Promise.all([
      hold(request("POST", exec, json, 1000, '{"command":'), CUT_MS),
      hold(request("POST", exec, { ...json, authorization: "Bearer wrong-key-0123456789abcdef" }, 1000, '{"command":'), CUT_MS),
      hold(request("POST", exec, { ...json, authorization: `Bearer ${KEY}` }, 1000, '{"command":'), CUT_MS),
    ]);
    expect(none.text).toStartWith("HTTP/1.1 401");
    expect(none.closed).toBe(true);
    expect(wrong.text).toStartWith("HTTP/1.1 401");
    expect(wrong.closed).toBe(true);
    // Authenticated, but its body never came: nothing was run, nothing answered.
    expect(valid.text).toBe("");
    expect(valid.closed).toBe(true);
  }, 20_000);

  test("an upload with a valid key whose sandbox does not exist: 404, then cut", async () => {
    const r = await hold(
      request(
        "POST",
        "/v1/sandboxes/sandbox-none/filesystem/upload",
        { authorization: `Bearer ${KEY}`, "content-type": "multipart/form-data; boundary=x" },
        1_000_000,
        "--x\r\n",
      ),
      CUT_MS,
    );
    expect(r.text).toStartWith("HTTP/1.1 404");
    expect(r.closed).toBe(true);
  }, 20_000);

  test("uploads with a valid key to a live sandbox: file part first (spooled) or path first (streamed on), then silence", async () => {
    const auth = { authorization: `Bearer ${KEY}`, "content-type": "multipart/form-data; boundary=x" };
    const fileFirst = '--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc';
    const pathFirst = `--x\r\nContent-Disposition: form-data; name="path"\r\n\r\na.txt\r\n${fileFirst}`;
    const upload = `/v1/sandboxes/${sandboxId}/filesystem/upload`;
    const e2bUpload = "/e2b/files?path=/home/user/b";
    const token = { "e2b-sandbox-id": e2b.sandboxID, "x-access-token": e2b.envdAccessToken, "content-type": "application/octet-stream" };
    const all = await Promise.all([
      hold(request("POST", upload, auth, 1_000_000, fileFirst), CUT_MS),
      hold(request("POST", upload, auth, 1_000_000, pathFirst), CUT_MS),
      hold(request("POST", e2bUpload, token, 1_000_000, "abc"), CUT_MS),
    ]);
    for (const r of all) {
      expect(r.text).toBe("");
      expect(r.closed).toBe(true);
    }
    // Nothing is left behind: no spooled bytes, no file written.
    const spool = t.bay.deps.uploadSpool;
    await pollUntil(() => spool.bytesInUse === 0 && readdirSync(spool.dir).length === 0, Boolean, 5_000, "an empty spool");
    const auth2 = { authorization: `Bearer ${KEY}` };
    for (const path of ["a.txt", "a", "b"]) {
      const r = await t.json("GET", `/v1/sandboxes/${sandboxId}/filesystem/files?path=${path}`, { headers: auth2 });
      expect(r.status).toBe(404);
    }
  }, 20_000);

  test("E2B: envd Connect, the interpreter and file uploads without a token, and Connect with half its message and a valid one", async () => {
    const message = connectFrame({ path: "/home/user" });
    const half = new TextDecoder().decode(message.subarray(0, 8));
    const token = { "e2b-sandbox-id": e2b.sandboxID, "x-access-token": e2b.envdAccessToken };
    const connect = { "content-type": "application/connect+json" };
    const [rpc, interp, upload, rpcHalf] = await Promise.all([
      hold(request("POST", "/e2b/filesystem.Filesystem/WatchDir", connect, message.length, half), CUT_MS),
      hold(request("POST", "/e2b/execute", { "content-type": "application/json" }, 1000, '{"code":'), CUT_MS),
      hold(request("POST", "/files?path=/home/user/a", { "content-type": "application/octet-stream" }, 1_000_000, "abc"), CUT_MS),
      hold(request("POST", "/e2b/filesystem.Filesystem/WatchDir", { ...connect, ...token }, message.length, half), CUT_MS),
    ]);
    expect(rpc.closed).toBe(true);
    expect(interp.closed).toBe(true);
    expect(upload.text).toStartWith("HTTP/1.1 401");
    expect(upload.closed).toBe(true);
    expect(rpcHalf.text).toBe("");
    expect(rpcHalf.closed).toBe(true);
  }, 20_000);
});

describe("a stream outlasts the idle timeout, and the connection has it back once the stream ends", () => {
  const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
  const execBody = (command: string) => JSON.stringify({ command, timeout: 60 });

  test("Bay's API: a streamed exec silent for 12 s gets its events; a watch and E2B's WatchDir stay open while silent", async () => {
    const message = connectFrame({ path: "/home/user" });
    const head = request(
      "POST",
      "/e2b/filesystem.Filesystem/WatchDir",
      { "content-type": "application/connect+json", "e2b-sandbox-id": e2b.sandboxID, "x-access-token": e2b.envdAccessToken },
      message.length,
    );
    const body = JSON.stringify({ code: "import time; time.sleep(12); print('late')", timeout: 60 });
    const [exec, watch, watchDir] = await Promise.all([
      hold(
        request("POST", `/v1/sandboxes/${sandboxId}/python/exec`, { ...auth, accept: "text/event-stream" }, body.length, body),
        20_000,
        (text) => text.includes("event: result"),
      ),
      hold(
        `GET /v1/sandboxes/${sandboxId}/filesystem/watch?path=. HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${KEY}\r\n\r\n`,
        LIFTED_MS,
      ),
      hold(new Uint8Array([...new TextEncoder().encode(head), ...message]), LIFTED_MS),
    ]);
    expect(exec.text).toStartWith("HTTP/1.1 200");
    expect(exec.text).toContain("late");
    expect(exec.text).toContain("event: result");
    for (const r of [watch, watchDir]) {
      expect(r.text).toStartWith("HTTP/1.1 200");
      expect(r.closed).toBe(false);
    }
  }, 30_000);

  test("once a stream ends, or a JSON answer is sent, the kept-alive connection is cut when idle", async () => {
    const body = JSON.stringify({ code: "print('done')" });
    const exec = `/v1/sandboxes/${sandboxId}/python/exec`;
    const [streamed, plain] = await Promise.all([
      hold(request("POST", exec, { ...auth, accept: "text/event-stream" }, body.length, body), CUT_MS),
      hold(request("POST", exec, auth, body.length, body), CUT_MS),
    ]);
    expect(streamed.text).toContain("event: result");
    expect(plain.text).toContain('"output":"done\\n"');
    for (const r of [streamed, plain]) expect(r.closed).toBe(true);
  }, 20_000);

  test("E2B: a Connect stream without a token gets its error in a 200 stream, and its connection is then cut", async () => {
    const message = connectFrame({ path: "/home/user" });
    const head = request("POST", "/e2b/filesystem.Filesystem/WatchDir", { "content-type": "application/connect+json" }, message.length);
    const r = await hold(new Uint8Array([...new TextEncoder().encode(head), ...message]), CUT_MS);
    expect(r.text).toStartWith("HTTP/1.1 200");
    expect(r.text).toContain("unauthenticated");
    expect(r.closed).toBe(true);
  }, 20_000);

  test("Bay's API: GETs that wait 8 s on a runtime start are answered (a request without a body has no idle timeout while it is worked on)", async () => {
    const headers = { authorization: `Bearer ${KEY}` };
    const id = (await t.json("POST", "/v1/sandboxes", { body: {}, headers })).body.id;
    expect(
      (await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "a.txt", content: "hello" }, headers })).status,
    ).toBe(200);
    expect((await t.json("POST", `/v1/sandboxes/${id}/stop`, { headers })).status).toBeLessThan(300);
    const start = t.engine.holdStarts();
    const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${KEY}\r\n\r\n`;
    const answered = (text: string) => /\r\n\r\n./s.test(text);
    const pending = Promise.all([
      hold(get(`/v1/sandboxes/${id}/filesystem/files?path=a.txt`), 20_000, answered),
      hold(get(`/v1/sandboxes/${id}/filesystem/download?path=a.txt`), 20_000, answered),
      hold(get(`/v1/sandboxes/${id}/shell/processes`), 20_000, answered),
    ]);
    await start.reached;
    await Bun.sleep(8_000);
    start.release();
    for (const r of await pending) expect(r.text).toStartWith("HTTP/1.1 200");
  }, 30_000);

  test("Bay's API: an exec answered after 6 s of silence (Bun does not idle-time an answer being worked on)", async () => {
    const body = execBody("sleep 6; echo slept");
    const r = await hold(request("POST", `/v1/sandboxes/${sandboxId}/shell/exec`, auth, body.length, body), 12_000, (text) =>
      text.includes("slept"),
    );
    expect(r.text).toStartWith("HTTP/1.1 200");
    expect(r.text).toContain('"output":"slept\\n"');
  }, 20_000);
});
