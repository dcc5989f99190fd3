/**
 * The generated client against a real Bay process on real Docker: the README's
 * first session (create, Python, shell, upload and download bytes, delete), and
 * errors narrowed on their code to typed details.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBayProcess, type BayProcess } from "../../../tests/support/bay-process.ts";
import { removeLabelled } from "../../../tests/e2e/support/docker-fixtures.ts";
import { docker } from "../../../tests/e2e/support/e2e.ts";
import { uniqueInstanceId } from "../../../tests/support/harness.ts";
import { SHIP_TAG } from "../../../tests/support/images.ts";
import {
  type BayClient,
  BayRequestError,
  type components,
  createBayClient,
  downloadFile,
  type ExecEvent,
  execEvents,
  isBayError,
  uploadFile,
} from "../src/index.ts";

const KEY = "client-test-key-0123456789abcdef";

// Request types: fields with a default are optional, required fields are required.
const shellOnlyCommand: components["schemas"]["ShellExecRequest"] = { command: "true" };
const pythonOnlyCode: components["schemas"]["PythonExecRequest"] = { code: "1" };
const createWithNothing: components["schemas"]["CreateSandboxRequest"] = {};
// @ts-expect-error `command` is required
const shellWithoutCommand: components["schemas"]["ShellExecRequest"] = { timeout: 5 };
void [shellOnlyCommand, pythonOnlyCode, createWithNothing, shellWithoutCommand];

let dir: string;
let bay: BayProcess;
let client: BayClient;
/** Sandboxes to delete at the end (each test's, whether or not it got to delete it). */
const toDelete: string[] = [];

/** This Bay's instance: what is labelled with it is removed at the end, whatever Bay left. */
const instanceId = uniqueInstanceId();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "bay-client-"));
  bay = await startBayProcess({
    dbPath: join(dir, "bay.db"),
    instanceId,
    dir,
    env: { BAY_AUTH_MODE: "api_key", BAY_API_KEY: KEY, BAY_API_KEY_OWNER: "client-owner", BAY_SHIP_TAG: SHIP_TAG },
  });
  client = createBayClient({ baseUrl: bay.url, token: KEY });
});

afterAll(async () => {
  // Deleting removes the container and the managed workspace volume.
  for (const id of toDelete) await client.DELETE("/v1/sandboxes/{id}", { params: { path: { id } } });
  await bay?.kill("SIGTERM");
  // A delete whose volume was still in use for a moment leaves it to Bay's reaper, stopped now.
  await removeLabelled(docker, { "bay.instance_id": instanceId });
  rmSync(dir, { recursive: true, force: true });
});

test("the README's first session", async () => {
  const created = await client.POST("/v1/sandboxes", { body: {} });
  expect(created.response.status).toBe(201);
  const sb = created.data!;
  toDelete.push(sb.id);
  expect(sb.status).toBe("idle");

  const py = await client.POST("/v1/sandboxes/{id}/python/exec", {
    params: { path: { id: sb.id } },
    body: { code: "x = 21\nx * 2" },
  });
  expect(py.error).toBeUndefined();
  expect(py.data!.success).toBe(true);
  expect(py.data!.output).toBe("42\n");
  expect(py.data!.data).toEqual([{ type: "execute_result", data: { "text/plain": "42" } }]);

  const sh = await client.POST("/v1/sandboxes/{id}/shell/exec", {
    params: { path: { id: sb.id } },
    body: { command: "echo hello from $(id -u)" },
  });
  expect(sh.data).toMatchObject({ success: true, exit_code: 0, output: "hello from 1000\n" });

  // Every byte value, so nothing is decoded or JSON-parsed on the way.
  const bytes = new Uint8Array(512).map((_, i) => i % 256);
  const up = await uploadFile(client, { sandbox: sb.id }, "data/in.bin", bytes);
  expect(up.data).toEqual({ status: "ok", path: "data/in.bin", size: 512 });
  const down = await downloadFile(client, { sandbox: sb.id }, "data/in.bin");
  expect(down.error).toBeUndefined();
  expect(down.data).toEqual(bytes);
  const seen = await client.POST("/v1/sandboxes/{id}/python/exec", {
    params: { path: { id: sb.id } },
    body: { code: "print(len(open('data/in.bin','rb').read()))" },
  });
  expect(seen.data!.output).toBe("512\n");

  const empty = await uploadFile(client, { sandbox: sb.id }, "empty.bin", new Uint8Array(0));
  expect(empty.data?.size).toBe(0);
  expect((await downloadFile(client, { sandbox: sb.id }, "empty.bin")).data).toEqual(new Uint8Array(0));

  const deleted = await client.DELETE("/v1/sandboxes/{id}", { params: { path: { id: sb.id } } });
  expect(deleted.response.status).toBe(204);

  const gone = await client.GET("/v1/sandboxes/{id}", { params: { path: { id: sb.id } } });
  expect(gone.response.status).toBe(404);
  // Narrowed on the code: details are NotFoundError's.
  if (!isBayError(gone.error, "not_found")) throw new Error(`expected not_found, got ${JSON.stringify(gone.error)}`);
  expect(gone.error.error.details).toEqual({ kind: "sandbox", id: sb.id });
});

