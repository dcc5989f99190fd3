/**
 * envd's multipart `POST /files` on the real engine: a form whose later part
 * Ship would refuse on the disk as it is (an existing directory, a file on the
 * way, a symlink that dangles or leaves the home, a directory the sandbox
 * locked) writes none of its parts, and
 * is answered as Ship answers that part written alone. Targets through a
 * symlinked directory inside the home are still written.
 */
import { describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { type E2bCreated, e2bSandboxBay } from "./support/e2b.ts";

let t: TestBay;
let sb: E2bCreated;

e2bSandboxBay(async (bay, created) => {
  t = bay;
  sb = created;
  const setup = await t.json("POST", `/v1/sandboxes/${sb.sandboxID}/shell/exec`, {
    body: {
      command:
        "mkdir -p mt/dir mt/real && echo f > mt/file && ln -s /workspace/nowhere mt/dangling && ln -s /workspace/mt/dir mt/linkdir && ln -s /workspace/mt/real mt/linkreal && ln -s /etc mt/outside && mkdir mt/locked && chmod 000 mt/locked",
    },
  });
  expect(setup.body.exit_code).toBe(0);
});

const headers = () => ({ "e2b-sandbox-id": sb.sandboxID, "x-access-token": sb.envdAccessToken });

async function write(files: Array<[string, string]>): Promise<{ status: number; body: any }> {
  const form = new FormData();
  for (const [path, text] of files) form.append("file", new Blob([text]), path);
  const res = await t.bay.app.request("/e2b/files", { method: "POST", headers: headers(), body: form });
  return { status: res.status, body: await res.json() };
}

async function read(path: string): Promise<string | number> {
  const res = await t.bay.app.request(`/e2b/files?path=${encodeURIComponent(path)}`, { headers: headers() });
  return res.status === 200 ? res.text() : res.status;
}

describe("a multipart write whose later part cannot be written", () => {
  const cases: Array<[string, string, string]> = [
    ["an existing directory", "/home/user/mt/dir", "path is a directory"],
    ["a symlink to a directory", "/home/user/mt/linkdir", "path is a directory"],
    ["a path through a file", "/home/user/mt/file/x.txt", "a parent is not a directory"],
    ["a dangling symlink", "/home/user/mt/dangling", "dangling symlink"],
    ["a path through a dangling symlink", "/home/user/mt/dangling/x.txt", "dangling symlink"],
    ["a path through a symlink that leaves the home", "/home/user/mt/outside/x.txt", "resolves outside the workspace"],
    ["a path into a directory the sandbox locked (chmod 000)", "/home/user/mt/locked/x.txt", "permission denied"],
  ];
  for (const [what, bad, message] of cases) {
    test(`${what}: nothing is written, and the answer is Ship's for that part alone`, async () => {
      const good = `/home/user/mt/good-${what.replaceAll(" ", "-")}.txt`;
      const alone = await write([[bad, "x"]]);
      expect(alone.status).toBe(400);
      expect(alone.body.message).toContain(message);
      const both = await write([
        [good, "first"],
        [bad, "second"],
      ]);
      expect(both).toEqual(alone);
      expect(await read(good)).toBe(404);
      expect(await read("/home/user/mt/file")).toBe("f\n");
    });
  }

  test("hundreds of long names before it: the last one refused, none written", async () => {
    const dir = `/home/user/mt/many/${"d".repeat(200)}`;
    const files: Array<[string, string]> = Array.from({ length: 500 }, (_, i) => [`${dir}/f-${i}`, `${i}`]);
    files.push(["/home/user/mt/dir", "last"]);
    const res = await write(files);
    expect(res.status).toBe(400);
    expect(res.body.message).toContain("path is a directory");
    for (const i of [0, 250, 499]) expect(await read(`${dir}/f-${i}`)).toBe(404);
  }, 60_000);
});

describe("a multipart write the disk allows", () => {
  test("through a symlinked directory inside the home, into new directories: every part written", async () => {
    const res = await write([
      ["/home/user/mt/linkreal/a.txt", "a"],
      ["/home/user/mt/new/deep/b.txt", "b"],
      ["/home/user/mt/real/c.txt", "c"],
    ]);
    expect(res.status).toBe(200);
    expect(await read("/home/user/mt/real/a.txt")).toBe("a");
    expect(await read("/home/user/mt/new/deep/b.txt")).toBe("b");
    expect(await read("/home/user/mt/real/c.txt")).toBe("c");
  });

  test("hundreds of parts: all written", async () => {
    const dir = `/home/user/mt/ok/${"e".repeat(200)}`;
    const files: Array<[string, string]> = Array.from({ length: 500 }, (_, i) => [`${dir}/f-${i}`, `${i}`]);
    const res = await write(files);
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(500);
    for (const i of [0, 250, 499]) expect(await read(`${dir}/f-${i}`)).toBe(`${i}`);
  }, 60_000);
});
