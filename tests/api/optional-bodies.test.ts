/**
 * Create routes whose JSON body is optional, called the way generated clients
 * call them: with `Content-Type: application/json` and no body at all.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";

let t: TestBay;
beforeEach(async () => {
  t = await createTestBay();
});
afterEach(async () => {
  await t.close();
});

describe.each([["/v1/sandboxes"], ["/v1/workspaces"]])("POST %s", (path) => {
  test.each([
    ["no body, no Content-Type", {}, undefined],
    ["no body, Content-Type: application/json", { "content-type": "application/json" }, undefined],
    ["whitespace body, Content-Type: application/json", { "content-type": "application/json" }, "  \n"],
    ["{} body", { "content-type": "application/json" }, "{}"],
  ])("%s → 201 with defaults", async (_name, headers, body) => {
    const r = await t.json("POST", path, { headers, ...(body !== undefined ? { body } : {}) });
    expect(r.status).toBe(201);
    if (path === "/v1/sandboxes") expect(r.body.profile).toBe("python-default");
    else expect(r.body.managed).toBe(false);
  });

  test.each([
    ["malformed JSON", { "content-type": "application/json" }, "{nope"],
    ["a non-JSON body", { "content-type": "text/plain" }, "profile=python-data"],
    ["an unknown field", { "content-type": "application/json" }, '{"nope":1}'],
  ])("%s → 400 validation_error, nothing created", async (_name, headers, body) => {
    const r = await t.json("POST", path, { headers, body });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("validation_error");
    const list = await t.json("GET", path);
    expect(list.body.items).toEqual([]);
  });
});

test("ttl above the documented maximum (10 years) is refused before anything is stored", async () => {
  const r = await t.json("POST", "/v1/sandboxes", { body: { ttl: 9007199254740991 } });
  expect(r.status).toBe(400);
  expect(r.body.error.code).toBe("validation_error");
  const list = await t.json("GET", "/v1/sandboxes");
  expect(list.status).toBe(200);
  expect(list.body.items).toEqual([]);
  expect((await t.json("POST", "/v1/sandboxes", { body: { ttl: 315360000 } })).status).toBe(201);
});

describe("a required JSON body sent as another type", () => {
  test.each([
    ["form-encoded", "application/x-www-form-urlencoded", "code=1"],
    ["text/plain", "text/plain", '{"code":"1"}'],
    ["no Content-Type", undefined, '{"code":"1"}'],
  ])("%s → 400 validation_error naming the Content-Type, not a missing field", async (_name, type, body) => {
    const created = await t.json("POST", "/v1/sandboxes", { body: {} });
    const r = await t.json("POST", `/v1/sandboxes/${created.body.id}/python/exec`, {
      headers: type ? { "content-type": type } : {},
      body,
    });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("validation_error");
    expect(r.body.error.message).toBe("a request body must be JSON (Content-Type: application/json)");
  });

  test("Content-Type: application/json with an empty body → 400 validation_error saying the body is empty", async () => {
    const created = await t.json("POST", "/v1/sandboxes", { body: {} });
    for (const body of ["", "  \n"]) {
      const r = await t.json("POST", `/v1/sandboxes/${created.body.id}/python/exec`, {
        headers: { "content-type": "application/json" },
        body,
      });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe("validation_error");
      expect(r.body.error.message).toBe("the request body is empty: a JSON object is expected (Content-Type: application/json)");
    }
  });

  test("truncated or invalid JSON → 400 validation_error saying so, with the parser's reason", async () => {
    const created = await t.json("POST", "/v1/sandboxes", { body: {} });
    for (const body of ['{"code": "1"', '{"code": ', "{code: 1}"]) {
      const r = await t.json("POST", `/v1/sandboxes/${created.body.id}/python/exec`, {
        headers: { "content-type": "application/json" },
        body,
      });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe("validation_error");
      expect(r.body.error.message).toMatch(/^the request body is not valid JSON \(.+\)$/);
    }
  });

  test("a JSON body with a field missing still names the field", async () => {
    const created = await t.json("POST", "/v1/sandboxes", { body: {} });
    const r = await t.json("POST", `/v1/sandboxes/${created.body.id}/python/exec`, { body: { cod: "1" } });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain("code");
  });
});
