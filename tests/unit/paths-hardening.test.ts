/**
 * Path rules, table-driven: every bad path on every sandbox (and workspace) file
 * route and the shell `cwd` is refused by Bay with 400 invalid_path before any
 * container starts. Query values are sent percent-encoded as a client would, so
 * the server sees exactly the table's string; "%2e%2e" rows are the double-encoded
 * attacks (the wire carries %252e%252e).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { DOT_SEGMENT_REASON, WORKSPACE_ROOT_REASON } from "../../src/protocol/ship/constants.ts";
import { MAX_PATH_BYTES, normalizeFilePath, normalizeRemovablePath, normalizeWorkspacePath } from "../../src/bay/domain/paths.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";

const BAD: Array<[string, string]> = [
  ["absolute", "/etc/passwd"],
  ["absolute root", "/"],
  ["home", "~/x"],
  ["dotdot", ".."],
  ["dotdot prefix", "../x"],
  ["dotdot inside", "a/../../x"],
  ["dotdot after dot", "./a/./../../etc"],
  ["encoded dots", "%2e%2e/x"],
  ["encoded dots upper", "%2E%2E/etc/passwd"],
  ["encoded slash", "..%2fetc"],
  ["encoded backslash", "..%5cetc"],
  ["encoded NUL", "a%00b"],
  ["NUL", "a\u0000b"],
  ["control char", "a\nb"],
  ["backslash", "..\\x"],
  ["windows absolute", "C:\\Windows"],
  ["overlong", "a/".repeat(MAX_PATH_BYTES)],
  ["overlong segment", "x".repeat(300)],
];
const GOOD: Array<[string, string]> = [
  ["a.txt", "a.txt"],
  ["./a/b/../c.txt", "a/c.txt"],
  ["dir/", "dir"],
  [".", "."],
  ["a..b/..c", "a..b/..c"],
  ["100%.txt", "100%.txt"],
];

describe("normalizeWorkspacePath", () => {
  test.each(BAD)("refuses %s", (_name, path) => {
    expect(() => normalizeWorkspacePath(path)).toThrow(expect.objectContaining({ code: "invalid_path" }));
  });
  test.each(GOOD)("accepts %p", (path, normalised) => {
    expect(normalizeWorkspacePath(path)).toBe(normalised);
  });
  test("error details never carry more than 256 characters of the path", () => {
    expect.assertions(2);
    try {
      normalizeWorkspacePath("/" + "y".repeat(10_000));
      throw new Error("normalizeWorkspacePath accepted an absolute 10 000-character path");
    } catch (e) {
      expect((e as { code?: string }).code).toBe("invalid_path");
      expect(JSON.stringify((e as { details: unknown }).details).length).toBeLessThan(400);
    }
  });
});

let t: TestBay;
let sandbox = "";
let workspace = "";

beforeAll(async () => {
  t = await createTestBay({ config: { limits: { max_body_bytes: 64 * 1024 } } as any });
  sandbox = (await t.json("POST", "/v1/sandboxes", { body: {} })).body.id;
  workspace = (await t.json("POST", "/v1/workspaces", { body: {} })).body.id;
});
afterAll(async () => {
  await t?.close();
});

type Send = (path: string) => Promise<{ status: number; body: any }>;
const q = (p: string) => encodeURIComponent(p);
const ROUTES: Array<[string, Send]> = [
  ["read", (p) => t.json("GET", `/v1/sandboxes/${sandbox}/filesystem/files?path=${q(p)}`)],
  ["delete", (p) => t.json("DELETE", `/v1/sandboxes/${sandbox}/filesystem/files?path=${q(p)}`)],
  ["list", (p) => t.json("GET", `/v1/sandboxes/${sandbox}/filesystem/directories?path=${q(p)}`)],
  ["download", (p) => t.json("GET", `/v1/sandboxes/${sandbox}/filesystem/download?path=${q(p)}`)],
  ["write", (p) => t.json("PUT", `/v1/sandboxes/${sandbox}/filesystem/files`, { body: { path: p, content: "x" } })],
  [
    "upload (form field)",
    (p) => {
      const form = new FormData();
      form.append("path", p);
      form.append("file", new Blob(["x"]), "x.txt");
      return t.json("POST", `/v1/sandboxes/${sandbox}/filesystem/upload`, { body: form });
    },
  ],
  [
    "upload (?path=)",
    (p) => {
      const form = new FormData();
      form.append("file", new Blob(["x"]), "x.txt");
      return t.json("POST", `/v1/sandboxes/${sandbox}/filesystem/upload?path=${q(p)}`, { body: form });
    },
  ],
  ["shell cwd", (p) => t.json("POST", `/v1/sandboxes/${sandbox}/shell/exec`, { body: { command: "pwd", cwd: p } })],
  ["workspace read", (p) => t.json("GET", `/v1/workspaces/${workspace}/filesystem/files?path=${q(p)}`)],
  ["workspace write", (p) => t.json("PUT", `/v1/workspaces/${workspace}/filesystem/files`, { body: { path: p, content: "x" } })],
];

describe("every file route and shell cwd refuse bad paths before any container starts", () => {
  // Checked after every row, so each row on its own proves it started nothing.
  afterEach(async () => {
    expect(await t.bay.driver.listContainers({ instance_id: t.bay.instanceId })).toHaveLength(0);
    expect((await t.json("GET", `/v1/sandboxes/${sandbox}`)).body.status).toBe("idle");
  });

  for (const [route, send] of ROUTES) {
    test.each(BAD)(`${route}: %s → 400`, async (name, path) => {
      const r = await send(path);
      expect(r.status).toBe(400);
      if (name.startsWith("overlong")) {
        // The spec caps some fields (cwd ≤ 4096): an overlong value may be a schema 400 instead.
        expect(["invalid_path", "validation_error"]).toContain(r.body.error.code);
      } else {
        expect(r.body.error.code).toBe("invalid_path");
        expect(r.body.error.details.reason).toBeTruthy();
      }
    });
  }
});

/** Paths that are fine to read or list but name no file to write: the root, or a directory (`dir/`). */
const NOT_A_FILE: Array<[string, string, string]> = [
  ["the root", ".", WORKSPACE_ROOT_REASON],
  ["the root, spelled ./", "./", WORKSPACE_ROOT_REASON],
  ["a directory", "dir/", "names a directory, not a file"],
  ["a directory, spelled dir/.", "dir/.", "names a directory, not a file"],
  ["a directory, spelled dir/sub/..", "dir/sub/..", "names a directory, not a file"],
];

