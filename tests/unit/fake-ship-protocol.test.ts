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
  query?: Record<string, string>;
  body?: unknown;
  raw?: Uint8Array<ArrayBuffer>;
}

/** A valid request per operation; `{process_id}` is filled with a started background command. */
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
  readFile: { query: { path: "a.txt" } },
  writeFile: { body: { path: "b.txt", content: "bee" } },
  deletePath: { query: { path: "c.txt" } },
  listDirectory: { query: { path: "." } },
  uploadFile: { query: { path: "up.bin" }, raw: new Uint8Array([0, 1, 255]) },
  downloadFile: { query: { path: "a.txt" } },
};

let ship: FakeShip;
let base: string;
let processId: string;
const auth = { authorization: `Bearer ${SECRET}` };

function request(id: ShipOperationId, headers: Record<string, string> = auth, over: Fixture = {}): Promise<Response> {
  const op = shipOperations[id];
  const f = { ...FIXTURES[id], ...over };
  const url = new URL(base + op.path.replace("{process_id}", processId).replace("{context_id}", f.contextId ?? "ctx-default-python"));
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
});
afterAll(() => ship.kill());

describe("every operation of openapi/ship.v1.yaml", () => {
  const ids = Object.keys(shipOperations) as ShipOperationId[];

  test.each(ids)("%s answers its success status with a body the spec's schema accepts", async (id) => {
    const op = shipOperations[id];
    const res = await request(id);
    expect(res.status).toBe(op.successStatus);
    if (op.successStatus === 204) {
      expect(await res.text()).toBe("");
      return;
    }
    expect(res.headers.get("content-type") ?? "").toStartWith(op.successContentType ?? "application/json");
    if (op.successContentType === "application/octet-stream") {
      expect(new Uint8Array(await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
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
      return op.body !== undefined || (op.query !== undefined && id !== "listDirectory");
    }),
  )("%s answers a request its schema refuses with 400 validation_error (a status the spec lists)", async (id) => {
    const op = shipOperations[id];
    const res = await request(id, auth, op.body ? { body: { nope: true } } : { query: {} });
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
