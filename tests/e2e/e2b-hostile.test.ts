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

let t: TestBay;
interface Created {
  sandboxID: string;
  envdAccessToken: string;
  trafficAccessToken: string;
}

beforeAll(async () => {
  await requireShipImages();
  t = await createTestBay();
});
afterAll(async () => {
  await t?.close();
});

async function create(owner = "alice"): Promise<Created> {
  const res = await t.bay.app.request("/e2b/v2/sandboxes", {
    method: "POST",
    headers: { "x-owner": owner, "content-type": "application/json" },
    body: JSON.stringify({ templateID: "base" }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as Created;
}

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
    body: frame({ process: { cmd: "/bin/bash", args: ["/workspace/.run.sh"] } }),
  });
  return new TextDecoder().decode(new Uint8Array(await started.arrayBuffer()));
}

function frame(msg: unknown, flags = 0): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(msg));
  const out = new Uint8Array(5 + json.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, json.length);
  out.set(json, 5);
  return out;
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