test("errors narrow on their code to typed details", async () => {
  const created = await client.POST("/v1/sandboxes", { body: { ttl: 600 } });
  const id = created.data!.id;
  toDelete.push(id);

  // A validation error: the body fails its schema.
  const bad = await client.POST("/v1/sandboxes/{id}/shell/exec", {
    params: { path: { id } },
    body: { command: "true", timeout: 0 },
  });
  expect(bad.response.status).toBe(400);
  const err = bad.error!.error;
  if (err.code !== "validation_error") throw new Error(`expected validation_error, got ${err.code}`);
  expect(err.details.issues?.map((i) => i.path)).toContain("json.timeout");

  // A file that is not there: 404 file_not_found with its path (the runtime starts for it).
  const missing = await downloadFile(client, { sandbox: id }, "nope.bin");
  expect(missing.response.status).toBe(404);
  if (!isBayError(missing.error, "file_not_found")) throw new Error(`expected file_not_found, got ${JSON.stringify(missing.error)}`);
  expect(missing.error.error.details.path).toBe("nope.bin");

  // A path escaping /workspace: refused before anything runs.
  const outside = await client.GET("/v1/sandboxes/{id}/filesystem/files", { params: { path: { id }, query: { path: "../etc/passwd" } } });
  expect(outside.response.status).toBe(400);
  if (!isBayError(outside.error, "invalid_path")) throw new Error(`expected invalid_path, got ${JSON.stringify(outside.error)}`);
  expect(outside.error.error.details.path).toBe("../etc/passwd");

  // Another credential: 401 with the RFC 6750 challenge.
  const stranger = createBayClient({ baseUrl: bay.url, token: "not-a-key-0000000000000000" });
  const denied = await stranger.GET("/v1/sandboxes/{id}", { params: { path: { id } } });
  expect(denied.response.status).toBe(401);
  expect(denied.response.headers.get("www-authenticate")).toBe('Bearer realm="bay", error="invalid_token"');
  expect(isBayError(denied.error, "unauthorized")).toBe(true);
});

test("streamed execs: output as it comes, then the result; leaving the loop interrupts the run; a refused call throws", async () => {
  const created = await client.POST("/v1/sandboxes", { body: { ttl: 600 } });
  const id = created.data!.id;
  toDelete.push(id);

  const seen: ExecEvent[] = [];
  for await (const e of execEvents(client, id, "python", { code: "x = 21\nprint('hi', flush=True)\nx * 2" })) seen.push(e);
  expect(seen.map((e) => e.event)).toEqual(["stdout", "result"]);
  expect(seen[0]).toEqual({ event: "stdout", data: { text: "hi\n" } });
  expect(seen[1]!.data).toMatchObject({ success: true, output: "hi\n42\n" });

  const shell: ExecEvent[] = [];
  for await (const e of execEvents(client, id, "shell", { command: "echo out; echo err >&2; exit 3" })) shell.push(e);
  expect(shell.at(-1)).toMatchObject({ event: "result", data: { success: false, exit_code: 3, output: "out\n", error: "err\n" } });

  // Left after the first line: the run is interrupted, and the kernel answers the next call.
  const long = "import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.05)";
  for await (const e of execEvents(client, id, "python", { code: long })) {
    expect(e.event).toBe("stdout");
    break;
  }
  await Bun.sleep(1000);
  const after = await client.POST("/v1/sandboxes/{id}/python/exec", { params: { path: { id } }, body: { code: "i" } });
  expect(Number(after.data!.output)).toBeLessThan(599);

  // Refused before the run: thrown with Bay's error body.
  const refused = await Array.fromAsync(execEvents(client, id, "code", { code: "1", language: "cobol" as never })).catch((e) => e);
  expect(refused).toBeInstanceOf(BayRequestError);
  expect([refused.status, refused.body.error.code]).toEqual([400, "validation_error"]);
  const other = await Array.fromAsync(execEvents(client, "sb-does-not-exist", "shell", { command: "true" })).catch((e) => e);
  expect([other.status, other.body.error.code]).toEqual([404, "not_found"]);
}, 120_000);
