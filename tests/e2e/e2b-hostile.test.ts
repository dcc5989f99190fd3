/**
 * Bay's E2B-compatible API attacked as a hostile tenant, on the real engine:
 * signed file URLs that try to write more than they were signed for, files
 * outside the home through symlinks, envd streams a client abandons (their
 * watchers must not pile up), and env/metadata a client stuffs in.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { signFileUrl } from "../../src/bay/e2b/credentials.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { requireShipImages } from "./support/e2e.ts";
import { createE2bSandbox, type E2bCreated } from "./support/e2b.ts";
import { connectFrame } from "../support/connect-frame.ts";

let t: TestBay;
type Created = E2bCreated;

beforeAll(async () => {
  await requireShipImages();
  t = await createTestBay();
});
afterAll(async () => {
  await t?.close();
});

const create = (owner = "alice") => createE2bSandbox(t, owner);

const envd = (sb: Created, extra: Record<string, string> = {}) => ({
  "e2b-sandbox-id": sb.sandboxID,
  "x-access-token": sb.envdAccessToken,
  ...extra,
});

/** A unary envd call (Connect JSON). */
async function unary(sb: Created, method: string, body: unknown) {
  const res = await t.bay.app.request(`/e2b/${method}`, {
    method: "POST",
    headers: envd(sb, { "content-type": "application/json" }),
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** Runs a shell script through envd's Process.Start and answers its raw Connect stream. */
async function run(sb: Created, cmd: string): Promise<string> {
  const res = await t.bay.app.request(`/e2b/files?path=${encodeURIComponent("/home/user/.run.sh")}`, {
    method: "POST",
    headers: envd(sb, { "content-type": "application/octet-stream" }),
    body: cmd,
  });
  expect(res.status).toBe(200);
  const started = await t.bay.app.request("/e2b/process.Process/Start", {
    method: "POST",
    headers: envd(sb, { "content-type": "application/connect+json" }),
    body: new Blob([connectFrame({ process: { cmd: "/bin/bash", args: ["/workspace/.run.sh"] } })]),
  });
  return new TextDecoder().decode(new Uint8Array(await started.arrayBuffer()));
}

async function readFile(sb: Created, path: string): Promise<number> {
  const res = await t.bay.app.request(`/e2b/files?path=${encodeURIComponent(path)}`, { headers: envd(sb) });
  await res.arrayBuffer();
  return res.status;
}

describe("signed file URLs write only what they were signed for", () => {
  test("a signed upload URL for one path cannot write other paths through multipart part names", async () => {
    const sb = await create();
    const path = "/home/user/allowed.txt";
    const signature = signFileUrl({ path, operation: "write", user: "user", expiration: null }, sb.envdAccessToken);
    const url = `/files?path=${encodeURIComponent(path)}&username=user&signature=${encodeURIComponent(signature)}`;
    const form = new FormData();
    form.append("file", new Blob(["one"]), "evil-one.txt");
    form.append("file", new Blob(["two"]), "evil-two.txt");
    const res = await t.bay.app.request(url, { method: "POST", body: form });
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe(400);
    expect(await readFile(sb, "/home/user/evil-one.txt")).toBe(404);
    expect(await readFile(sb, "/home/user/evil-two.txt")).toBe(404);
    // One part goes to the signed path, whatever the part calls itself.
    const one = new FormData();
    one.append("file", new Blob(["ok"]), "evil-three.txt");
    const ok = await t.bay.app.request(url, { method: "POST", body: one });
    expect(ok.status).toBe(200);
    expect((await ok.json()).map((w: { path: string }) => w.path)).toEqual([path]);
    expect(await readFile(sb, "/home/user/evil-three.txt")).toBe(404);
    expect(await readFile(sb, path)).toBe(200);
  }, 120_000);
});

describe("files outside the home stay out of reach through links (as on Bay's own routes)", () => {
  test("symlinks to /etc, / and /proc: read, write, list, stat, mkdir, move, remove and watch are refused", async () => {
    const sb = await create();
    expect(
      await run(sb, "ln -s /etc/passwd /workspace/pw && ln -s / /workspace/rootl && ln -s /proc/self /workspace/me && echo linked"),
    ).toContain(Buffer.from("linked\n").toString("base64"));
    for (const p of [
      "/home/user/pw",
      "/home/user/rootl/etc/passwd",
      "/home/user/me/environ",
      "/home/user/%2e%2e/x",
      "/home/user/a\u0000b",
      "/proc/1/environ",
    ]) {
      expect(`${p}: ${await readFile(sb, p)}`).toBe(`${p}: 400`);
    }
    for (const prefix of ["", "/e2b"]) {
      const w = await t.bay.app.request(`${prefix}/files?path=/home/user/rootl/tmp/x`, {
        method: "POST",
        headers: envd(sb, { "content-type": "application/octet-stream" }),
        body: "x",
      });
      expect(w.status).toBe(400);
    }
    const calls: Array<[string, unknown]> = [
      ["filesystem.Filesystem/ListDir", { path: "/home/user/rootl/etc" }],
      ["filesystem.Filesystem/Stat", { path: "/home/user/rootl/etc/shadow" }],
      ["filesystem.Filesystem/MakeDir", { path: "/home/user/rootl/tmp/zz" }],
      ["filesystem.Filesystem/Move", { source: "/home/user/pw", destination: "/home/user/rootl/tmp/pw" }],
      ["filesystem.Filesystem/Remove", { path: "/home/user/rootl/tmp" }],
    ];
    for (const [method, body] of calls) {
      const r = await unary(sb, method, body);
      expect(`${method}: ${r.status} ${r.body.code}`).toBe(`${method}: 400 invalid_argument`);
    }
    const watch = await t.bay.app.request("/e2b/filesystem.Filesystem/WatchDir", {
      method: "POST",
      headers: envd(sb, { "content-type": "application/connect+json" }),
      body: new Blob([connectFrame({ path: "/home/user/rootl/etc" })]),
    });
    expect(new TextDecoder().decode(await watch.arrayBuffer())).toContain('"code":"invalid_argument"');
  }, 120_000);
});

describe("streams a client abandons", () => {
  test("WatchDir streams dropped after their start free their watchers (more than the Ship's 16 in a row)", async () => {
    const sb = await create();
    for (let i = 0; i < 20; i++) {
      const ac = new AbortController();
      const res = await t.bay.app.request(
        new Request("http://localhost/e2b/filesystem.Filesystem/WatchDir", {
          method: "POST",
          headers: envd(sb, { "content-type": "application/connect+json" }),
          body: new Blob([connectFrame({ path: "/home/user" })]),
          signal: ac.signal,
        }),
      );
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(`${i}: ${first.slice(5)}`).toBe(`${i}: {"start":{}}`);
      ac.abort();
      await reader.cancel().catch(() => {});
    }
  }, 180_000);
});
