/**
 * Code contexts through Bay, refused (contexts.test.ts has what works): another
 * owner's or another sandbox's ids are 404 on every context route, a profile
 * without the language and the profile's context cap are refused before they
 * cost anything, and malformed bodies are 400. Real Docker, the real Ship image.
 */
import { describe, expect, test } from "bun:test";
import { zErrorBody } from "../../src/bay/api/generated/index.ts";
import type { TestBay } from "../support/harness.ts";
import { codeExec, newContext as createContext } from "./support/contexts.ts";
import { containersOf, profiles, SHIP_IMAGE, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay), {
  config: {
    profiles: profiles(
      { id: "python-default", image: SHIP_IMAGE },
      { id: "two-contexts", image: SHIP_IMAGE, max_contexts: 2 },
      { id: "python-only", image: SHIP_IMAGE, languages: ["python"] },
    ),
  },
});

const code = (id: string, body: Record<string, unknown>, owner?: string) => codeExec(t, id, body, owner);
const newContext = (id: string, body: Record<string, unknown>) => createContext(t, id, body);

describe("code contexts: refusals", () => {
  test("another owner's sandbox, another sandbox's context, an unknown context: 404 on every context route", async () => {
    await withSandbox(t, async (id) => {
      const ctx = await newContext(id, { language: "python" });
      await withSandbox(t, async (other) => {
        const tries: Array<[string, string, unknown, string?]> = [
          ["GET", `/v1/sandboxes/${id}/contexts`, undefined, "mallory"],
          ["POST", `/v1/sandboxes/${id}/contexts`, { language: "python" }, "mallory"],
          ["GET", `/v1/sandboxes/${id}/contexts/${ctx}`, undefined, "mallory"],
          ["DELETE", `/v1/sandboxes/${id}/contexts/${ctx}`, undefined, "mallory"],
          ["POST", `/v1/sandboxes/${id}/contexts/${ctx}/restart`, undefined, "mallory"],
          ["POST", `/v1/sandboxes/${id}/code/exec`, { code: "1", context_id: ctx }, "mallory"],
          ["GET", `/v1/sandboxes/${other}/contexts/${ctx}`, undefined],
          ["POST", `/v1/sandboxes/${other}/code/exec`, { code: "1", context_id: ctx }],
          ["DELETE", `/v1/sandboxes/${other}/contexts/${ctx}`, undefined],
          ["POST", `/v1/sandboxes/${id}/contexts/ctx-unknown/restart`, undefined],
          // Odd ids reach the runtime as one opaque segment and are simply unknown there.
          ...[
            "ctx-default-ruby",
            "ctx-default-javascript", // a default context not started yet
            `ctx-${"a".repeat(124)}`,
            "..%2Fhealth",
            "%2e%2e%2f..%2fmeta",
            "%252e%252e",
            "ctx-%00",
            "ctx%0Ax",
            "ctx-%C3%BC%F0%9F%98%80",
            "ctx-%FF",
            "%20",
          ].flatMap(
            (odd): Array<[string, string, unknown]> => [
              ["GET", `/v1/sandboxes/${id}/contexts/${odd}`, undefined],
              ["DELETE", `/v1/sandboxes/${id}/contexts/${odd}`, undefined],
              ["POST", `/v1/sandboxes/${id}/contexts/${odd}/restart`, undefined],
            ],
          ),
          ["POST", `/v1/sandboxes/${id}/code/exec`, { code: "1", context_id: "../../ipython/exec" }],
          ["POST", `/v1/sandboxes/${id}/code/exec`, { code: "1", context_id: "ctx-\u0000" }],
        ];
        for (const [method, path, body, owner] of tries) {
          const res = await t.json(method, path, { ...(body ? { body } : {}), ...(owner ? { owner } : {}) });
          expect([method, path, owner, res.status, res.body.error?.code]).toEqual([method, path, owner, 404, "not_found"]);
          expect(zErrorBody.safeParse(res.body).success).toBe(true);
        }
        // A dot segment is resolved by URL parsing before any route sees it (as Bun.serve does):
        // whatever it lands on, it never deletes or restarts the sandbox or a context.
        for (const dots of ["%2e%2e", "..", "%2E", "."]) {
          for (const [method, suffix] of [
            ["DELETE", ""],
            ["POST", "/restart"],
            ["GET", ""],
          ] as const) {
            const res = await t.json(method, `/v1/sandboxes/${id}/contexts/${dots}${suffix}`);
            expect([method, dots, suffix, [404, 405].includes(res.status)]).toEqual([method, dots, suffix, true]);
          }
        }
        expect((await t.json("GET", `/v1/sandboxes/${id}`)).status).toBe(200);
        // Still there for its owner, in its own sandbox.
        expect((await code(id, { context_id: ctx, code: "1 + 1" })).body.output).toBe("2\n");
      });
    });
  });

  test("a profile without the language: 400 capability_not_supported before any container starts", async () => {
    await withSandbox(
      t,
      async (id) => {
        for (const [path, body] of [
          [`/v1/sandboxes/${id}/contexts`, { language: "javascript" }],
          [`/v1/sandboxes/${id}/code/exec`, { code: "1", language: "typescript" }],
        ] as const) {
          const res = await t.json("POST", path, { body });
          expect(res.status).toBe(400);
          expect(res.body.error).toMatchObject({
            code: "capability_not_supported",
            details: { profile: "python-only", language: body.language, languages: ["python"] },
          });
        }
        expect(await containersOf(t, id)).toEqual([]);
        expect((await code(id, { code: "'py ok'" })).body.output).toBe("'py ok'\n");
      },
      "python-only",
    );
  });

  test("the profile's context cap: 429 quota_exceeded past it, with Retry-After; deleting one frees a place", async () => {
    await withSandbox(
      t,
      async (id) => {
        const first = await newContext(id, { language: "python" });
        await newContext(id, { language: "javascript" });
        const over = await t.json("POST", `/v1/sandboxes/${id}/contexts`, { body: { language: "typescript" } });
        expect(over.status).toBe(429);
        expect(over.body.error).toMatchObject({ code: "quota_exceeded", details: { max_contexts: 2 } });
        expect(Number(over.res.headers.get("retry-after"))).toBeGreaterThan(0);
        expect((await t.call("DELETE", `/v1/sandboxes/${id}/contexts/${first}`)).status).toBe(204);
        await newContext(id, { language: "typescript" });
      },
      "two-contexts",
    );
  });

  test("malformed bodies are 400 before any container starts", async () => {
    await withSandbox(t, async (id) => {
      const cases: Array<[string, unknown, string]> = [
        ["contexts", { language: "ruby" }, "validation_error"],
        ["contexts", {}, "validation_error"],
        ["contexts", { language: "python", cwd: "../up" }, "invalid_path"],
        ["contexts", { language: "python", cwd: "/abs" }, "invalid_path"],
        ["contexts", { language: "python", extra: true }, "validation_error"],
        ["code/exec", { code: "" }, "validation_error"],
        ["code/exec", { code: "1", timeout: 0 }, "validation_error"],
        ["code/exec", { code: "1", language: "cobol" }, "validation_error"],
        ["code/exec", { code: "1", context_id: "" }, "validation_error"],
        ["code/exec", { code: 1 }, "validation_error"],
        ["code/exec", "not json", "validation_error"],
      ];
      for (const [route, body, errorCode] of cases) {
        const res = await t.json("POST", `/v1/sandboxes/${id}/${route}`, {
          body: typeof body === "string" ? body : body,
          headers: { "content-type": "application/json" },
        });
        expect([route, JSON.stringify(body), res.status, res.body.error?.code]).toEqual([route, JSON.stringify(body), 400, errorCode]);
      }
      const long = `ctx-${"a".repeat(125)}`;
      for (const [method, path] of [
        ["GET", `/v1/sandboxes/${id}/contexts/${long}`],
        ["DELETE", `/v1/sandboxes/${id}/contexts/${long}`],
        ["POST", `/v1/sandboxes/${id}/contexts/${long}/restart`],
      ] as const) {
        const res = await t.json(method, path);
        expect([method, res.status, res.body.error?.code]).toEqual([method, 400, "validation_error"]);
      }
      const longInBody = await code(id, { code: "1", context_id: long });
      expect([longInBody.status, longInBody.body.error?.code]).toEqual([400, "validation_error"]);
      expect(await containersOf(t, id)).toEqual([]);
      // A language that does not match the context named: known only to the runtime, still a 400.
      const mismatch = await code(id, { code: "1", context_id: "ctx-default-python", language: "javascript" });
      expect([mismatch.status, mismatch.body.error.code]).toEqual([400, "validation_error"]);
    });
  });
});
