/**
 * envd's multipart `POST /files` (every write of the E2B SDKs): the parts are
 * received into Bay's upload spool and written only once the whole form is read
 * and every target checked. Before (review s42), the form was parsed in memory:
 * a 256 MiB upload grew Bay's RSS by 539 MiB, and a few at once could take Bay
 * down. Here: what is written, what is refused with nothing written, and that
 * the bytes go through the spool (its caps apply; nothing is left in it).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { createE2bSandbox, type E2bCreated } from "../e2e/support/e2b.ts";
import { createMemoryBay, type MemoryBay } from "./support/memory-bay.ts";

const MAX_UPLOAD = 256 * 1024;
let t: MemoryBay;
let sb: E2bCreated;

beforeAll(async () => {
  t = await createMemoryBay({
    config: { limits: { max_upload_bytes: MAX_UPLOAD } },
  });
  sb = await createE2bSandbox(t);
});
afterAll(async () => {
  await t.close();
  t.engine.shutdown();
});
// Whatever an upload did, nothing of it stays in the spool.
afterEach(() => {
  const spool = t.bay.deps.uploadSpool;
  expect(spool.bytesInUse).toBe(0);
  expect(readdirSync(spool.dir)).toEqual([]);
});

const envd = (extra: Record<string, string> = {}) => ({ "e2b-sandbox-id": sb.sandboxID, "x-access-token": sb.envdAccessToken, ...extra });

const write = (body: BodyInit, query = "", headers: Record<string, string> = {}) =>
  t.bay.app.request(`/e2b/files${query}`, { method: "POST", headers: envd(headers), body, duplex: "half" } as RequestInit);

const form = (...parts: Array<[string, string | Blob, string?]>) => {
  const f = new FormData();
  for (const [name, value, filename] of parts) {
    if (typeof value === "string") f.append(name, value);
    else f.append(name, value, filename);
  }
  return f;
};

/** The file's text, or its status when it cannot be read. */
async function read(path: string): Promise<string | number> {
  const res = await t.bay.app.request(`/e2b/files?path=${encodeURIComponent(path)}`, { headers: envd() });
  return res.status === 200 ? res.text() : res.status;
}

async function error(res: Response): Promise<{ status: number; code: number | string; message: string }> {
  const body = (await res.json()) as { code: number | string; message: string };
  return { status: res.status, code: body.code, message: body.message };
}

