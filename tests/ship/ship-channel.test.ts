/**
 * Ship's call channel (GET /channel), served by a real Bun.serve with the real
 * Python kernel on the host: the upgrade needs the session's key and proves the
 * nonce; a call is answered exactly as its HTTP request (results, Ship's errors);
 * a cancel, or the channel closing, is that request's client going away, so a
 * queued cell never runs; the channel cannot be opened through itself.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeCall, parseChannelAnswer } from "../../src/protocol/ship/channel.ts";
import { NONCE_HEADER, newNonce, proofValid, shipBearer } from "../../src/protocol/ship/index.ts";
import { createShipApp, type ShipApp } from "../../src/ship/app.ts";
import { handshakeStatus } from "../support/terminal-client.ts";
import { testCredentials } from "./support/caller.ts";

const PYTHON = process.env.SHIP_TEST_PYTHON ?? "/usr/bin/python3";
const credentials = testCredentials();
let workspace = "";
let ship: ShipApp;
let server: ReturnType<typeof Bun.serve>;
let base = "";
const key = () => `Bearer ${shipBearer(credentials.secret)}`;

beforeAll(async () => {
  workspace = realpathSync(mkdtempSync(join(tmpdir(), "ship-channel-ws-")));
  ship = createShipApp({ workspace, python: PYTHON, credentials });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: ship.app.fetch, websocket: ship.websocket, idleTimeout: 0 });
  base = `127.0.0.1:${server.port}`;
});

afterAll(async () => {
  ship?.close();
  await server?.stop(true);
  rmSync(workspace, { recursive: true, force: true });
});

/** A channel client: opens with the session's key and a nonce; `call` sends one call and waits for its answer. */
async function openChannel() {
  const nonce = newNonce();
  const ws = new WebSocket(`ws://${base}/channel`, { headers: { authorization: key(), [NONCE_HEADER]: nonce } } as unknown as string[]);
  const frames: string[] = [];
  const waiters: Array<() => void> = [];
  ws.onmessage = (e) => {
    frames.push(e.data as string);
    for (const w of waiters.splice(0)) w();
  };
  const closed = new Promise<number>((r) => {
    ws.onclose = (e) => r(e.code);
  });
  await new Promise((r, j) => {
    ws.onopen = r;
    ws.onerror = j;
  });
  const next = async () => {
    while (frames.length === 0) await new Promise<void>((r) => waiters.push(r));
    return frames.shift()!;
  };
  const proof = JSON.parse(await next());
  const answers = new Map<number, ReturnType<typeof parseChannelAnswer>>();
  const answer = async (id: number) => {
    while (!answers.has(id)) {
      const a = parseChannelAnswer(await next());
      answers.set(a!.id, a);
    }
    return answers.get(id)!;
  };
  let nextId = 0;
  return {
    ws,
    closed,
    proof,
    nonce,
    answer,
    answers,
    send: (path: string, body?: unknown, method = "POST", headers: Record<string, string> = { "content-type": "application/json" }) => {
      const id = ++nextId;
      ws.send(encodeCall({ id, method, path, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }));
      return id;
    },
  };
}

test("the upgrade wants the session's key (401 without it, or with another) and proves the nonce in the first frame", async () => {
  expect(await handshakeStatus(`ws://${base}/channel`)).toBe(401);
  expect(await handshakeStatus(`ws://${base}/channel`, { authorization: "Bearer nope" })).toBe(401);
  const ch = await openChannel();
  expect(ch.proof.type).toBe("proof");
  expect(proofValid(credentials.secret, ch.nonce, ch.proof.proof)).toBe(true);
  ch.ws.close();
});

test("a call is answered as its HTTP request is: the same result, Ship's own errors and statuses", async () => {
  const ch = await openChannel();
  const viaChannel = await ch.answer(ch.send("/ipython/exec", { code: "6*7" }));
  const viaHttp = await fetch(`http://${base}/ipython/exec`, {
    method: "POST",
    headers: { authorization: key(), "content-type": "application/json" },
    body: JSON.stringify({ code: "6*7" }),
  });
  expect(viaChannel!.status).toBe(viaHttp.status);
  const [a, b] = [JSON.parse(viaChannel!.body), await viaHttp.json()];
  expect(a).toMatchObject({ success: true, output: "42\n" });
  expect({ ...a, execution_count: 0 }).toEqual({ ...b, execution_count: 0 });

  const invalid = await ch.answer(ch.send("/ipython/exec", { code: 5 }));
  expect(invalid!.status).toBe(400);
  expect(JSON.parse(invalid!.body).error.code).toBe("validation_error");
  const missing = await ch.answer(ch.send("/nowhere", undefined, "GET", {}));
  expect(missing!.status).toBe(404);
  const outside = await ch.answer(ch.send("/filesystem/files?path=../../etc/passwd", undefined, "DELETE", {}));
  expect(outside!.status).toBe(400);
  expect(JSON.parse(outside!.body).error.code).toBe("invalid_path");
  // The channel's credentials are the call's, whatever a frame claims.
  const forged = await ch.answer(ch.send("/meta", undefined, "GET", { authorization: "Bearer forged" }));
  expect(forged!.status).toBe(200);
  expect(JSON.parse(forged!.body).session.id).toBe(credentials.session_id);
  // Only the channel's operations travel on it (CHANNEL_OPS): a file read, a download or
  // another channel is refused before anything runs, and goes over HTTP.
  for (const path of ["/channel", "/filesystem/files?path=a.txt", "/filesystem/download?path=a.txt"]) {
    const refused = await ch.answer(ch.send(path, undefined, "GET", {}));
    expect(refused).toMatchObject({ status: 404, unrun: true });
  }
  ch.ws.close();
});

test("a cancelled call that was queued behind a running cell never runs, and its answer never comes", async () => {
  const ch = await openChannel();
  await ch.answer(ch.send("/ipython/exec", { code: "import time\nflag = 'unset'" }));
  const running = ch.send("/ipython/exec", { code: "time.sleep(1)\nflag = 'first'" });
  await Bun.sleep(100);
  const queued = ch.send("/ipython/exec", { code: "flag = 'cancelled call ran'" });
  await Bun.sleep(50);
  ch.ws.send(JSON.stringify({ cancel: queued }));
  expect(JSON.parse((await ch.answer(running))!.body).success).toBe(true);
  const after = await ch.answer(ch.send("/ipython/exec", { code: "flag" }));
  expect(JSON.parse(after!.body).output).toBe("'first'\n");
  expect(ch.answers.has(queued)).toBe(false);
  ch.ws.close();
});

test("closing the channel drops its queued calls; a frame that is no call closes it with 1008", async () => {
  const ch = await openChannel();
  ch.send("/ipython/exec", { code: "time.sleep(0.8)\nflag = 'slept'" });
  await Bun.sleep(100);
  ch.send("/ipython/exec", { code: "flag = 'dropped call ran'" });
  await Bun.sleep(50);
  ch.ws.close();
  await Bun.sleep(1200);
  const again = await openChannel();
  const after = await again.answer(again.send("/ipython/exec", { code: "flag" }));
  expect(JSON.parse(after!.body).output).toBe("'slept'\n");
  again.ws.send("not a frame");
  expect(await again.closed).toBe(1008);
});
