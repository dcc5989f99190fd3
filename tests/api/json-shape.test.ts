/**
 * A JSON body too many values or too deep to parse cheaply is refused before any
 * parser sees it, on every door that takes JSON (review s87: 2 MiB of nested brackets
 * cost Bay's event loop 0.2-0.7 s to parse): Bay's routes, an idempotent create,
 * MCP, E2B's interpreter and envd's Connect calls, unary and streamed. Memory driver
 * (fake Ship), real app and libSQL.
 */
import { afterEach, expect, test } from "bun:test";
import { MAX_JSON_DEPTH } from "../../src/protocol/json-shape.ts";
import { createMemoryBay, e2bSandbox, type MemoryBay, newSandbox } from "./support/memory-bay.ts";

let t: MemoryBay | null = null;
afterEach(async () => {
  await t?.close();
  t?.engine.shutdown();
  t = null;
});

const deep = (inner: string) => `{"code":${"[".repeat(MAX_JSON_DEPTH)}${inner}${"]".repeat(MAX_JSON_DEPTH)}}`;
const many = `{"code":"1","env":{${Array.from({ length: 6000 }, (_, i) => `"V${i}":"x"`).join(",")}}}`;
const json = { "content-type": "application/json" };

test("Bay's routes and MCP: 400 validation_error naming the limit, before the parser", async () => {
  t = await createMemoryBay();
  const id = await newSandbox(t);
  for (const body of [deep("1"), many]) {
    const r = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body, headers: json });
    expect([r.status, r.body.error.code, r.body.error.details.issues[0].path]).toEqual([400, "validation_error", "json"]);
    expect(r.body.error.message).toMatch(/^the JSON body (nests deeper than 64 levels|holds more than 10000 values): not parsed$/);
  }
  const mcp = await t.json("POST", "/mcp", { body: deep("1"), headers: { ...json, accept: "application/json" } });
  expect([mcp.status, mcp.body.error.message]).toEqual([400, "the JSON body nests deeper than 64 levels: not parsed"]);
  // An ordinary body still runs.
  expect((await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: JSON.stringify({ code: "1+1" }), headers: json })).status).toBe(
    200,
  );
});

test("an idempotent create with such a body is refused, and answered the same when sent again under its key", async () => {
  t = await createMemoryBay();
  const headers = { ...json, "idempotency-key": "shape-1" };
  const body = `{"metadata":${deep('"x"')}}`;
  const bad = await t.json("POST", "/v1/sandboxes", { body, headers });
  expect([bad.status, bad.body.error.message]).toEqual([400, "the JSON body nests deeper than 64 levels: not parsed"]);
  const again = await t.json("POST", "/v1/sandboxes", { body, headers });
  expect([again.status, again.res.headers.get("idempotent-replayed")]).toEqual([400, "true"]);
  expect((await t.json("GET", "/v1/sandboxes")).body.items).toEqual([]);
});

test("E2B: /execute and envd's Connect calls, unary and streamed, refuse it as invalid_argument", async () => {
  t = await createMemoryBay();
  const { auth } = await e2bSandbox(t);
  const exec = await t.bay.app.request("/e2b/execute", { method: "POST", headers: { ...auth, ...json }, body: deep('"x"') });
  expect(exec.status).toBe(400);

  // Every spelling Connect reads as JSON is judged.
  for (const type of ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON;charset=UTF8"]) {
    const unary = await t.bay.app.request("/e2b/filesystem.Filesystem/Stat", {
      method: "POST",
      headers: { ...auth, "content-type": type },
      body: `{"path":"/home/user","x":${"[".repeat(MAX_JSON_DEPTH + 1)}${"]".repeat(MAX_JSON_DEPTH + 1)}}`,
    });
    const err = (await unary.json()) as { code: string; message: string };
    expect({ type, status: unary.status, code: err.code }).toEqual({ type, status: 400, code: "invalid_argument" });
    expect(err.message).toContain("nests deeper");
  }

  const message = new TextEncoder().encode(`{"process":{"cmd":"true"},"x":${"[{}".repeat(6000)}${"]".repeat(6000)}}`);
  const frame = new Uint8Array(5 + message.length);
  new DataView(frame.buffer).setUint32(1, message.length);
  frame.set(message, 5);
  const stream = await t.bay.app.request("/e2b/process.Process/Start", {
    method: "POST",
    headers: { ...auth, "content-type": "application/connect+json" },
    body: frame,
  });
  expect(stream.status).toBe(200);
  const bytes = new Uint8Array(await stream.arrayBuffer());
  expect(bytes[0]).toBe(0x02);
  const end = JSON.parse(new TextDecoder().decode(bytes.subarray(5))) as { error: { code: string; message: string } };
  expect(end.error.code).toBe("invalid_argument");

  // Protobuf: too many fields is refused the same way, before Connect decodes them (review s90 M2).
  const fields = new Uint8Array(2 * 20_000);
  for (let i = 0; i < fields.length; i += 2) fields[i] = 0x78;
  const proto = await t.bay.app.request("/e2b/filesystem.Filesystem/Stat", {
    method: "POST",
    headers: { ...auth, "content-type": "application/proto" },
    body: Buffer.concat([Uint8Array.from([0x0a, 0x01, 0x2f]), fields]),
  });
  expect([proto.status, ((await proto.json()) as { code: string }).code]).toEqual([400, "invalid_argument"]);

  // A readable call is served as before.
  const ok = await t.bay.app.request("/e2b/process.Process/List", { method: "POST", headers: { ...auth, ...json }, body: "{}" });
  expect(ok.status).toBe(200);
});
