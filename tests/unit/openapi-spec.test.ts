/**
 * The contract itself: openapi/bay.v1.yaml is a valid OpenAPI 3.1 document, the
 * committed generated module matches it, and every operation declares the error
 * responses it can return with the shared ErrorBody schema.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import type { oas31 } from "openapi3-ts";
import { CLIENT_SCHEMA_PATH, generateClientSchema } from "../../scripts/gen/client.ts";
import { generate, loadSpec, SPEC_PATH } from "../../scripts/gen/generate.ts";
import { ERROR_CODES } from "../../src/bay/errors.ts";
import {
  openApiDocument,
  openApiYaml,
  operations,
  zCreateSandboxRequest,
  zErrorBody,
  zSandbox,
  zShellExecRequest,
  zShellProcessDetail,
  type OperationSpec,
} from "../../src/bay/api/generated/index.ts";

const root = join(import.meta.dir, "..", "..");
const specText = readFileSync(join(root, SPEC_PATH), "utf8");
const spec = loadSpec(specText);
const METHODS = ["get", "put", "post", "delete", "patch"] as const;

type Found = { id: string; method: string; path: string; op: oas31.OperationObject; params: string[] };
const found: Found[] = Object.entries(spec.paths ?? {}).flatMap(([path, item]) => {
  const it = item as oas31.PathItemObject;
  return METHODS.flatMap((method) => {
    const op = it[method];
    if (!op) return [];
    const params = [...(it.parameters ?? []), ...(op.parameters ?? [])].map((p) =>
      "$ref" in p ? p.$ref.replace("#/components/parameters/", "") : `${p.in}:${p.name}`,
    );
    return [{ id: op.operationId ?? "", method, path, op, params }];
  });
});

/** The components.responses entry an operation's status points at, with its ErrorBody check. */
function errorResponse(op: oas31.OperationObject, status: string): oas31.ResponseObject | undefined {
  const r = op.responses?.[status] as oas31.ResponseObject | oas31.ReferenceObject | undefined;
  if (!r) return undefined;
  if (!("$ref" in r)) return r;
  return spec.components?.responses?.[r.$ref.replace("#/components/responses/", "")] as oas31.ResponseObject;
}

