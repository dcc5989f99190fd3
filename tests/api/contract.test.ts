/**
 * The app against its contract (after e2b-dev/infra's openapi_contract_test):
 * every status the app answers an operation with — success and each error
 * class reachable without containers — is one the spec lists for it, with the
 * success body matching the operation's schema and every error body the one
 * ErrorBody carrying its X-Request-Id. (Routes ↔ operations, the version and
 * the fixtures themselves are checked in contract-routes.test.ts.)
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { OperationId, OperationSpec } from "../../src/bay/api/generated/index.ts";
import type { BayConfig } from "../../src/bay/config.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import {
  BODY_FIXTURES,
  capabilityOf,
  closeWithoutContainers,
  expectErrorBody,
  OPS,
  resourceOf,
  takesPathQuery,
  uploadForm,
  validRequest,
  type BuiltRequest,
} from "./support/fixtures.ts";
import { SHIP_IMAGE } from "../support/images.ts";

const KEY = "alice-key-0123456789abcdef";
const AUTH = { authorization: `Bearer ${KEY}` };
const MAX_BODY = 1024;
const MAX_UPLOAD = 100;
const QUOTA = 3;
const RATE_PER_MINUTE = 40;

const PROFILES = [
  { id: "python-default", image: SHIP_IMAGE },
  { id: "files-only", image: SHIP_IMAGE, capabilities: ["filesystem"] },
  { id: "python-only", image: SHIP_IMAGE, capabilities: ["python"] },
  { id: "no-code", image: SHIP_IMAGE, languages: [] },
] as unknown as BayConfig["profiles"];

/** A profile without what `op` needs. */
const LACKING = { python: "files-only", shell: "python-only", filesystem: "python-only", code: "no-code" } as const;

type Result = { status: number; body: any; res: Response };

let t: TestBay;
beforeEach(async () => {
  t = await createTestBay({
    config: {
      auth: { mode: "api_key", api_keys: [{ key: KEY, owner: "alice" }] },
      limits: {
        max_body_bytes: MAX_BODY,
        max_upload_bytes: MAX_UPLOAD,
        max_sandboxes_per_owner: QUOTA,
        rate_limit_per_minute: RATE_PER_MINUTE,
      },
      profiles: PROFILES,
    },
  });
});
// No probe may start compute: everything here is refused or answered from the database.
afterEach(() => closeWithoutContainers(t));

const send = (r: BuiltRequest, headers: Record<string, string> = AUTH): Promise<Result> =>
  t.json(r.method, r.path, { body: r.body, headers: { ...headers, ...(r.headers ?? {}) } });

