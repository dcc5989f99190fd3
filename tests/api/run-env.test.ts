/**
 * Environment variables handed to user code (a run's, a command's, an E2B
 * sandbox's): a bad name or value is refused in the error model before any
 * runtime starts, and a refused E2B create leaves nothing behind. In process,
 * on the memory driver (the end-to-end cases are in tests/ship and e2b-sdk).
 */
import { describe, expect, test } from "bun:test";
import { type TestBay, testBays } from "../support/harness.ts";

const bay = testBays();

const BAD: Array<[Record<string, unknown>, string]> = [
  [{ "A=B": "x" }, "A=B"],
  [{ "": "x" }, '""'],
  [{ "A\u0000": "x" }, "A"],
  [{ A: "x\u0000y" }, "A"],
  [{ "A\ud800": "x" }, "lone surrogate"],
  [{ A: "x\udc00" }, "lone surrogate"],
  [Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`V${i}`, "x"])), "at most 1024"],
  [{ BIG: "x".repeat(64 * 1024) }, "bytes"],
];

describe("/v1: env of a run or a command", () => {
  test("a bad variable is 400 validation_error naming it, and no runtime starts", async () => {
    const t = await bay();
    const id = (await t.json("POST", "/v1/sandboxes", { body: {} })).body.id;
    for (const [env, says] of BAD) {
      for (const [path, body] of [
        ["python/exec", { code: "1", env }],
        ["code/exec", { code: "1", env }],
        ["code/exec", { code: "1", language: "javascript", env }],
        ["shell/exec", { command: "true", env }],
      ] as const) {
        const res = await t.json("POST", `/v1/sandboxes/${id}/${path}`, { body });
        expect([path, res.status, res.body.error.code]).toEqual([path, 400, "validation_error"]);
        expect(res.body.error.message).toContain(says);
      }
    }
    // Bay's own API has no base_env: that is E2B's sandbox-wide set, sent by Bay itself.
    const base = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "1", base_env: { A: "1" } } });
    expect(base.status).toBe(400);
    expect((await t.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("idle");
    // A good one runs.
    const ok = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "1", env: { GOOD: "x y=z ✓" } } });
    expect(ok.status).toBe(200);
  });
});

describe("E2B: a sandbox's envVars and a run's env_vars", () => {
  const e2b = async (t: TestBay, path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await t.bay.app.request(`/e2b${path}`, {
      method: "POST",
      headers: { "x-owner": "alice", "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };

  test("a create with a bad variable is 400 in E2B's shape and creates nothing", async () => {
    const t = await bay();
    for (const [envVars] of BAD) {
      const res = await e2b(t, "/v2/sandboxes", { templateID: "base", envVars });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 400, message: expect.stringContaining("envVars") });
    }
    // Half the limit: a call's own variables are merged with the sandbox's, and both must fit.
    const half = Object.fromEntries(Array.from({ length: 513 }, (_, i) => [`V${i}`, "x"]));
    expect((await e2b(t, "/v2/sandboxes", { templateID: "base", envVars: half })).body.message).toContain("at most 512");
    expect((await t.json("GET", "/v1/sandboxes")).body.items).toEqual([]);
  });

  test("a run with a bad env_vars is 400 in E2B's shape before the runtime starts", async () => {
    const t = await bay();
    const sb = (await e2b(t, "/v2/sandboxes", { templateID: "code-interpreter-v1", envVars: { FROM_CREATE: "1" } })).body;
    const headers = { "e2b-sandbox-id": sb.sandboxID, "x-access-token": sb.envdAccessToken };
    const bad = await e2b(t, "/execute", { code: "1", env_vars: { "A=B": "x" } }, headers);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 400, message: expect.stringContaining("A=B") });
    const tooMany = Object.fromEntries(Array.from({ length: 513 }, (_, i) => [`V${i}`, "x"]));
    const half = await e2b(t, "/execute", { code: "1", env_vars: tooMany }, headers);
    expect(half.body).toMatchObject({ code: 400, message: expect.stringContaining("at most 512") });
    expect((await t.json("GET", `/v1/sandboxes/${sb.sandboxID}`)).body.status).toBe("idle");
  });
});