describe("openapi/bay.v1.yaml", () => {
  test("is a valid OpenAPI 3.1 document", async () => {
    // validate() dereferences in place: give it its own copy.
    const api = await SwaggerParser.validate(structuredClone(spec) as never);
    expect((api as { openapi: string }).openapi).toBe("3.1.0");
  });

  test("the document Bay serves (Bun's YAML parser) equals the yaml package's parse of the same text", () => {
    expect(openApiYaml).toBe(specText);
    expect(JSON.parse(JSON.stringify(openApiDocument()))).toEqual(JSON.parse(JSON.stringify(spec)));
  });

  test("the validator really rejects a broken document", async () => {
    const broken = structuredClone(spec) as unknown as { paths: Record<string, Record<string, unknown>> };
    broken.paths["/v1/profiles"]!.get = { responses: { "200": { content: {} } } }; // response without description
    await expect(SwaggerParser.validate(broken as never)).rejects.toThrow();
  });

  test("generated files are fresh (bun run gen), the TypeScript client's types too", async () => {
    for (const [path, text] of generate(specText)) {
      expect({ path, text: readFileSync(join(root, path), "utf8") }).toEqual({ path, text });
    }
    const client = await generateClientSchema(specText);
    expect(readFileSync(join(root, CLIENT_SCHEMA_PATH), "utf8") === client).toBe(true);
  }, 60_000);

  test("embedded document equals the YAML, and is the YAML text itself", () => {
    expect(JSON.parse(JSON.stringify(openApiDocument()))).toEqual(JSON.parse(JSON.stringify(spec)));
    expect(openApiYaml).toBe(specText);
    // Not a re-emitted copy: the generated module only imports the file.
    expect(readFileSync(join(root, "src/bay/api/generated/spec.ts"), "utf8").split("\n").length).toBeLessThan(20);
  });

  test("info.version is package.json's version (which /health reports)", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    expect(spec.info.version).toBe(pkg.version);
    expect(() => generate(specText, { version: pkg.version })).not.toThrow();
  });

  test("every schema property name is an identifier (an unquoted YAML description cannot smuggle one in)", () => {
    const bad: string[] = [];
    const walk = (v: unknown, at: string) => {
      if (Array.isArray(v)) {
        for (const [i, x] of v.entries()) walk(x, `${at}[${i}]`);
      } else if (v && typeof v === "object") {
        for (const [k, x] of Object.entries(v)) {
          if (k === "properties" && x && typeof x === "object") {
            for (const name of Object.keys(x)) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) bad.push(`${at}.properties.${name}`);
          }
          walk(x, `${at}.${k}`);
        }
      }
    };
    walk(spec.components?.schemas, "components.schemas");
    expect(bad).toEqual([]);
    const truncated = (spec.components!.schemas!.PythonExecResult as oas31.SchemaObject).properties!.truncated;
    expect(Object.keys(truncated ?? {}).sort()).toEqual(["description", "type"]);
  });

  test("headers Bay sends are declared: Idempotent-Replayed, Retry-After, WWW-Authenticate", () => {
    const responses = spec.components?.responses as Record<string, oas31.ResponseObject>;
    const headers = spec.components?.headers as Record<string, oas31.HeaderObject>;
    for (const id of ["createSandbox", "createWorkspace"]) {
      const f = found.find((x) => x.id === id)!;
      const created = f.op.responses?.["201"] as oas31.ResponseObject;
      expect((created.headers!["Idempotent-Replayed"] as oas31.ReferenceObject).$ref).toBe("#/components/headers/IdempotentReplayed");
    }
    expect((responses.Conflict!.headers!["Retry-After"] as oas31.ReferenceObject).$ref).toBe("#/components/headers/RetryAfterInFlight");
    expect((responses.Unauthorized!.headers!["WWW-Authenticate"] as oas31.ReferenceObject).$ref).toBe(
      "#/components/headers/WWWAuthenticate",
    );
    expect(headers.WWWAuthenticate!.required).toBe(true);
    // Every 429 and 503 carries Retry-After: the header they reference is required.
    for (const name of ["QuotaExceeded", "Unavailable"]) {
      const ref = (responses[name]!.headers!["Retry-After"] as oas31.ReferenceObject).$ref;
      expect(headers[ref.replace("#/components/headers/", "")]!.required).toBe(true);
    }
  });

  test("ErrorInfo has one variant per error code, discriminated on code, each with closed details", () => {
    const schemas = spec.components?.schemas as Record<string, oas31.SchemaObject>;
    const info = schemas.ErrorInfo!;
    const codes: string[] = [...ERROR_CODES];
    expect(info.discriminator?.propertyName).toBe("code");
    const mapping = info.discriminator?.mapping ?? {};
    expect(Object.keys(mapping).sort()).toEqual([...codes].sort());
    expect((info.oneOf as oas31.ReferenceObject[]).map((r) => r.$ref).sort()).toEqual(Object.values(mapping).sort());
    const deref = (s: oas31.SchemaObject | oas31.ReferenceObject): oas31.SchemaObject =>
      "$ref" in s && s.$ref ? schemas[s.$ref.replace("#/components/schemas/", "")]! : (s as oas31.SchemaObject);
    for (const [code, ref] of Object.entries(mapping)) {
      const variant = deref({ $ref: ref });
      expect({ code, required: variant.required }).toEqual({ code, required: ["code", "message", "request_id", "details"] });
      expect((variant.properties!.code as oas31.SchemaObject).const).toBe(code);
      const details = deref(variant.properties!.details!);
      expect({ code, closed: details.type === "object" && details.additionalProperties === false }).toEqual({ code, closed: true });
    }
  });

  test("every operation has operationId, summary, description, tags; ids are unique", () => {
    expect(found.length).toBeGreaterThan(0);
    for (const f of found) {
      expect(f.id).not.toBe("");
      expect(f.op.summary ?? "").not.toBe("");
      expect(f.op.description ?? "").not.toBe("");
      expect(f.op.tags?.length ?? 0).toBeGreaterThan(0);
    }
    expect(new Set(found.map((f) => f.id)).size).toBe(found.length);
    expect(Object.keys(operations).sort()).toEqual(found.map((f) => f.id).sort());
  });

  test("every error response uses ErrorBody and carries X-Request-Id", () => {
    for (const f of found) {
      for (const status of Object.keys(f.op.responses ?? {})) {
        const r = errorResponse(f.op, status)!;
        expect(r.headers?.["X-Request-Id"]).toBeDefined();
        if (Number(status) < 400) continue;
        const schema = r.content?.["application/json"]?.schema as oas31.ReferenceObject | undefined;
        expect({ op: f.id, status, ref: schema?.$ref }).toEqual({ op: f.id, status, ref: "#/components/schemas/ErrorBody" });
        if (status === "429" || status === "503") expect(r.headers?.["Retry-After"]).toBeDefined();
      }
    }
  });

  test("every operation declares the errors it can return", () => {
    const missing: string[] = [];
    const need = (f: Found, status: number, why: string) => {
      if (!f.op.responses?.[String(status)]) missing.push(`${f.id} lacks ${status} (${why})`);
    };
    for (const f of found) {
      // Before any route: a request without Host or past server.max_header_bytes; anonymous mode's Host guard.
      need(f, 400, "Host and header limits");
      need(f, 403, "Host guard");
      const authenticated = (f.op.security ?? spec.security ?? []).length > 0;
      if (!authenticated) continue;
      need(f, 401, "authenticated");
      need(f, 429, "rate limit");
      need(f, 500, "always possible");
      if (f.params.length > 0) need(f, 400, "has parameters");
      if (f.path.includes("{")) need(f, 404, "addresses a resource");
      if (f.op.requestBody) need(f, 400, "has a body"), need(f, 413, "has a body");
      if (f.params.includes("IdempotencyKey")) need(f, 409, "idempotency conflict");
      if (/^\/v1\/sandboxes\/\{id\}\/(python|shell|filesystem)\//.test(f.path)) {
        for (const s of [400, 404, 409, 502, 503, 504]) need(f, s, "capability call");
      }
    }
    expect(missing).toEqual([]);
  });

  test("generated operations mirror the spec's statuses and Hono paths", () => {
    for (const f of found) {
      const op: OperationSpec = operations[f.id as keyof typeof operations];
      expect(op.statuses).toEqual(
        Object.keys(f.op.responses ?? {})
          .map(Number)
          .sort((a, b) => a - b),
      );
      expect(op.honoPath).toBe(f.path.replace(/\{(\w+)\}/g, ":$1"));
      expect(op.method).toBe(f.method as OperationSpec["method"]);
    }
  });
});

