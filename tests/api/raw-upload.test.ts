/**
 * Raw uploads (`Content-Type: application/octet-stream`, `?path=`) on the sandbox
 * and workspace upload routes: the body is the file. With a Content-Length it is
 * passed on as it is (and refused before a byte is read when over the limit);
 * without one it is counted on the way. Every refusal is in the error model.
 * The real transport (a body that breaks off short is never kept) is in
 * tests/e2e/raw-upload.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createMemoryBay, type MemoryBay, newSandbox } from "./support/memory-bay.ts";

const MAX_UPLOAD = 1024 * 1024;
let t: MemoryBay;
let sandboxId: string;
let workspaceId: string;
beforeAll(async () => {
  t = await createMemoryBay({ config: { limits: { max_upload_bytes: MAX_UPLOAD } } });
  sandboxId = await newSandbox(t);
  workspaceId = (await t.json("POST", "/v1/workspaces", { body: {} })).body.id;
});
afterAll(async () => {
  await t.close();
  t.engine.shutdown();
});

const ROUTES = {
  sandbox: () => `/v1/sandboxes/${sandboxId}/filesystem`,
  workspace: () => `/v1/workspaces/${workspaceId}/filesystem`,
};

/** A body stream that counts how many chunks were pulled from it. */
function counting(chunks: Uint8Array[]): { body: ReadableStream<Uint8Array>; pulled(): number } {
  let i = 0;
  return {
    // No high-water mark: nothing is pulled until someone reads.
    body: new ReadableStream<Uint8Array>(
      {
        pull(ctrl) {
          if (i < chunks.length) ctrl.enqueue(chunks[i++]!);
          else ctrl.close();
        },
      },
      { highWaterMark: 0 },
    ),
    pulled: () => i,
  };
}

const raw = (path: string, body: BodyInit, headers: Record<string, string> = {}) =>
  t.bay.app.request(path, {
    method: "POST",
    headers: { "x-owner": "alice", "content-type": "application/octet-stream", ...headers },
    body,
    duplex: "half",
  } as RequestInit);

const bytes = (n: number, fill = 0x61) => new Uint8Array(n).fill(fill);

for (const [name, base] of Object.entries(ROUTES)) {
  describe(`${name} raw upload`, () => {
    test("with a Content-Length: stored byte for byte, its size answered", async () => {
      const data = crypto.getRandomValues(new Uint8Array(200_000));
      const r = await raw(`${base()}/upload?path=raw/a.bin`, data, { "content-length": String(data.byteLength) });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { size: number }).size).toBe(data.byteLength);
      const back = await t.call("GET", `${base()}/download?path=raw/a.bin`);
      expect(back.status).toBe(200);
      expect(new Uint8Array(await back.arrayBuffer())).toEqual(data);
    });

    test("without one (chunked): counted on the way and stored whole", async () => {
      const parts = [bytes(1000, 1), bytes(70_000, 2), bytes(5, 3)];
      const r = await raw(`${base()}/upload?path=raw/chunked.bin`, counting(parts).body);
      expect(r.status).toBe(200);
      expect(((await r.json()) as { size: number }).size).toBe(71_005);
      const back = new Uint8Array(await (await t.call("GET", `${base()}/download?path=raw/chunked.bin`)).arrayBuffer());
      expect(back.byteLength).toBe(71_005);
      expect([back[0], back[1000], back[71_004]]).toEqual([1, 2, 3]);
    });

    test("an empty file", async () => {
      const r = await raw(`${base()}/upload?path=raw/empty.bin`, new Uint8Array(0), { "content-length": "0" });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { size: number }).size).toBe(0);
    });

    test("a parameter on the type is still raw", async () => {
      const r = await raw(`${base()}/upload?path=raw/typed.bin`, bytes(10), {
        "content-type": "Application/Octet-Stream; charset=binary",
        "content-length": "10",
      });
      expect(r.status).toBe(200);
    });

    test("without ?path=: 400 naming the query parameter, nothing read", async () => {
      const src = counting([bytes(10)]);
      const r = await raw(`${base()}/upload`, src.body);
      expect(r.status).toBe(400);
      const body = (await r.json()) as { error: { code: string; details: { issues: Array<{ path: string }> } } };
      expect(body.error.code).toBe("validation_error");
      expect(body.error.details.issues[0]!.path).toBe("query.path");
      expect(src.pulled()).toBe(0);
    });

    test("an escaping path: 400 invalid_path with the path as sent, nothing read", async () => {
      const src = counting([bytes(10)]);
      const r = await raw(`${base()}/upload?path=${encodeURIComponent("a/../../etc/x")}`, src.body);
      expect(r.status).toBe(400);
      const body = (await r.json()) as { error: { code: string; details: { path: string } } };
      expect(body.error.code).toBe("invalid_path");
      expect(body.error.details.path).toBe("a/../../etc/x");
      expect(src.pulled()).toBe(0);
    });

    test("a declared Content-Length over the limit: 413 before a byte is read", async () => {
      const src = counting([bytes(10)]);
      const r = await raw(`${base()}/upload?path=raw/big.bin`, src.body, { "content-length": String(MAX_UPLOAD + 1) });
      expect(r.status).toBe(413);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
      expect(src.pulled()).toBe(0);
    });

    test("a Content-Length that is not a length: 400; one too long to be exact: 413, as for a form", async () => {
      const r = await raw(`${base()}/upload?path=raw/x.bin`, bytes(3), { "content-length": "1e3" });
      expect(r.status).toBe(400);
      const huge = await raw(`${base()}/upload?path=raw/x.bin`, bytes(3), { "content-length": "1".repeat(20) });
      expect(huge.status).toBe(413);
    });

    test("a chunked body that grows over the limit: 413, and no file is left", async () => {
      const src = counting(Array.from({ length: 40 }, () => bytes(64 * 1024)));
      const r = await raw(`${base()}/upload?path=raw/over.bin`, src.body);
      expect(r.status).toBe(413);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
      // It stopped reading at the limit, not at the end of the body.
      expect(src.pulled()).toBeLessThan(40);
      expect((await t.call("GET", `${base()}/download?path=raw/over.bin`)).status).toBe(404);
    });

    test("a body that breaks off: 400, and no file is left", async () => {
      let sent = 0;
      const broken = new ReadableStream<Uint8Array>({
        pull(ctrl) {
          if (sent++ < 2) ctrl.enqueue(bytes(10_000));
          else ctrl.error(new Error("connection reset"));
        },
      });
      const r = await raw(`${base()}/upload?path=raw/broken.bin`, broken);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("validation_error");
      expect((await t.call("GET", `${base()}/download?path=raw/broken.bin`)).status).toBe(404);
    });

    test("another content type is refused, naming both accepted forms", async () => {
      const r = await raw(`${base()}/upload?path=raw/t.txt`, "hello", { "content-type": "text/plain" });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { message: string } }).error.message).toContain("application/octet-stream");
    });
  });
}

