/**
 * Limits answered by Bay in the error model before any work is done: body size,
 * file write and upload size, code/command length, exec timeout range, the
 * per-owner sandbox quota and the per-owner rate limit. Every refusal leaves no
 * container behind (checked through the harness's instance labels).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { RateLimiter } from "../../src/bay/api/middleware/rate-limit.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";

const open: TestBay[] = [];
async function bay(limits: Record<string, number> = {}): Promise<TestBay> {
  const t = await createTestBay({ config: { limits } as any });
  open.push(t);
  return t;
}
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});

async function sandbox(t: TestBay, owner = "alice"): Promise<string> {
  const r = await t.json("POST", "/v1/sandboxes", { body: {}, owner });
  expect(r.status).toBe(201);
  return r.body.id;
}

async function expectError(p: Promise<{ status: number; body: any; res: Response }>, status: number, code: string) {
  const r = await p;
  expect(r.status).toBe(status);
  expect(r.body.error.code).toBe(code);
  expect(r.body.error.request_id).toBe(r.res.headers.get("x-request-id")!);
  return r;
}

const noContainers = async (t: TestBay) => expect(await t.bay.driver.listContainers({ instance_id: t.bay.instanceId })).toHaveLength(0);

describe("size limits", () => {
  test("request body over max_body_bytes → 413 payload_too_large", async () => {
    const t = await bay({ max_body_bytes: 4096, max_file_bytes: 100_000 });
    const id = await sandbox(t);
    const r = await expectError(
      t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "a.txt", content: "x".repeat(8192) } }),
      413,
      "payload_too_large",
    );
    expect(r.body.error.details.limit_bytes).toBe(4096);
    await expectError(t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "#".repeat(8192) } }), 413, "payload_too_large");
    // Built in process, a request's Content-Length is whatever its maker wrote: only a served one's is
    // trusted (Bun's parser holds the body to it); this one is counted as it is read (review s57).
    const lying = { "content-type": "application/json", "content-length": "10" };
    await expectError(
      t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: JSON.stringify({ code: "#".repeat(8192) }), headers: lying }),
      413,
      "payload_too_large",
    );
    await noContainers(t);
  });

  test("file write over max_file_bytes → 413 with the limit; uploads over max_upload_bytes → 413", async () => {
    const t = await bay({ max_file_bytes: 1000, max_upload_bytes: 2000 });
    const id = await sandbox(t);
    const w = await expectError(
      t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "a.txt", content: "é".repeat(600) } }),
      413,
      "payload_too_large",
    );
    expect(w.body.error.details).toMatchObject({ limit_bytes: 1000, size: 1200 });
    const ws = await t.json("POST", "/v1/workspaces", { body: {} });
    expect(ws.status).toBe(201);
    await expectError(
      t.json("PUT", `/v1/workspaces/${ws.body.id}/filesystem/files`, { body: { path: "a.txt", content: "x".repeat(1001) } }),
      413,
      "payload_too_large",
    );
    const form = new FormData();
    form.append("path", "big.bin");
    form.append("file", new Blob([new Uint8Array(100_000)]), "big.bin");
    // As an HTTP client sends it: with Content-Length, so Bay refuses before reading or starting anything.
    const encoded = new Response(form);
    const contentType = encoded.headers.get("content-type")!;
    const bytes = new Uint8Array(await encoded.arrayBuffer());
    const headers = { "content-type": contentType, "content-length": String(bytes.length) };
    const u = await expectError(
      t.json("POST", `/v1/sandboxes/${id}/filesystem/upload`, { body: bytes, headers }),
      413,
      "payload_too_large",
    );
    expect(u.body.error.details.limit_bytes).toBe(2000);
    await noContainers(t);
  });

  test("code and command: the spec's 1 MiB cap → 400; past max_body_bytes → 413", async () => {
    const t = await bay({ max_body_bytes: 4 * 1024 * 1024 });
    const id = await sandbox(t);
    const big = "#".repeat(1024 * 1024 + 1);
    await expectError(t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: big } }), 400, "validation_error");
    await expectError(t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body: { command: big } }), 400, "validation_error");
    await expectError(
      t.json("POST", `/v1/sandboxes/${id}/code/exec`, { body: { code: big, language: "javascript" } }),
      400,
      "validation_error",
    );
    // A streamed exec is refused the same way, as JSON, before any stream opens.
    const streamed = await expectError(
      t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: big }, headers: { accept: "text/event-stream" } }),
      400,
      "validation_error",
    );
    expect(streamed.res.headers.get("content-type")).toContain("application/json");
    const small = await bay({ max_body_bytes: 512 * 1024 });
    const id2 = await sandbox(small);
    await expectError(small.json("POST", `/v1/sandboxes/${id2}/shell/exec`, { body: { command: big } }), 413, "payload_too_large");
    await expectError(small.json("POST", `/v1/sandboxes/${id2}/code/exec`, { body: { code: big } }), 413, "payload_too_large");
    await noContainers(t);
    await noContainers(small);
  });

  test("exec timeout outside 1..300 → 400 validation_error", async () => {
    const t = await bay();
    const id = await sandbox(t);
    for (const timeout of [0, -1, 301, 3600, 1.5]) {
      await expectError(t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "1", timeout } }), 400, "validation_error");
      await expectError(t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body: { command: "true", timeout } }), 400, "validation_error");
    }
    await noContainers(t);
  });
});

describe("per-owner quota and rate limit", () => {
  test("max_sandboxes_per_owner → 429 quota_exceeded with Retry-After; other owners unaffected; delete frees a slot", async () => {
    const t = await bay({ max_sandboxes_per_owner: 2 });
    const a = await sandbox(t);
    await sandbox(t);
    const r = await expectError(t.json("POST", "/v1/sandboxes", { body: {} }), 429, "quota_exceeded");
    expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);
    await sandbox(t, "bob");
    expect((await t.call("DELETE", `/v1/sandboxes/${a}`)).status).toBe(204);
    await sandbox(t);
    await noContainers(t);
  });

  test("rate_limit_per_minute → 429 quota_exceeded with Retry-After, per owner; /health exempt", async () => {
    const t = await bay({ rate_limit_per_minute: 5 });
    for (let i = 0; i < 5; i++) expect((await t.call("GET", "/v1/sandboxes")).status).toBe(200);
    const r = await expectError(t.json("GET", "/v1/sandboxes"), 429, "quota_exceeded");
    const retry = Number(r.res.headers.get("retry-after"));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(12);
    expect(r.body.error.details.limit_per_minute).toBe(5);
    // Refused before the route: a create is not counted against the sandbox quota either.
    await expectError(t.json("POST", "/v1/sandboxes", { body: {} }), 429, "quota_exceeded");
    expect((await t.call("GET", "/v1/sandboxes", { owner: "bob" })).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await t.call("GET", "/health")).status).toBe(200);
  });

  test("token bucket: refills continuously, caps at the per-minute burst, forgets idle owners", () => {
    let now = 0;
    const rl = new RateLimiter({ perMinute: 60, now: () => now, maxTracked: 2 });
    for (let i = 0; i < 60; i++) expect(rl.take("a")).toBe(0);
    expect(rl.take("a")).toBe(1);
    now += 1000;
    expect(rl.take("a")).toBe(0);
    expect(rl.take("a")).toBe(1);
    now += 10 * 60_000; // long idle: the bucket is full again, never more than the burst
    for (let i = 0; i < 60; i++) expect(rl.take("a")).toBe(0);
    expect(rl.take("a")).toBeGreaterThan(0);
    rl.take("b");
    now += 120_000;
    rl.take("c"); // over maxTracked: refilled buckets are swept
    expect(rl.size).toBeLessThanOrEqual(2);
  });
});
