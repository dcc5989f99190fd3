/**
 * Hostile paths on the sandbox file routes (through a running Ship) and the
 * workspace file routes (straight from the volume) alike: one path rule, the same
 * status and code on both, a 4xx in the error model and never an engine's text, a
 * container id or an internal endpoint in the body. Real Docker, real Ship image.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { MAX_PATH_DEPTH } from "../../src/bay/domain/paths.ts";
import { createTestBay, pollUntil, type TestBay } from "../support/harness.ts";
import { expectErrorBody } from "../api/support/fixtures.ts";
import { requireShipImages, uploadForm } from "./support/e2e.ts";

let t: TestBay;
let sandbox = "";
let workspace = "";

beforeAll(async () => {
  await requireShipImages();
  t = await createTestBay();
  sandbox = (await t.json("POST", "/v1/sandboxes", { body: {} })).body.id;
  workspace = (await t.json("POST", "/v1/workspaces", { body: {} })).body.id;
  // A file on each side, to be used as a parent ("f.txt/x"); the sandbox's Ship starts here.
  for (const base of bases()) expect((await t.json("PUT", `${base}/files`, { body: { path: "f.txt", content: "file" } })).status).toBe(200);
});
afterAll(async () => {
  await t?.close();
});

const bases = () => [`/v1/sandboxes/${sandbox}/filesystem`, `/v1/workspaces/${workspace}/filesystem`];
const side = (base: string) => (base.includes("/sandboxes/") ? "sandbox" : "workspace");

type Answer = { status: number; body: any; res: Response };

/** Every file operation on one side with `path`; a query value is sent as `query` (already encoded) when given. */
async function everyOperation(base: string, path: string, query = encodeURIComponent(path)): Promise<Record<string, Answer>> {
  const ask = async (method: string, url: string, body?: unknown): Promise<Answer> => {
    const r = await t.json(method, url, body === undefined ? {} : { body });
    return { status: r.status, body: r.body, res: r.res };
  };
  return {
    read: await ask("GET", `${base}/files?path=${query}`),
    write: await ask("PUT", `${base}/files`, { path, content: "x" }),
    list: await ask("GET", `${base}/directories?path=${query}`),
    download: await ask("GET", `${base}/download?path=${query}`),
    upload: await ask("POST", `${base}/upload?path=${query}`, uploadForm(path, "x")),
    delete: await ask("DELETE", `${base}/files?path=${query}`),
  };
}

/** An error body of the spec (typed details, request id) with no engine text, container id, host path or internal endpoint. */
function expectClean(answer: Answer, where: string): void {
  expectErrorBody(answer.res, answer.body);
  const { request_id: _, ...error } = answer.body?.error ?? {};
  const text = JSON.stringify(error);
  for (const leak of [/[0-9a-f]{64}/, /docker|engine|overlay|containerd/i, /\/var\/lib/, /https?:\/\//, /127\.0\.0\.1/]) {
    expect({ where, leak: leak.test(text) ? text : null }).toEqual({ where, leak: null });
  }
}

const HOSTILE: Array<[string, string, string]> = [
  ["a segment of 200 characters but 400 bytes", "é".repeat(200), "invalid_path"],
  ["a segment of 255 bytes under a segment of 86 characters and 258 bytes", `${"文".repeat(86)}/${"x".repeat(255)}`, "invalid_path"],
  ["2,000 segments", Array(2000).fill("a").join("/"), "invalid_path"],
  [
    `${MAX_PATH_DEPTH + 1} segments`,
    Array(MAX_PATH_DEPTH + 1)
      .fill("d")
      .join("/"),
    "invalid_path",
  ],
  ["a parent that is a file", "f.txt/x", "invalid_path"],
  ["a parent that is a file, deeper", "f.txt/x/y/z", "invalid_path"],
];

describe("hostile paths answer the same 4xx on sandbox and workspace routes", () => {
  for (const [name, path, code] of HOSTILE) {
    test(name, async () => {
      const [onSandbox, onWorkspace] = await Promise.all(bases().map((b) => everyOperation(b, path)));
      for (const [op, answer] of Object.entries(onSandbox!)) {
        const other = onWorkspace![op]!;
        expect({ op, sandbox: [answer.status, answer.body?.error?.code], workspace: [other.status, other.body?.error?.code] }).toEqual({
          op,
          sandbox: [400, code],
          workspace: [400, code],
        });
        expectClean(answer, `sandbox ${op}`);
        expectClean(other, `workspace ${op}`);
      }
    });
  }

  test("a parent that is a file is named as such on both sides", async () => {
    for (const base of bases()) {
      const r = await t.json("GET", `${base}/files?path=f.txt/x`);
      expect({ side: side(base), reason: r.body.error.details.reason }).toEqual({
        side: side(base),
        reason: "a parent is not a directory",
      });
    }
  });

  test("a lone surrogate in a JSON path is refused on both sides; its percent-encoded bytes are a plain name on both", async () => {
    for (const base of bases()) {
      for (const path of ["x\uD800y", "\uDC00"]) {
        const r = await t.json("PUT", `${base}/files`, { body: { path, content: "x" } });
        expect({ side: side(base), status: r.status, code: r.body.error.code }).toEqual({
          side: side(base),
          status: 400,
          code: "invalid_path",
        });
      }
      // A surrogate cannot travel in a URL: its CESU-8 bytes stay percent-encoded text, a valid (missing) name.
      const r = await t.json("GET", `${base}/files?path=x%ED%A0%80y`);
      expect({ side: side(base), status: r.status, code: r.body.error.code }).toEqual({
        side: side(base),
        status: 404,
        code: "file_not_found",
      });
    }
  });

  test("a//b is a/b on both sides", async () => {
    for (const base of bases()) {
      const w = await t.json("PUT", `${base}/files`, { body: { path: "a//b", content: `on ${side(base)}` } });
      expect({ side: side(base), status: w.status, path: w.body.path }).toEqual({ side: side(base), status: 200, path: "a/b" });
      expect((await t.json("GET", `${base}/files?path=${encodeURIComponent("a//b")}`)).body).toEqual({
        path: "a/b",
        content: `on ${side(base)}`,
      });
    }
  });

  test("the workspace routes leave no helper behind after hostile paths", async () => {
    const helpers = async () =>
      (await t.bay.driver.listContainers({ instance_id: t.bay.instanceId })).filter((c) => c.labels.role === "workspace-helper");
    expect(await pollUntil(helpers, (h) => h.length === 0, 15_000)).toEqual([]);
  });
});
