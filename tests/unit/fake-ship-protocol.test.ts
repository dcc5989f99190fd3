/**
 * The in-memory fake Ship speaks the Ship protocol of openapi/ship.v1.yaml:
 * every operation in the spec is served, its success body passes the generated
 * schema, every status it answers is one the spec lists, errors have Ship's
 * error body, and every route but /health wants the session's bearer secret.
 * A new operation in the spec fails here until the fake serves it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { z } from "zod";
import { FakeShip } from "../../src/bay/drivers/memory/fake-ship.ts";
import { MemoryVolumeFiles } from "../../src/bay/drivers/memory/volume-files.ts";
import { type ShipOperationId, shipOperations as typedOperations, zError } from "../../src/protocol/ship/index.ts";
import type { OperationSpec } from "../../src/protocol/ship/generated/operations.ts";

const shipOperations: Record<ShipOperationId, OperationSpec> = typedOperations;

const SECRET = "s".repeat(43);
const VOLUME = { name: "vol-protocol", labels: { owner: "o", workspace_id: "ws", instance_id: "test-protocol" } };

interface Fixture {
  path?: string;
  /** Fills `{context_id}` (default the default Python context). */
  contextId?: string;
  /** Which background command `{process_id}` names (default the one started without stdin). */
  process?: "stdin";
  query?: Record<string, string>;
  body?: unknown;
  raw?: Uint8Array<ArrayBuffer>;
}

/** A valid request per operation; `{process_id}` is filled with a started background command, `{terminal_id}` with a new terminal. */
const FIXTURES: Record<ShipOperationId, Fixture> = {
  getHealth: {},
  getMeta: {},
  execPython: { body: { code: "1+1" } },
  execCode: { body: { code: "1+1", language: "python" } },
  listContexts: {},
  createContext: { body: { language: "python" } },
  getContext: {},
  // Filled in beforeAll with a context created for it: a default context is not deleted.
  deleteContext: {},
  restartContext: {},
  execShell: { body: { command: "echo hi" } },
  listProcesses: {},
  getProcess: {},
  killProcess: {},
  readProcessOutput: { query: { offset: "0" } },
  writeProcessStdin: { process: "stdin", body: { data: "typed\n" } },
  signalProcess: { body: { signal: "SIGTERM" } },
  createTerminal: { body: { cols: 100, rows: 30 } },
  attachTerminal: {},
  openChannel: {},
  watchFiles: { query: { path: ".", recursive: "true" } },
  readFile: { query: { path: "a.txt" } },
  writeFile: { body: { path: "b.txt", content: "bee" } },
  deletePath: { query: { path: "c.txt" } },
  listDirectory: { query: { path: "." } },
  uploadFile: { query: { path: "up.bin" }, raw: new Uint8Array([0, 1, 255]) },
  downloadFile: { query: { path: "a.txt" } },
  checkUploads: { body: { paths: ["up2.bin", "new/dir/f.txt"] } },
  portGet: { query: { q: "1" } },
  portPut: { raw: new Uint8Array([1, 2]) },
  portPost: { raw: new Uint8Array([1, 2, 3]) },
  portDelete: {},
  portPatch: { raw: new Uint8Array([4]) },
};

let ship: FakeShip;
let base: string;
let processId: string;
let stdinProcessId: string;
const auth = { authorization: `Bearer ${SECRET}` };

/** A terminal of the fake Ship, created for one request. */
async function newTerminal(): Promise<string> {
  const res = await fetch(`${base}/terminals`, { method: "POST", headers: auth });
  return ((await res.json()) as { terminal_id: string }).terminal_id;
}

async function request(id: ShipOperationId, headers: Record<string, string> = auth, over: Fixture = {}): Promise<Response> {
  const op = shipOperations[id];
  const f = { ...FIXTURES[id], ...over };
  const path = op.path
    .replace("{process_id}", f.process === "stdin" ? stdinProcessId : processId)
    .replace("{context_id}", f.contextId ?? "ctx-default-python")
    .replace("{port}/{path}", "8080/some/path");
  const url = new URL(base + (path.includes("{terminal_id}") ? path.replace("{terminal_id}", await newTerminal()) : path));
  for (const [k, v] of Object.entries(f.query ?? {})) url.searchParams.set(k, v);
  const body = f.raw ?? (f.body === undefined ? undefined : JSON.stringify(f.body));
  const type = f.raw ? "application/octet-stream" : "application/json";
  return fetch(url, { method: op.method.toUpperCase(), headers: { ...headers, ...(body ? { "content-type": type } : {}) }, body });
}