async function createSandbox(body: Record<string, unknown> = {}): Promise<string> {
  const r = await send({ method: "POST", path: "/v1/sandboxes", body });
  if (r.status !== 201) throw new Error(`setup: create sandbox answered ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id;
}

async function createWorkspace(): Promise<string> {
  const r = await send({ method: "POST", path: "/v1/workspaces", body: {} });
  if (r.status !== 201) throw new Error(`setup: create workspace answered ${r.status}`);
  return r.body.id;
}

/** A live resource of alice's of the kind `op`'s `{id}` names. */
async function ownResource(op: OperationSpec, body: Record<string, unknown> = {}): Promise<string> {
  return resourceOf(op) === "workspace" ? createWorkspace() : createSandbox(body);
}

/** Bytes and headers of a multipart body, with an honest Content-Length. */
async function multipart(fd: FormData): Promise<{ body: Uint8Array; headers: Record<string, string> }> {
  // A Request, not a Response: Bun's Response leaves content-type unset for FormData.
  const req = new Request("http://bay.test/", { method: "POST", body: fd });
  const contentType = req.headers.get("content-type");
  if (!contentType) throw new Error("setup: no multipart content-type");
  const body = new Uint8Array(await req.arrayBuffer());
  return { body, headers: { "content-type": contentType, "content-length": String(body.length) } };
}

const SUCCESS: Partial<Record<OperationId, () => Promise<BuiltRequest>>> = {
  getHealth: async () => ({ method: "GET", path: "/health" }),
  getOpenApi: async () => ({ method: "GET", path: "/openapi.json" }),
  getDocs: async () => ({ method: "GET", path: "/docs" }),
  getDocsAsset: async () => ({ method: "GET", path: "/docs/assets/swagger-ui-bundle.js" }),
  // In-process requests have no network peer: as local as /metrics callers get (no token configured here).
  getMetrics: async () => ({ method: "GET", path: "/metrics" }),
  postMcp: async () => validRequest(OPS.find((o) => o.operationId === "postMcp")!),
  listProfiles: async () => ({ method: "GET", path: "/v1/profiles" }),
  listSandboxes: async () => (await createSandbox(), { method: "GET", path: "/v1/sandboxes?limit=5" }),
  createSandbox: async () => ({ method: "POST", path: "/v1/sandboxes", body: { ttl: 60 } }),
  getSandbox: async () => ({ method: "GET", path: `/v1/sandboxes/${await createSandbox()}` }),
  deleteSandbox: async () => ({ method: "DELETE", path: `/v1/sandboxes/${await createSandbox()}` }),
  keepaliveSandbox: async () => ({ method: "POST", path: `/v1/sandboxes/${await createSandbox()}/keepalive` }),
  stopSandbox: async () => ({ method: "POST", path: `/v1/sandboxes/${await createSandbox()}/stop` }),
  createTerminalTicket: async () => ({ method: "POST", path: `/v1/sandboxes/${await createSandbox()}/terminal/tickets` }),
  extendSandboxTtl: async () => ({
    method: "POST",
    path: `/v1/sandboxes/${await createSandbox({ ttl: 60 })}/extend_ttl`,
    body: { extend_by: 10 },
  }),
  listWorkspaces: async () => (await createWorkspace(), { method: "GET", path: "/v1/workspaces" }),
  createWorkspace: async () => ({ method: "POST", path: "/v1/workspaces", body: { size_limit_mb: 10 } }),
  getWorkspace: async () => ({ method: "GET", path: `/v1/workspaces/${await createWorkspace()}` }),
  deleteWorkspace: async () => ({ method: "DELETE", path: `/v1/workspaces/${await createWorkspace()}` }),
};

interface Probe {
  name: string;
  applies(op: OperationSpec): boolean;
  expected(op: OperationSpec): { status: number; code?: string };
  run(op: OperationSpec): Promise<Result>;
}

const hasPathInput = (op: OperationSpec) =>
  takesPathQuery(op) || !!op.form || (BODY_FIXTURES[op.operationId as OperationId] as { path?: string } | undefined)?.path !== undefined;

/** Operations that answer from memory and stay up while the database is down (MCP's initialize touches no table). */
const NO_DATABASE: ReadonlySet<string> = new Set([
  "getHealth",
  "getOpenApi",
  "getDocs",
  "getDocsAsset",
  "listProfiles",
  "getMetrics",
  "postMcp",
]);

const EXPIRED_REFUSES = (op: OperationSpec) =>
  capabilityOf(op) !== null || op.operationId === "keepaliveSandbox" || op.operationId === "extendSandboxTtl";

const PROBES: Probe[] = [
  {
    name: "success",
    applies: (op) => SUCCESS[op.operationId as OperationId] !== undefined,
    expected: (op) => ({ status: op.successStatus }),
    run: async (op) => send(await SUCCESS[op.operationId as OperationId]!(), op.authenticated ? AUTH : {}),
  },
  {
    name: "401 without credentials (WWW-Authenticate: Bearer)",
    applies: (op) => op.authenticated,
    expected: () => ({ status: 401, code: "unauthorized" }),
    run: async (op) => {
      const r = await send(validRequest(op), {});
      expect(r.res.headers.get("www-authenticate")).toBe('Bearer realm="bay"');
      return r;
    },
  },
  {
    name: "401 with an unknown API key (WWW-Authenticate: invalid_token)",
    applies: (op) => op.authenticated,
    expected: () => ({ status: 401, code: "unauthorized" }),
    run: async (op) => {
      const r = await send(validRequest(op), { authorization: "Bearer not-a-real-key-000000000000" });
      expect(r.res.headers.get("www-authenticate")).toBe('Bearer realm="bay", error="invalid_token"');
      return r;
    },
  },
  {
    name: "400 for an id longer than the spec allows",
    applies: (op) => resourceOf(op) !== null,
    expected: () => ({ status: 400, code: "validation_error" }),
    run: (op) => send(validRequest(op, "x".repeat(129))),
  },
  {
    name: "404 for an unknown id",
    applies: (op) => resourceOf(op) !== null,
    expected: () => ({ status: 404, code: "not_found" }),
    run: (op) => send(validRequest(op, resourceOf(op) === "workspace" ? "ws-unknown0000000000" : "sandbox-unknown0000000000")),
  },
  {
    name: "400 for malformed JSON, saying the body is not valid JSON",
    applies: (op) => !!op.body,
    expected: () => ({ status: 400, code: "validation_error" }),
    run: async (op) => {
      const r = await send({ ...validRequest(op), body: '{"oops":', headers: { "content-type": "application/json" } });
      expect(r.body.error?.message).toMatch(/^the request body is not valid JSON/);
      return r;
    },
  },
  {
    name: "400 for a required JSON body sent empty, saying it is empty and a JSON object is expected",
    applies: (op) => !!op.body && op.bodyRequired === true,
    expected: () => ({ status: 400, code: "validation_error" }),
    run: async (op) => {
      for (const headers of [{ "content-type": "application/json" }, {}] as Array<Record<string, string>>) {
        const r = await send({ ...validRequest(op), body: "", headers });
        expect({ headers, status: r.status, message: r.body.error?.message }).toEqual({
          headers,
          status: 400,
          message: expect.stringMatching(/^the request body is empty: a JSON object is expected/),
        });
      }
      return send({ ...validRequest(op), body: "", headers: { "content-type": "application/json" } });
    },
  },
  {
    name: "400 for a body of the wrong type",
    applies: (op) => !!op.body,
    expected: () => ({ status: 400, code: "validation_error" }),
    run: (op) => send({ ...validRequest(op), body: [1, 2, 3] }),
  },
  {
    name: "413 for a body over limits.max_body_bytes",
    applies: (op) => !!op.body,
    expected: () => ({ status: 413, code: "payload_too_large" }),
    run: (op) =>
      send({
        ...validRequest(op),
        body: JSON.stringify({ pad: "x".repeat(MAX_BODY * 2) }),
        headers: { "content-type": "application/json" },
      }),
  },
  {
    name: "400 invalid_path for a path escaping /workspace (on an existing resource)",
    applies: hasPathInput,
    expected: () => ({ status: 400, code: "invalid_path" }),
    run: async (op) => {
      const id = await ownResource(op);
      if (op.form) return send(validRequest(op, id, { body: uploadForm("../escape.txt") }));
      if (takesPathQuery(op)) return send(validRequest(op, id, { query: { path: "../escape.txt" } }));
      return send(validRequest(op, id, { body: { ...(BODY_FIXTURES[op.operationId as OperationId] as object), path: "../escape.txt" } }));
    },
  },
  {
    name: "400 capability_not_supported when the profile lacks the capability",
    applies: (op) => capabilityOf(op) !== null,
    expected: () => ({ status: 400, code: "capability_not_supported" }),
    run: async (op) => {
      const id = await createSandbox({ profile: LACKING[capabilityOf(op)!] });
      return send(validRequest(op, id));
    },
  },
  {
    name: "on an expired sandbox",
    applies: (op) => resourceOf(op) === "sandbox",
    expected: (op) => (EXPIRED_REFUSES(op) ? { status: 409, code: "sandbox_expired" } : { status: op.successStatus }),
    run: async (op) => {
      const id = await createSandbox({ ttl: 3600 });
      await t.bay.deps.stores.sandboxes.setExpiresAt(id, Date.now() - 1000);
      return send(validRequest(op, id));
    },
  },
  {
    name: "413 for an upload whose Content-Length is over limits.max_upload_bytes",
    applies: (op) => !!op.form,
    expected: () => ({ status: 413, code: "payload_too_large" }),
    run: async (op) => {
      const id = await ownResource(op);
      const { body, headers } = await multipart(uploadForm("big.bin", new Uint8Array(MAX_UPLOAD + 70 * 1024)));
      return send({ ...validRequest(op, id), body, headers });
    },
  },
  {
    name: "500 internal_error when the database is gone",
    applies: () => true,
    expected: (op) => (NO_DATABASE.has(op.operationId) ? { status: op.successStatus } : { status: 500, code: "internal_error" }),
    run: async (op) => {
      t.bay.deps.stores.db.close();
      return send(validRequest(op), op.authenticated ? AUTH : {});
    },
  },
  {
    name: "429 quota_exceeded once the owner's rate limit is spent",
    applies: (op) => op.authenticated,
    expected: () => ({ status: 429, code: "quota_exceeded" }),
    run: async (op) => {
      for (let i = 0; i < RATE_PER_MINUTE; i++) await send({ method: "GET", path: "/v1/profiles" });
      const r = await send(validRequest(op));
      expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);
      return r;
    },
  },
  // Operation-specific error classes.
  {
    name: "400 for an asset the spec does not list",
    applies: (op) => op.operationId === "getDocsAsset",
    expected: () => ({ status: 400, code: "validation_error" }),
    run: () => send({ method: "GET", path: "/docs/assets/..%2Fpackage.json" }, {}),
  },
  {
    name: "400 for a malformed Idempotency-Key",
    applies: (op) => op.operationId === "createSandbox" || op.operationId === "createWorkspace",
    expected: () => ({ status: 400, code: "validation_error" }),
    run: (op) => send({ ...validRequest(op), headers: { "idempotency-key": "has spaces!" } }),
  },
  {
    name: "409 when an Idempotency-Key is reused with another body",
    applies: (op) => op.operationId === "createSandbox" || op.operationId === "createWorkspace",
    expected: () => ({ status: 409, code: "conflict" }),
    run: async (op) => {
      const first = op.operationId === "createSandbox" ? { ttl: 60 } : { size_limit_mb: 10 };
      const second = op.operationId === "createSandbox" ? { ttl: 61 } : { size_limit_mb: 11 };
      const a = await send({ ...validRequest(op, undefined, { body: first }), headers: { "idempotency-key": "k1" } });
      expect(a.status).toBe(201);
      return send({ ...validRequest(op, undefined, { body: second }), headers: { "idempotency-key": "k1" } });
    },
  },
  {
    name: "404 for an unknown workspace_id",
    applies: (op) => op.operationId === "createSandbox",
    expected: () => ({ status: 404, code: "not_found" }),
    run: (op) => send(validRequest(op, undefined, { body: { workspace_id: "ws-unknown0000000000" } })),
  },
  {
    name: "400 for an unknown profile",
    applies: (op) => op.operationId === "createSandbox",
    expected: () => ({ status: 400, code: "validation_error" }),
    run: (op) => send(validRequest(op, undefined, { body: { profile: "no-such-profile" } })),
  },
  {
    name: "409 for a workspace already used by a sandbox",
    applies: (op) => op.operationId === "createSandbox",
    expected: () => ({ status: 409, code: "conflict" }),
    run: async (op) => {
      const ws = await createWorkspace();
      await createSandbox({ workspace_id: ws });
      return send(validRequest(op, undefined, { body: { workspace_id: ws } }));
    },
  },
  {
    name: "429 quota_exceeded over limits.max_sandboxes_per_owner",
    applies: (op) => op.operationId === "createSandbox",
    expected: () => ({ status: 429, code: "quota_exceeded" }),
    run: async (op) => {
      for (let i = 0; i < QUOTA; i++) await createSandbox();
      const r = await send(validRequest(op));
      expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);
      return r;
    },
  },
  {
    name: "409 deleting a managed workspace whose sandbox lives",
    applies: (op) => op.operationId === "deleteWorkspace",
    expected: () => ({ status: 409, code: "conflict" }),
    run: async (op) => {
      const sb = await send({ method: "GET", path: `/v1/sandboxes/${await createSandbox()}` });
      return send(validRequest(op, sb.body.workspace_id));
    },
  },
  {
    name: "409 extending the TTL of an expired sandbox",
    applies: (op) => op.operationId === "extendSandboxTtl",
    expected: () => ({ status: 409, code: "sandbox_expired" }),
    run: async (op) => {
      const id = await createSandbox({ ttl: 3600 });
      await t.bay.deps.stores.sandboxes.setExpiresAt(id, Date.now() - 1);
      return send(validRequest(op, id));
    },
  },
];

describe("statuses the app produces are the spec's", () => {
  for (const op of OPS) {
    describe(`${op.operationId} (${op.method.toUpperCase()} ${op.path})`, () => {
      for (const probe of PROBES.filter((p) => p.applies(op))) {
        test(probe.name, async () => {
          const want = probe.expected(op);
          const r = await probe.run(op);
          if (!op.statuses.includes(r.status)) {
            throw new Error(
              `${op.operationId} answered ${r.status} (${JSON.stringify(r.body)?.slice(0, 200)}), not in its spec statuses [${op.statuses.join(", ")}]`,
            );
          }
          expect(r.status).toBe(want.status);
          if (r.status >= 400) {
            expectErrorBody(r.res, r.body, want.code);
          } else {
            expect(r.res.headers.get("x-request-id")).toBeTruthy();
            if (r.status === 204) expect(await r.res.text()).toBe("");
            else if (op.successSchema) {
              const parsed = op.successSchema.safeParse(r.body);
              if (!parsed.success) throw new Error(`${op.operationId} success body does not match its schema: ${parsed.error.message}`);
            }
          }
        });
      }
    });
  }
});