describe("generated schemas", () => {
  const now = new Date().toISOString();

  test("accept real responses", () => {
    const sandbox = {
      id: "sandbox-abc",
      profile: "python-default",
      workspace_id: "ws-abc",
      status: "idle",
      capabilities: ["python", "shell", "filesystem"],
      created_at: now,
      expires_at: null,
      idle_expires_at: now,
      last_error: null,
    };
    expect(zSandbox.parse(sandbox)).toEqual(sandbox as never);
    expect(zErrorBody.parse({ error: { code: "not_found", message: "m", request_id: "r", details: {} } }).error.code).toBe("not_found");
    expect(
      zShellProcessDetail.safeParse({
        process_id: "p1",
        pid: 7,
        command: "sleep 1",
        status: "exited",
        exit_code: 0,
        signal: null,
        stdin_open: false,
        started_at: now,
        finished_at: now,
        output: "",
        error: "",
        truncated: false,
      }).success,
    ).toBe(true);
  });

  test("request bodies apply defaults and refuse unknown fields", () => {
    expect(zCreateSandboxRequest.parse({})).toEqual({ profile: "python-default" });
    expect(zCreateSandboxRequest.safeParse({ profile: "x", nope: 1 }).success).toBe(false);
    expect(zShellExecRequest.parse({ command: "ls" })).toEqual({ command: "ls", timeout: 30, background: false, stdin: false });
    expect(zShellExecRequest.safeParse({ command: "ls", timeout: 301 }).success).toBe(false);
  });

  test("query and header schemas coerce strings and validate", () => {
    const q = operations.listSandboxes.query;
    expect(q.parse({})).toEqual({ limit: 50 });
    expect(q.parse({ limit: "10", status: "ready" })).toEqual({ limit: 10, status: "ready" });
    expect(q.safeParse({ limit: "201" }).success).toBe(false);
    expect(q.safeParse({ limit: "1.5" }).success).toBe(false);
    expect(operations.listDirectory.query.parse({})).toEqual({ path: "." });
    expect(operations.readFile.query.safeParse({}).success).toBe(false);
    const h = operations.createSandbox.headers;
    expect(h.safeParse({ "idempotency-key": "abc_DEF-1" }).success).toBe(true);
    expect(h.safeParse({ "idempotency-key": "bad key!" }).success).toBe(false);
    expect(h.safeParse({ "idempotency-key": "x".repeat(129) }).success).toBe(false);
  });
});
