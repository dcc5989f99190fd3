/**
 * The workspace data plane on real Docker with the real Ship image: files move
 * between the workspace API and sandboxes on that workspace, survive sandbox
 * delete and stop, are served without any Ship running, binary-safe, inside
 * /workspace only, under the workspace's size limit; and no helper container
 * is ever left behind.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { DOT_SEGMENT_REASON } from "../../src/protocol/ship/constants.ts";
import { createTestBay, pollUntil, type TestBay } from "../support/harness.ts";
import { shellOnVolume } from "../support/volume-shell.ts";
import { chunkOf, containersOf, docker, py, requireShipImages, sh, uploadForm, volumeExists } from "./support/e2e.ts";

let t: TestBay;
beforeAll(() => requireShipImages());
beforeEach(async () => {
  t = await createTestBay();
});
afterEach(async () => {
  // A download's helper is removed as its stream ends, just after the client has the last byte.
  // Bounded wait (up to 15 s on a busy engine); the list is asserted either way.
  const helpers = await pollUntil(helpersLeft, (h) => h.length === 0, 15_000).catch(() => helpersLeft());
  await t.close();
  expect(helpers).toEqual([]);
});

/** Helper containers of this Bay still present (must always be none between calls). */
const helpersLeft = async () =>
  (await t.bay.driver.listContainers({ instance_id: t.bay.instanceId }))
    .filter((c) => c.labels.role === "workspace-helper")
    .map((c) => c.id);

async function newWorkspace(body: Record<string, unknown> = {}): Promise<string> {
  const r = await t.json("POST", "/v1/workspaces", { body });
  expect(r.status).toBe(201);
  return r.body.id as string;
}

const wsPath = (id: string, what: string, path?: string) =>
  `/v1/workspaces/${id}/filesystem/${what}${path === undefined ? "" : `?path=${encodeURIComponent(path)}`}`;
const readWs = (id: string, path: string) => t.json("GET", wsPath(id, "files", path));
const writeWs = (id: string, path: string, content: string) => t.json("PUT", wsPath(id, "files"), { body: { path, content } });