test("another owner's sandbox: 404 before a byte is read", async () => {
  const src = counting([bytes(10)]);
  const r = await t.bay.app.request(`${ROUTES.sandbox()}/upload?path=x.bin`, {
    method: "POST",
    headers: { "x-owner": "mallory", "content-type": "application/octet-stream", "content-length": "10" },
    body: src.body,
    duplex: "half",
  } as RequestInit);
  expect(r.status).toBe(404);
  expect(src.pulled()).toBe(0);
});

test("a workspace's size limit applies to a raw upload's declared length", async () => {
  const ws = (await t.json("POST", "/v1/workspaces", { body: { size_limit_mb: 1 } })).body.id as string;
  const first = await raw(`/v1/workspaces/${ws}/filesystem/upload?path=a.bin`, bytes(700_000), { "content-length": "700000" });
  expect(first.status).toBe(200);
  const src = counting([bytes(10)]);
  const second = await raw(`/v1/workspaces/${ws}/filesystem/upload?path=b.bin`, src.body, { "content-length": "700000" });
  expect(second.status).toBe(413);
  const { error } = (await second.json()) as { error: { message: string; details: { workspace_id: string; size?: number } } };
  expect(error.details.workspace_id).toBe(ws);
  // The length is known before a byte is read: the answer names it, not "more than what is left".
  expect(error.details.size).toBe(700_000);
  expect(error.message).toEndWith("this write needs 700000 bytes");
});

test("concurrent uploads into a workspace cannot pass its size limit together (review s41: 3 × 3 MiB all landed in 4 MiB)", async () => {
  const big = await createMemoryBay({ config: { limits: { max_upload_bytes: 8 * 1024 * 1024 } } });
  try {
    const ws = (await big.json("POST", "/v1/workspaces", { body: { size_limit_mb: 4 } })).body.id as string;
    const MiB3 = 3 * 1024 * 1024;
    const rawUp = (i: number) =>
      big.bay.app.request(`/v1/workspaces/${ws}/filesystem/upload?path=r${i}.bin`, {
        method: "POST",
        headers: { "x-owner": "alice", "content-type": "application/octet-stream", "content-length": String(MiB3) },
        body: bytes(MiB3),
      });
    const formUp = (i: number) => {
      const f = new FormData();
      f.append("path", `f${i}.bin`);
      f.append("file", new Blob([bytes(MiB3)]), "f.bin");
      return big.call("POST", `/v1/workspaces/${ws}/filesystem/upload`, { body: f });
    };
    const answers = await Promise.all([rawUp(1), rawUp(2), formUp(3), formUp(4)]);
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 413, 413, 413]);
    const listing = await big.json("GET", `/v1/workspaces/${ws}/filesystem/directories?path=.`);
    expect(listing.status).toBe(200);
    expect(listing.body.entries.length).toBe(1);
  } finally {
    await big.close();
    big.engine.shutdown();
  }
});