/** What a delete refuses: the root, and a last segment of `.` or `..` (as `rm -r` refuses it), whatever the path normalises to. */
const NOT_REMOVABLE: Array<[string, string, string]> = [
  ["the root", ".", WORKSPACE_ROOT_REASON],
  ["the root, spelled a/..", "a/..", WORKSPACE_ROOT_REASON],
  ["a directory, spelled dir/.", "dir/.", DOT_SEGMENT_REASON],
  ["a directory, spelled dir/./", "dir/./", DOT_SEGMENT_REASON],
  ["a parent, spelled t/file/..", "t/file/..", DOT_SEGMENT_REASON],
  ["a parent, spelled t/sub/../", "t/sub/../", DOT_SEGMENT_REASON],
];

describe("a delete's path is neither the root nor one ending in . or ..", () => {
  test.each(NOT_REMOVABLE)("normalizeRemovablePath refuses %s", (_name, path, reason) => {
    expect(() => normalizeRemovablePath(path)).toThrow(expect.objectContaining({ code: "invalid_path", details: { path, reason } }));
  });
  test("it accepts a file, a directory spelled dir/, and `..` before the last segment", () => {
    expect(["t/file", "dir/", "dir//", "./t/sub/../file", "..a", "a/.b"].map(normalizeRemovablePath)).toEqual([
      "t/file",
      "dir",
      "dir",
      "t/file",
      "..a",
      "a/.b",
    ]);
  });
});

describe("a file's path (writes and uploads) is neither the root nor a directory", () => {
  test.each(NOT_A_FILE)("normalizeFilePath refuses %s", (_name, path, reason) => {
    expect(() => normalizeFilePath(path)).toThrow(expect.objectContaining({ code: "invalid_path", details: { path, reason } }));
  });
  test("it accepts what names a file", () => {
    expect(normalizeFilePath("./a/b/../c.txt")).toBe("a/c.txt");
  });

  const upload = (url: string, p: string) => {
    const form = new FormData();
    form.append("path", p);
    form.append("file", new Blob(["x"]), "x.txt");
    return t.json("POST", url, { body: form });
  };
  const FILE_ROUTES: Array<[string, Send]> = [
    ["sandbox write", (p) => t.json("PUT", `/v1/sandboxes/${sandbox}/filesystem/files`, { body: { path: p, content: "x" } })],
    ["sandbox upload", (p) => upload(`/v1/sandboxes/${sandbox}/filesystem/upload`, p)],
    ["workspace write", (p) => t.json("PUT", `/v1/workspaces/${workspace}/filesystem/files`, { body: { path: p, content: "x" } })],
    ["workspace upload", (p) => upload(`/v1/workspaces/${workspace}/filesystem/upload`, p)],
  ];
  afterEach(async () => {
    expect(await t.bay.driver.listContainers({ instance_id: t.bay.instanceId })).toHaveLength(0);
  });
  for (const [route, send] of FILE_ROUTES) {
    test.each(NOT_A_FILE)(`${route}: %s → 400 invalid_path with its reason`, async (_name, path, reason) => {
      const r = await send(path);
      expect({ status: r.status, code: r.body.error?.code, details: r.body.error?.details }).toEqual({
        status: 400,
        code: "invalid_path",
        details: { path, reason },
      });
    });
  }
  for (const [route, url] of [
    ["sandbox delete", () => `/v1/sandboxes/${sandbox}/filesystem/files?path=.`],
    ["workspace delete", () => `/v1/workspaces/${workspace}/filesystem/files?path=.`],
  ] as const) {
    test(`${route} of the root → 400 invalid_path, reason ${JSON.stringify(WORKSPACE_ROOT_REASON)}`, async () => {
      const r = await t.json("DELETE", url());
      expect({ status: r.status, details: r.body.error?.details }).toEqual({
        status: 400,
        details: { path: ".", reason: WORKSPACE_ROOT_REASON },
      });
    });
  }
});