describe("workspace data plane", () => {
  test("written through the workspace API, read by Python in a sandbox; survives the sandbox delete", async () => {
    const ws = await newWorkspace();
    expect((await writeWs(ws, "notes/hello.txt", "héllo from the API\n")).body).toEqual({
      status: "ok",
      path: "notes/hello.txt",
      size: 20,
    });
    expect((await t.json("GET", `/v1/workspaces/${ws}`)).body).toMatchObject({ managed: false, sandbox_id: null });

    const created = await t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws } });
    expect(created.status).toBe(201);
    const sb = created.body.id as string;
    expect((await t.json("GET", `/v1/workspaces/${ws}`)).body).toMatchObject({ managed: false, sandbox_id: sb });
    expect((await t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws } })).body.error.code).toBe("conflict");
    expect((await t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws }, owner: "mallory" })).status).toBe(404);

    const r = await py(
      t,
      sb,
      [
        "import os, stat",
        "s, d = os.stat('notes/hello.txt'), os.stat('notes')",
        "print(open('notes/hello.txt', encoding='utf-8').read(), end='')",
        "print(s.st_uid, s.st_gid, oct(stat.S_IMODE(s.st_mode)), oct(stat.S_IMODE(d.st_mode)), d.st_uid)",
        "_ = open('from-python.txt', 'w').write('written by python')",
      ].join("\n"),
    );
    expect(r.body.success).toBe(true);
    expect(r.body.output).toBe("héllo from the API\n1000 1000 0o644 0o755 1000\n");

    expect((await t.json("DELETE", `/v1/workspaces/${ws}`)).status).toBe(409);
    expect((await t.call("DELETE", `/v1/sandboxes/${sb}`)).status).toBe(204);
    expect(await volumeExists(ws)).toBe(true);
    const after = await t.json("GET", `/v1/workspaces/${ws}`);
    expect(after.body).toMatchObject({ managed: false, sandbox_id: null });
    expect(after.body.last_accessed_at).not.toBeNull();
    expect((await readWs(ws, "from-python.txt")).body).toEqual({ path: "from-python.txt", content: "written by python" });

    expect((await t.call("DELETE", `/v1/workspaces/${ws}`)).status).toBe(204);
    expect(await volumeExists(ws)).toBe(false);
    expect((await t.json("GET", `/v1/workspaces/${ws}`)).status).toBe(404);
    expect((await readWs(ws, "from-python.txt")).status).toBe(404);
  });

  test("a stopped sandbox's files are read without starting a Ship", async () => {
    const sb = (await t.json("POST", "/v1/sandboxes", { body: {} })).body;
    expect((await sh(t, sb.id, { command: "mkdir -p out && printf 'result=42' > out/r.txt" })).body.exit_code).toBe(0);
    expect((await t.json("POST", `/v1/sandboxes/${sb.id}/stop`)).body.status).toBe("idle");
    expect(await containersOf(t, sb.id)).toEqual([]);

    const ws = (await t.json("GET", `/v1/workspaces/${sb.workspace_id}`)).body;
    expect(ws).toMatchObject({ id: sb.workspace_id, managed: true, sandbox_id: sb.id });
    const listed = (await t.json("GET", "/v1/workspaces")).body.items.map((w: { id: string }) => w.id);
    expect(listed).toContain(sb.workspace_id);

    expect((await readWs(ws.id, "out/r.txt")).body).toEqual({ path: "out/r.txt", content: "result=42" });
    expect((await writeWs(ws.id, "out/back.txt", "to the sandbox")).status).toBe(200);
    const dir = await t.json("GET", wsPath(ws.id, "directories", "out"));
    expect(dir.body.entries.map((e: { name: string }) => e.name)).toEqual(["back.txt", "r.txt"]);
    expect(await containersOf(t, sb.id)).toEqual([]);
    expect((await t.json("GET", `/v1/sandboxes/${sb.id}`)).body.status).toBe("idle");

    expect((await t.json("DELETE", `/v1/workspaces/${ws.id}`)).body.error.code).toBe("conflict");
    expect((await t.call("DELETE", `/v1/sandboxes/${sb.id}`)).status).toBe(204);
    expect((await t.json("GET", `/v1/workspaces/${ws.id}`)).status).toBe(404);
    expect(await volumeExists(ws.id)).toBe(false);
  });

  test("a file that is not text: the sandbox's and the workspace's text reads refuse it alike (400 binary, its download route)", async () => {
    const sb = (await t.json("POST", "/v1/sandboxes", { body: {} })).body;
    expect((await sh(t, sb.id, { command: "printf 'hi\\377\\376' > b.bin && printf 'ok' > t.txt" })).body.exit_code).toBe(0);
    const inSandbox = await t.json("GET", `/v1/sandboxes/${sb.id}/filesystem/files?path=b.bin`);
    expect(inSandbox.status).toBe(400);
    expect(inSandbox.body.error).toMatchObject({ code: "validation_error", details: { path: "b.bin", reason: "binary" } });
    expect(inSandbox.body.error.message).toContain("filesystem/download?path=b.bin");
    expect((await t.json("GET", `/v1/sandboxes/${sb.id}/filesystem/files?path=t.txt`)).body).toEqual({ path: "t.txt", content: "ok" });
    expect((await t.json("POST", `/v1/sandboxes/${sb.id}/stop`)).body.status).toBe("idle");
    const inWorkspace = await readWs(sb.workspace_id, "b.bin");
    expect(inWorkspace.status).toBe(400);
    expect(inWorkspace.body.error).toMatchObject({ code: "validation_error", details: { path: "b.bin", reason: "binary" } });
    expect(inWorkspace.body.error.message).toContain(`/v1/workspaces/${sb.workspace_id}/filesystem/download?path=b.bin`);
    expect((await t.call("DELETE", `/v1/sandboxes/${sb.id}`)).status).toBe(204);
  });

  test("upload/download binary round trip, listing, delete", async () => {
    const ws = await newWorkspace();
    const data = chunkOf(7, 3 * 1024 * 1024 + 17);
    const up = await t.json("POST", wsPath(ws, "upload"), { body: uploadForm("bin/deep/data.bin", data) });
    expect(up.body).toEqual({ status: "ok", path: "bin/deep/data.bin", size: data.byteLength });

    const down = await t.call("GET", wsPath(ws, "download", "bin/deep/data.bin"));
    expect(down.status).toBe(200);
    expect(down.headers.get("content-type")).toBe("application/octet-stream");
    expect(down.headers.get("content-disposition")).toContain('filename="data.bin"');
    expect(new Uint8Array(await down.arrayBuffer())).toEqual(data);
    // A client that walks away mid-download frees the helper too (checked after each test).
    const partial = await t.call("GET", wsPath(ws, "download", "bin/deep/data.bin"));
    const reader = partial.body!.getReader();
    expect((await reader.read()).value!.byteLength).toBeGreaterThan(0);
    await reader.cancel();

    // Too large to read as text (over limits.max_file_bytes): 413, pointing to download.
    const asText = await readWs(ws, "bin/deep/data.bin");
    expect(asText.status).toBe(413);
    expect(asText.body.error.code).toBe("payload_too_large");
    expect(asText.body.error.message).toContain("download");
    // Small but binary: 400, pointing to download.
    expect((await t.json("POST", wsPath(ws, "upload"), { body: uploadForm("small.bin", chunkOf(3, 64)) })).status).toBe(200);
    const smallBinary = await readWs(ws, "small.bin");
    expect(smallBinary.status).toBe(400);
    expect(smallBinary.body.error.message).toContain("download");
    expect((await t.json("DELETE", wsPath(ws, "files", "small.bin"))).status).toBe(200);

    expect((await writeWs(ws, "top.txt", "t")).status).toBe(200);
    const root = await t.json("GET", wsPath(ws, "directories"));
    expect(root.body.path).toBe(".");
    expect(root.body.entries.map((e: { name: string; is_dir: boolean; is_file: boolean }) => [e.name, e.is_dir, e.is_file])).toEqual([
      ["bin", true, false],
      ["top.txt", false, true],
    ]);
    const deep = await t.json("GET", wsPath(ws, "directories", "bin/deep"));
    expect(deep.body.entries).toEqual([
      {
        name: "data.bin",
        path: "bin/deep/data.bin",
        is_file: true,
        is_dir: false,
        size: data.byteLength,
        modified_time: expect.any(String),
      },
    ]);

    expect((await t.json("DELETE", wsPath(ws, "files", "bin/deep/data.bin"))).body).toEqual({ status: "ok" });
    expect((await readWs(ws, "bin/deep/data.bin")).body.error.code).toBe("file_not_found");
    expect((await t.json("DELETE", wsPath(ws, "files", "bin"))).status).toBe(200);
    expect((await t.json("GET", wsPath(ws, "directories"))).body.entries.map((e: { name: string }) => e.name)).toEqual(["top.txt"]);
    expect((await t.json("DELETE", wsPath(ws, "files", "bin"))).body.error.code).toBe("file_not_found");
    expect((await t.json("GET", wsPath(ws, "download", "nope.bin"))).body.error.code).toBe("file_not_found");
  });

  test("paths stay inside /workspace: escapes and symlinks are invalid_path", async () => {
    const ws = await newWorkspace();
    expect((await writeWs(ws, "real/inside.txt", "in")).status).toBe(200);
    // Plant links the way user code could, in a throwaway container on the volume.
    const planted = await shellOnVolume(docker, ws, "ln -s /etc etc && ln -s real alias && ln -s /etc/passwd pw", {
      "bay.instance_id": t.bay.instanceId,
    });
    expect(planted.exitCode).toBe(0);

    for (const path of ["../x", "/etc/passwd", "a/../../x", "etc/passwd", "alias/inside.txt", "pw"]) {
      for (const [method, url, body] of [
        ["GET", wsPath(ws, "files", path)],
        ["PUT", wsPath(ws, "files"), { path, content: "x" }],
        ["GET", wsPath(ws, "directories", path)],
        ["GET", wsPath(ws, "download", path)],
        ["POST", wsPath(ws, "upload"), uploadForm(path, "x")],
      ] as const) {
        const r = await t.json(method, url, body === undefined ? {} : { body });
        expect({ path, method, url: url.split("?")[0], status: r.status, code: r.body?.error?.code }).toMatchObject({
          status: 400,
          code: "invalid_path",
        });
      }
    }
    expect((await t.json("DELETE", wsPath(ws, "files", "etc/passwd"))).body.error.code).toBe("invalid_path");
    expect((await t.json("DELETE", wsPath(ws, "files", "."))).body.error.code).toBe("invalid_path");
    // Deleting a link removes the link, never its target.
    expect((await t.json("DELETE", wsPath(ws, "files", "alias"))).status).toBe(200);
    expect((await readWs(ws, "real/inside.txt")).body.content).toBe("in");
    expect((await t.json("GET", wsPath(ws, "directories"))).body.entries.map((e: { name: string }) => e.name)).toEqual([
      "etc",
      "pw",
      "real",
    ]);
  });

  test("a delete of a path ending in `.` or `..` is 400 invalid_path, as rm refuses it, and the directory survives", async () => {
    const ws = await newWorkspace();
    expect((await writeWs(ws, "t/file", "kept")).status).toBe(200);
    // Normalised, `t/file/..` is `t`: deleting it would remove the whole directory.
    for (const path of ["t/file/..", "t/."]) {
      const r = await t.json("DELETE", wsPath(ws, "files", path));
      expect({ path, status: r.status, code: r.body.error?.code, reason: r.body.error?.details?.reason }).toEqual({
        path,
        status: 400,
        code: "invalid_path",
        reason: DOT_SEGMENT_REASON,
      });
    }
    expect((await readWs(ws, "t/file")).body.content).toBe("kept");
    expect((await t.json("DELETE", wsPath(ws, "files", "t/"))).body).toEqual({ status: "ok" });
    expect((await readWs(ws, "t/file")).status).toBe(404);
  });

  test("a helper whose volume was removed re-creates it with Bay's labels, so reconcile still sees it", async () => {
    const ws = await newWorkspace();
    expect((await writeWs(ws, "a.txt", "a")).status).toBe(200);
    const visible = async () => (await t.bay.driver.listVolumes({ instance_id: t.bay.instanceId })).find((v) => v.name === ws);
    // The owner label is the owner as Bay names it (anonymous owners are namespaced).
    const bayLabels = {
      owner: expect.stringMatching(/alice$/),
      workspace_id: ws,
      instance_id: t.bay.instanceId,
      workspace_kind: "external",
      "managed-by": "bay",
    };

    // A helper that runs a command (a listing; a delete racing the volume's removal is the same)
    await docker.getVolume(ws).remove();
    const listed = await t.json("GET", wsPath(ws, "directories"));
    expect(listed.body).toEqual({ path: ".", entries: [], truncated: false });
    expect(await volumeExists(ws)).toBe(true);
    expect((await visible())?.labels).toMatchObject(bayLabels);
    expect((await visible())?.labels.role).toBeUndefined();

    // An archive helper (created, never started)
    await docker.getVolume(ws).remove();
    expect((await readWs(ws, "a.txt")).body.error.code).toBe("file_not_found");
    expect((await visible())?.labels).toMatchObject(bayLabels);
    expect((await visible())?.labels.role).toBeUndefined();

    // An existing volume is mounted as is.
    expect((await writeWs(ws, "b.txt", "b")).status).toBe(200);
    expect((await readWs(ws, "b.txt")).body.content).toBe("b");
    expect((await t.call("DELETE", `/v1/workspaces/${ws}`)).status).toBe(204);
    expect(await volumeExists(ws)).toBe(false);
  });

  test("size_limit_mb: 413 on workspace and sandbox writes and uploads, with usage and limit", async () => {
    const ws = await newWorkspace({ size_limit_mb: 1 });
    const big = chunkOf(1, 2 * 1024 * 1024);
    const up = await t.json("POST", wsPath(ws, "upload"), { body: uploadForm("big.bin", big) });
    expect(up.status).toBe(413);
    expect(up.body.error.code).toBe("payload_too_large");
    expect(up.body.error.message).toMatch(/size limit exceeded: .* of 1 MB used/);
    expect(up.body.error.details).toMatchObject({ workspace_id: ws, limit_bytes: 1024 * 1024 });
    expect((await t.json("GET", wsPath(ws, "download", "big.bin"))).status).toBe(404);

    expect((await writeWs(ws, "a.txt", "a".repeat(600 * 1024))).status).toBe(200);
    const second = await writeWs(ws, "b.txt", "b".repeat(600 * 1024));
    expect(second.status).toBe(413);
    expect(second.body.error.details.used_bytes).toBeGreaterThan(600 * 1024);

    const sb = (await t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws } })).body.id as string;
    // With a Content-Length (as HTTP clients send) the upload is refused before any Ship starts.
    const form = new Response(uploadForm("big.bin", big));
    const contentType = form.headers.get("content-type")!; // read before the body: Bun drops it after
    const bytes = new Uint8Array(await form.arrayBuffer());
    const sbUp = await t.json("POST", `/v1/sandboxes/${sb}/filesystem/upload`, {
      body: bytes,
      headers: { "content-type": contentType, "content-length": String(bytes.byteLength) },
    });
    expect(sbUp.status).toBe(413);
    expect(sbUp.body.error.message).toContain("size limit exceeded");
    const sbWrite = await t.json("PUT", `/v1/sandboxes/${sb}/filesystem/files`, {
      body: { path: "b.txt", content: "b".repeat(600 * 1024) },
    });
    expect(sbWrite.status).toBe(413);
    expect(await containersOf(t, sb)).toEqual([]); // refused before any Ship started

    expect((await t.json("DELETE", wsPath(ws, "files", "a.txt"))).status).toBe(200);
    expect((await t.json("PUT", `/v1/sandboxes/${sb}/filesystem/files`, { body: { path: "b.txt", content: "fits now" } })).status).toBe(
      200,
    );
    expect((await readWs(ws, "b.txt")).body.content).toBe("fits now");
    expect((await t.call("DELETE", `/v1/sandboxes/${sb}`)).status).toBe(204);
    expect((await t.call("DELETE", `/v1/workspaces/${ws}`)).status).toBe(204);
    expect(await volumeExists(ws)).toBe(false);
  });
});