describe("envd multipart writes", () => {
  test("one part with ?path is written there; the answer names it", async () => {
    const res = await write(form(["file", new Blob(["hello"]), "ignored.txt"]), `?path=${encodeURIComponent("/home/user/mp/one.txt")}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([{ name: "one.txt", type: "file", path: "/home/user/mp/one.txt" }]);
    expect(await read("/home/user/mp/one.txt")).toBe("hello");
  });

  test('a part with an empty file name and ?path (the legacy SDK\'s single write, filename="") is the file', async () => {
    // FormData semantics: a part with a filename parameter, even empty, is a file (busboy is patched to agree: patches/).
    const data = new Uint8Array(100_000).map((_, i) => i % 251);
    const res = await write(
      form(["file", new Blob([data], { type: "text/plain;charset=utf-8" }), ""]),
      `?path=${encodeURIComponent("/home/user/mp/legacy.bin")}`,
    );
    expect(res.status).toBe(200);
    const back = await t.bay.app.request(`/e2b/files?path=${encodeURIComponent("/home/user/mp/legacy.bin")}`, { headers: envd() });
    expect(new Uint8Array(await back.arrayBuffer())).toEqual(data);
  });

  test("several parts without ?path: each at its own whole path (UTF-8 names), in order", async () => {
    const res = await write(
      form(
        ["file", new Blob(["a".repeat(100_000)]), "/home/user/mp/many/a.txt"],
        ["other", "ignored field"],
        ["file", new Blob(["β"]), "/home/user/mp/many/ünïcode β.txt"],
        ["file", new Blob([]), "/home/user/mp/many/empty.txt"],
      ),
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as Array<{ path: string }>).map((w) => w.path)).toEqual([
      "/home/user/mp/many/a.txt",
      "/home/user/mp/many/ünïcode β.txt",
      "/home/user/mp/many/empty.txt",
    ]);
    expect(await read("/home/user/mp/many/a.txt")).toBe("a".repeat(100_000));
    expect(await read("/home/user/mp/many/ünïcode β.txt")).toBe("β");
    expect(await read("/home/user/mp/many/empty.txt")).toBe("");
  });

  const refused: Array<[string, () => Response | Promise<Response>, number, string]> = [
    [
      "?path with two parts",
      () =>
        write(
          form(["file", new Blob(["1"]), "/home/user/mp/r1/a"], ["file", new Blob(["2"]), "/home/user/mp/r1/b"]),
          `?path=${encodeURIComponent("/home/user/mp/r1/x")}`,
        ),
      400,
      "`path` names one file",
    ],
    [
      "a part whose path leaves the sandbox's files, after a good one",
      () => write(form(["file", new Blob(["1"]), "/home/user/mp/r1/a"], ["file", new Blob(["2"]), "/etc/passwd"])),
      400,
      "outside the sandbox's files",
    ],
    [
      "a part without a name and no ?path, after a good one",
      () => write(form(["file", new Blob(["1"]), "/home/user/mp/r1/a"], ["file", new Blob(["2"]), ""])),
      400,
      "names no path",
    ],
    [
      "a later part that is the home itself (the workspace root)",
      () => write(form(["file", new Blob(["1"]), "/home/user/mp/r1/a"], ["file", new Blob(["2"]), "/home/user"])),
      400,
      "root",
    ],
    [
      "a later part whose path names a directory (`dir/`)",
      () => write(form(["file", new Blob(["1"]), "/home/user/mp/r1/a"], ["file", new Blob(["2"]), "/home/user/mp/r1/b/"])),
      400,
      "names a directory",
    ],
    [
      "a later part that is an existing directory (found on the disk before any part is written)",
      async () => {
        const made = await write("x", `?path=${encodeURIComponent("/home/user/mp/d1/f")}`, { "content-type": "application/octet-stream" });
        expect(made.status).toBe(200);
        return write(form(["file", new Blob(["1"]), "/home/user/mp/r1/a"], ["file", new Blob(["2"]), "/home/user/mp/d1"]));
      },
      400,
      "path is a directory",
    ],
    [
      "a later part whose name is not valid UTF-8",
      () => {
        const boundary = "utf8utf8";
        const bytes = (text: string) => new TextEncoder().encode(text) as Uint8Array<ArrayBuffer>;
        const part = (name: Uint8Array<ArrayBuffer>) => [
          bytes(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="`),
          name,
          bytes('"\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n'),
        ];
        const body = new Blob([
          ...part(bytes("/home/user/mp/r1/a")),
          ...part(new Uint8Array([...bytes("/home/user/mp/r1/b"), 0xff, 0xfe])),
          bytes(`--${boundary}--\r\n`),
        ]);
        return write(body, "", { "content-type": `multipart/form-data; boundary=${boundary}` });
      },
      400,
      "not valid UTF-8",
    ],
    ["a `file` field that is not a file", () => write(form(["file", "just text"])), 400, "must be a file"],
    ["no `file` part", () => write(form(["other", "x"])), 400, "no `file` part"],
    [
      "a file over the upload limit, after a good one",
      () =>
        write(
          form(
            ["file", new Blob(["1"]), "/home/user/mp/r1/a"],
            ["file", new Blob([new Uint8Array(MAX_UPLOAD + 1)]), "/home/user/mp/r1/big"],
          ),
        ),
      413,
      "",
    ],
    [
      "a body that is not multipart at all",
      () => write("--nope\r\n\r\n", "", { "content-type": "multipart/form-data; boundary=x" }),
      400,
      "",
    ],
  ];
  for (const [what, send, status, message] of refused) {
    test(`refused, nothing written: ${what}`, async () => {
      const res = await send();
      const e = await error(res);
      expect(e.status).toBe(status);
      expect(e.message).toContain(message);
      for (const p of ["/home/user/mp/r1/a", "/home/user/mp/r1/b", "/home/user/mp/r1/x", "/home/user/mp/r1/big"])
        expect(await read(p)).toBe(404);
    });
  }

  test("a declared length past the limit is 413 before the body is read", async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(ctrl) {
          pulled++;
          ctrl.enqueue(new Uint8Array(64 * 1024));
        },
      },
      { highWaterMark: 0 },
    );
    const res = await write(body, "", {
      "content-type": "multipart/form-data; boundary=declared",
      "content-length": String(MAX_UPLOAD + 128 * 1024),
    });
    expect(res.status).toBe(413);
    expect(pulled).toBe(0);
  });

  test("a body cut off in the middle of a part: 400, nothing written", async () => {
    const boundary = "cutcutcut";
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="/home/user/mp/cut/a"\r\n\r\n`;
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (sent) return ctrl.error(new Error("client went away"));
        sent = true;
        ctrl.enqueue(new TextEncoder().encode(`${head}${"x".repeat(50_000)}`));
      },
    });
    const res = await write(body, "", { "content-type": `multipart/form-data; boundary=${boundary}` });
    expect(res.status).toBe(400);
    expect(await read("/home/user/mp/cut/a")).toBe(404);
  });

  test("the parts wait in the spool, within the owner's share of it: past the share, 429 and nothing written", async () => {
    // A Bay whose share per owner is a quarter of the upload limit.
    const small = await createMemoryBay({
      config: { limits: { max_upload_bytes: MAX_UPLOAD, max_spool_bytes_per_owner: MAX_UPLOAD / 4 } },
    });
    try {
      const mine = await createE2bSandbox(small);
      const headers = { "e2b-sandbox-id": mine.sandboxID, "x-access-token": mine.envdAccessToken };
      const part = new Uint8Array(MAX_UPLOAD / 8 + 1024);
      const body = form(["file", new Blob([part]), "/home/user/share/a"], ["file", new Blob([part]), "/home/user/share/b"]);
      const res = await small.bay.app.request("/e2b/files", { method: "POST", headers, body });
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe("5");
      for (const p of ["a", "b"]) {
        const back = await small.bay.app.request(`/e2b/files?path=/home/user/share/${p}`, { headers });
        expect(back.status).toBe(404);
      }
      expect(small.bay.deps.uploadSpool.bytesInUse).toBe(0);
      // One part within the share is written.
      const one = await small.bay.app.request("/e2b/files", {
        method: "POST",
        headers,
        body: form(["file", new Blob([part]), "/home/user/share/a"]),
      });
      expect(one.status).toBe(200);
    } finally {
      await small.close();
      small.engine.shutdown();
    }
  });
});

describe("envd raw writes with Content-Encoding: gzip", () => {
  test("a gzip body is written decoded; one that is not gzip is the client's 400, not a lost runtime (502)", async () => {
    const ok = await write(Bun.gzipSync(new TextEncoder().encode("zipped\n")), "?path=/home/user/gz/ok.txt", {
      "content-type": "application/octet-stream",
      "content-encoding": "gzip",
    });
    expect(ok.status).toBe(200);
    expect(await read("/home/user/gz/ok.txt")).toBe("zipped\n");
    // Found by `bun run fuzz`: the decompression's failure reached the Ship as a broken upload and came back 502.
    const bad = await write("é😀\u0000", "?path=/home/user/gz/bad.txt", {
      "content-type": "application/octet-stream",
      "content-encoding": "gzip",
    });
    const err = await error(bad);
    expect(err).toMatchObject({ status: 400, code: 400 });
    expect(err.message).toContain("not valid gzip");
  });
});