beforeAll(async () => {
  const files = new MemoryVolumeFiles();
  files.createVolume(VOLUME.name, VOLUME.labels);
  for (const [p, text] of [
    ["a.txt", "aye"],
    ["c.txt", "sea"],
  ]) {
    await files.write(VOLUME, p!, { size: text!.length, bytes: new TextEncoder().encode(text) });
  }
  ship = FakeShip.start({
    credentials: { session_id: "sess-protocol", secret: SECRET },
    files,
    volume: VOLUME,
    maxUploadBytes: 1024,
    log: () => {},
  });
  base = `http://127.0.0.1:${ship.port}`;
  const started = await fetch(`${base}/shell/exec`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ command: "sleep 0", background: true }),
  });
  processId = ((await started.json()) as { process_id: string }).process_id;
  const context = await fetch(`${base}/contexts`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ language: "javascript" }),
  });
  FIXTURES.deleteContext.contextId = ((await context.json()) as { id: string }).id;
  const cat = await fetch(`${base}/shell/exec`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ command: "cat", background: true, stdin: true }),
  });
  stdinProcessId = ((await cat.json()) as { process_id: string }).process_id;
});
afterAll(() => ship.kill());

describe("every operation of openapi/ship.v1.yaml", () => {
  const ids = Object.keys(shipOperations) as ShipOperationId[];

  test.each(ids)("%s answers its success status with a body the spec's schema accepts", async (id) => {
    const op = shipOperations[id];
    if (id === "openChannel") {
      // Bay's call channel: a call frame is answered as the HTTP request it names.
      const ws = new WebSocket(`${base.replace("http:", "ws:")}${op.path}`, { headers: auth } as unknown as string[]);
      await new Promise((r, j) => {
        ws.onopen = r;
        ws.onerror = j;
      });
      const answer = new Promise<string>((r) => {
        ws.onmessage = (e) => r(e.data as string);
      });
      ws.send(
        `${JSON.stringify({ id: 7, method: "POST", path: "/ipython/exec", headers: { "content-type": "application/json" } })}\n{"code":"1+1"}`,
      );
      const frame = await answer;
      const cut = frame.indexOf("\n");
      expect(JSON.parse(frame.slice(0, cut))).toEqual({ id: 7, status: 200, type: expect.stringContaining("application/json") });
      expect(JSON.parse(frame.slice(cut + 1))).toMatchObject({ success: true, output: "2\n" });
      ws.close();
      return;
    }
    if (op.successStatus === 101) {
      // A WebSocket: the handshake succeeds, the shell answers, and the close frame carries its exit status.
      const ws = new WebSocket(`${base.replace("http:", "ws:")}${op.path.replace("{terminal_id}", await newTerminal())}`, {
        headers: auth,
      } as unknown as string[]);
      ws.binaryType = "arraybuffer";
      let screen = "";
      ws.onmessage = (e) => {
        if (typeof e.data !== "string") screen += new TextDecoder().decode(e.data as ArrayBuffer);
      };
      const closed = new Promise<{ code: number; reason: string }>((r) => {
        ws.onclose = (e) => r({ code: e.code, reason: e.reason });
      });
      await new Promise((r, j) => {
        ws.onopen = r;
        ws.onerror = j;
      });
      ws.send(new TextEncoder().encode("echo hi\r"));
      for (let i = 0; i < 500 && !screen.includes("hi\r\n"); i++) await Bun.sleep(10);
      expect(screen).toContain("echo hi\r\nhi\r\n");
      ws.send(new TextEncoder().encode("exit 4\r"));
      expect(await closed).toEqual({ code: 1000, reason: JSON.stringify({ exit_code: 4, signal: null }) });
      return;
    }
    const res = await request(id);
    expect(res.status).toBe(op.successStatus);
    if (op.successStatus === 204) {
      expect(await res.text()).toBe("");
      return;
    }
    if (op.successContentType === "*/*") {
      // A server's answer in the sandbox (the fake's echo server), marked as one, with what it was sent.
      expect(res.headers.get("x-ship-upstream")).toBe("200");
      const echo = (await res.json()) as { method: string; path: string; body_bytes: number };
      const f = FIXTURES[id];
      expect(echo).toMatchObject({ method: op.method.toUpperCase(), body_bytes: f.raw?.byteLength ?? 0 });
      expect(echo.path).toBe(`/some/path${f.query ? "?q=1" : ""}`);
      return;
    }
    expect(res.headers.get("content-type") ?? "").toStartWith(op.successContentType ?? "application/json");
    if (op.successContentType === "application/octet-stream") {
      expect(new Uint8Array(await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
    } else if (op.successContentType === "text/event-stream") {
      // An event stream: its first event says the watch is in place.
      const reader = res.body!.getReader();
      let text = "";
      while (!text.includes("event: ready")) text += new TextDecoder().decode((await reader.read()).value);
      expect(text).toContain('data: {"path":".","recursive":true}');
      await reader.cancel();
    } else {
      const parsed = (op.successSchema as z.ZodType).safeParse(await res.json());
      expect(parsed.error?.issues ?? []).toEqual([]);
    }
  });

  test.each(ids.filter((id) => shipOperations[id].authenticated))(
    "%s refuses a missing or wrong secret with 401 and Ship's error body",
    async (id) => {
      const wrong: Array<Record<string, string>> = [{}, { authorization: `Bearer ${SECRET}x` }, { authorization: SECRET }];
      for (const headers of wrong) {
        const res = await request(id, headers);
        expect(res.status).toBe(401);
        expect(shipOperations[id].statuses).toContain(401);
        const body = await res.json();
        expect(zError.safeParse(body).success).toBe(true);
        expect(body.error.code).toBe("unauthorized");
      }
    },
  );

  test.each(
    ids.filter((id) => {
      const op = shipOperations[id];
      // A query whose every field has a default cannot be refused by leaving it out.
      return op.body !== undefined || (op.query !== undefined && !(op.query as z.ZodType).safeParse({}).success);
    }),
  )("%s answers a request its schema refuses with 400 validation_error (a status the spec lists)", async (id) => {
    const op = shipOperations[id];
    // A body whose every field has a default is refused when it is not an object at all.
    const badBody = op.body && (op.body as z.ZodType).safeParse({ nope: true }).success ? 42 : { nope: true };
    const res = await request(id, auth, op.body ? { body: badBody } : { query: {} });
    expect(op.statuses).toContain(res.status);
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe("validation_error");
  });
});

test("file errors answer the spec's statuses: a missing file 404 file_not_found, an escaping path 400 invalid_path, an oversized upload 413", async () => {
  const missing = await request("readFile", auth, { query: { path: "nope.txt" } });
  expect(missing.status).toBe(404);
  expect((await missing.json()).error.code).toBe("file_not_found");
  const escaping = await request("readFile", auth, { query: { path: "../etc/passwd" } });
  expect(escaping.status).toBe(400);
  expect((await escaping.json()).error.code).toBe("invalid_path");
  const big = await request("uploadFile", auth, { raw: new Uint8Array(2048) });
  expect(shipOperations.uploadFile.statuses).toContain(big.status);
  expect(big.status).toBe(413);
  const unknown = await fetch(`${base}/shell/processes/proc-nope`, { headers: auth });
  expect(unknown.status).toBe(404);
});

test("code contexts: state apart per context, the cap, a default context restarts but is not deleted, JS refused by name, streamed", async () => {
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
  const exec = async (body: unknown) =>
    (await (await post("/code/exec", body)).json()) as { success: boolean; output: string; error: string };
  const created = (await (await post("/contexts", { language: "python" })).json()) as { id: string };
  expect((await exec({ context_id: created.id, code: "x = 1" })).success).toBe(true);
  expect((await exec({ context_id: created.id, code: "x" })).output).toBe("1\n");
  // The default Python context (python exec's) does not see it.
  expect((await exec({ code: "x" })).success).toBe(false);
  const js = await exec({ language: "typescript", code: "1 + 1" });
  expect(js).toMatchObject({ success: false, error: "NotImplementedError: the in-memory fake Ship runs no typescript" });
  const refused = await fetch(`${base}/contexts/ctx-default-python`, { method: "DELETE", headers: auth });
  expect([refused.status, ((await refused.json()) as any).error.code]).toEqual([409, "conflict"]);
  // Default cap 8: the createContext case above and `created` hold two (the deleteContext case freed its own).
  const more: Response[] = [];
  for (let i = 0; i < 7; i++) more.push(await post("/contexts", { language: "javascript" }));
  expect(more.map((r) => r.status)).toEqual([201, 201, 201, 201, 201, 201, 429]);
  const streamed = await post("/ipython/exec", { code: "print('hi')\n2 * 3" }, { accept: "text/event-stream" });
  expect(streamed.headers.get("content-type")).toStartWith("text/event-stream");
  const text = await streamed.text();
  expect(text).toContain('event: stdout\ndata: {"text":"hi\\n6\\n"}\n\n');
  expect(text.trimEnd().split("\n\n").at(-1)).toStartWith("event: result\n");
});

test("interactive work: output followed as events, stdin echoed by cat until EOF, signals, watch changes, bad queries 400", async () => {
  const cat = await fetch(`${base}/shell/exec`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ command: "cat", background: true, stdin: true }),
  });
  const pid = ((await cat.json()) as { process_id: string }).process_id;
  const follow = await fetch(`${base}/shell/processes/${pid}/output`, { headers: { ...auth, accept: "text/event-stream" } });
  expect(follow.headers.get("content-type")).toStartWith("text/event-stream");
  const write = (data: string, eof = false) =>
    fetch(`${base}/shell/processes/${pid}/stdin`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ data, eof }),
    });
  expect(await (await write("one\n")).json()).toEqual({ process_id: pid, written: 4, stdin_open: true });
  expect(await (await write("two\n", true)).json()).toEqual({ process_id: pid, written: 4, stdin_open: false });
  expect((await write("late")).status).toBe(409);
  const events = (await follow.text()).split("\n\n").filter((b) => b.startsWith("event:"));
  expect(events).toEqual([
    `event: output\ndata: ${JSON.stringify({ stream: "stdout", offset: 0, next_offset: 4, data: "one\n" })}`,
    `event: output\ndata: ${JSON.stringify({ stream: "stdout", offset: 4, next_offset: 8, data: "two\n" })}`,
    `event: exit\ndata: ${JSON.stringify({ status: "exited", exit_code: 0, signal: null, next_offset: 8 })}`,
  ]);
  const page = await (await fetch(`${base}/shell/processes/${pid}/output?offset=5`, { headers: auth })).json();
  expect(page).toMatchObject({ offset: 5, next_offset: 8, skipped: 0, eof: true, chunks: [{ data: "wo\n" }] });
  expect((await fetch(`${base}/shell/processes/${pid}/output?offset=9`, { headers: auth })).status).toBe(400);
  expect((await fetch(`${base}/shell/processes/${pid}/output?offset=-1`, { headers: auth })).status).toBe(400);

  const sleeper = await fetch(`${base}/shell/exec`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ command: "sleep 600", background: true }),
  });
  const sid = ((await sleeper.json()) as { process_id: string }).process_id;
  const signal = (name: string) =>
    fetch(`${base}/shell/processes/${sid}/signal`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ signal: name }),
    });
  expect((await signal("SIGSTOP")).status).toBe(400);
  expect((await signal("SIGTERM")).status).toBe(200);
  for (let i = 0; i < 200; i++) {
    const p = await (await fetch(`${base}/shell/processes/${sid}`, { headers: auth })).json();
    if (p.status !== "running") break;
    await Bun.sleep(10);
  }
  expect(await (await fetch(`${base}/shell/processes/${sid}`, { headers: auth })).json()).toMatchObject({
    status: "killed",
    exit_code: null,
    signal: "SIGTERM",
  });

  const watch = await fetch(`${base}/filesystem/watch?path=.`, { headers: auth });
  const reader = watch.body!.getReader();
  let text = "";
  while (!text.includes("event: ready")) text += new TextDecoder().decode((await reader.read()).value);
  await fetch(`${base}/filesystem/files`, {
    method: "PUT",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ path: "watched.txt", content: "w" }),
  });
  while (!text.includes("watched.txt")) text += new TextDecoder().decode((await reader.read()).value);
  expect(text).toContain(`event: change\ndata: ${JSON.stringify({ type: "created", path: "watched.txt", is_dir: false })}`);
  await reader.cancel();
  expect((await fetch(`${base}/filesystem/watch?recursive=maybe`, { headers: auth })).status).toBe(400);
  expect((await fetch(`${base}/filesystem/watch?path=a.txt`, { headers: auth })).status).toBe(400);
  expect((await fetch(`${base}/filesystem/watch?path=nope`, { headers: auth })).status).toBe(404);
});
