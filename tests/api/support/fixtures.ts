/**
 * Request fixtures shared by the API tests: valid bodies, queries and forms per
 * operation (so a 404 or 401 is not masked by a 400), and the error-body checks.
 * Everything is derived from the generated operation table, so a new operation
 * in the spec is picked up by every table-driven test.
 */
import { expect } from "bun:test";
import type { z } from "zod";
import { operations, zErrorBody, type OperationId, type OperationSpec } from "../../../src/bay/api/generated/index.ts";
import type { TestBay } from "../../support/harness.ts";

export const OPS: OperationSpec[] = Object.values(operations);

/** A valid JSON body for every operation that takes one. A missing entry fails `fixtures are valid`. */
export const BODY_FIXTURES: Partial<Record<OperationId, unknown>> = {
  createSandbox: {},
  extendSandboxTtl: { extend_by: 10 },
  execPython: { code: "1" },
  execShell: { command: "true" },
  execCode: { code: "1" },
  createContext: { language: "python" },
  writeShellProcessStdin: { data: "x" },
  signalShellProcess: { signal: "SIGTERM" },
  writeFile: { path: "a.txt", content: "x" },
  createWorkspace: {},
  writeWorkspaceFile: { path: "a.txt", content: "x" },
  postMcp: {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "contract-test", version: "0" } },
  },
};

/** Values for query parameters an operation requires. */
export const QUERY_FIXTURES: Record<string, string> = { path: "a.txt" };

export const PROCESS_ID = "p1";
export const CONTEXT_ID = "ctx-x";
export const DOCS_ASSET = "docs.js";

/** Which resource the `{id}` of an operation's path names. */
export function resourceOf(op: OperationSpec): "sandbox" | "workspace" | null {
  if (!op.path.includes("{id}")) return null;
  if (op.path.startsWith("/v1/sandboxes/")) return "sandbox";
  if (op.path.startsWith("/v1/workspaces/")) return "workspace";
  throw new Error(`fixtures: unknown resource for ${op.path}`);
}

/** The capability a sandbox operation needs, from its path (`code`: a language of code contexts). */
export function capabilityOf(op: OperationSpec): "python" | "shell" | "filesystem" | "code" | null {
  if (!op.path.startsWith("/v1/sandboxes/{id}/")) return null;
  const seg = op.path.split("/")[4];
  if (seg === "contexts" || seg === "code") return "code";
  // The terminal is a shell, and a server in the sandbox is run by one: both need that capability.
  if (seg === "terminal" || seg === "ports") return "shell";
  return seg === "python" || seg === "shell" || seg === "filesystem" ? seg : null;
}

function queryKeys(op: OperationSpec): string[] {
  const shape = (op.query as z.ZodObject | undefined)?.shape;
  return shape ? Object.keys(shape) : [];
}

export function takesPathQuery(op: OperationSpec): boolean {
  return queryKeys(op).includes("path");
}

/** A multipart upload form: `path` before `file`, as the contract asks. */
export function uploadForm(path = "a.txt", bytes: Uint8Array<ArrayBuffer> = new Uint8Array([0, 1, 2, 255])): FormData {
  const fd = new FormData();
  fd.append("path", path);
  fd.append("file", new Blob([bytes]), "a.bin");
  return fd;
}

export interface BuiltRequest {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A server's port and the rest of its path (the memory driver's fake sandbox has an echo server on every port from 1024). */
export const PORT_PATH = "8080/api/items";

/**
 * A request for `op` that passes validation. `id` fills `{id}`; `query` and
 * `body` override the fixtures.
 */
export function validRequest(
  op: OperationSpec,
  id = "sandbox-doesnotexist0000000000",
  over: { query?: Record<string, string>; body?: unknown } = {},
): BuiltRequest {
  let path = op.path
    .replace("{id}", encodeURIComponent(id))
    .replace("{process_id}", PROCESS_ID)
    .replace("{context_id}", CONTEXT_ID)
    .replace("{asset}", DOCS_ASSET)
    .replace("{port}/{path}", PORT_PATH);
  const q = new URLSearchParams();
  for (const k of queryKeys(op)) if (QUERY_FIXTURES[k] !== undefined) q.set(k, QUERY_FIXTURES[k]!);
  for (const [k, v] of Object.entries(over.query ?? {})) q.set(k, v);
  if ([...q].length) path += `?${q}`;
  const req: BuiltRequest = { method: op.method.toUpperCase(), path };
  if (op.body) req.body = over.body ?? BODY_FIXTURES[op.operationId as OperationId];
  else if (op.form) req.body = over.body ?? uploadForm();
  return req;
}

/** Asserts the contract's one error body, and that X-Request-Id equals error.request_id. */
export function expectErrorBody(res: Response, body: unknown, code?: string): z.infer<typeof zErrorBody> {
  const parsed = zErrorBody.safeParse(body);
  if (!parsed.success) throw new Error(`not an ErrorBody (status ${res.status}): ${JSON.stringify(body)}`);
  expect(res.headers.get("x-request-id")).toBe(parsed.data.error.request_id);
  expect(parsed.data.error.request_id.length).toBeGreaterThan(0);
  if (code) expect(parsed.data.error.code).toBe(code as never);
  return parsed.data;
}

/** Row counts of the tables a failed request must not change. */
export async function countRows(t: TestBay): Promise<Record<string, number>> {
  const db = t.bay.deps.stores.db;
  const out: Record<string, number> = {};
  for (const table of ["sandboxes", "workspaces", "sessions", "idempotency_keys"]) {
    const rs = await db.execute(`SELECT COUNT(*) AS n FROM ${table}`);
    out[table] = Number(rs.rows[0]!.n);
  }
  return out;
}

/** A snapshot of every row of the resource tables, to prove nothing changed. */
export async function snapshotRows(t: TestBay): Promise<string> {
  const db = t.bay.deps.stores.db;
  const parts: unknown[] = [];
  for (const table of ["sandboxes", "workspaces", "sessions"]) {
    const rs = await db.execute(`SELECT * FROM ${table} ORDER BY id`);
    parts.push(rs.rows.map((r) => ({ ...r })));
  }
  return JSON.stringify(parts);
}

/** Containers this harness's Bay instance has created. */
export async function instanceContainers(t: TestBay) {
  return t.bay.driver.listContainers({ instance_id: t.bay.instanceId });
}

/** Closes the Bay, then fails the test if it had started any container: these tests never need compute. */
export async function closeWithoutContainers(t: TestBay): Promise<void> {
  const containers = await instanceContainers(t);
  await t.close();
  expect(containers).toEqual([]);
}
