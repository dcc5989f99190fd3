/**
 * Capabilities through Bay on real Docker with the real Ship image: upload and
 * download, filesystem read/write/list/delete, Python state/errors/timeouts,
 * shell exit codes/cwd/env and background processes.
 */
import { describe, expect, test } from "bun:test";
import { DOT_SEGMENT_REASON, NOT_A_DIRECTORY_REASON } from "../../src/protocol/ship/constants.ts";
import type { TestBay } from "../support/harness.ts";
import { containersOf, py, sh, uploadForm, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay));

const sha256 = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

describe("upload and download", () => {
  test("text and 1 MB random binary round trip byte-exact; nested path created", async () => {
    await withSandbox(t, async (id) => {
      const text = "héllo\nworld\r\n\u0000tail";
      const up1 = await t.json("POST", `/v1/sandboxes/${id}/filesystem/upload`, { body: uploadForm("notes/hello.txt", text, "hello.txt") });
      expect(up1.status).toBe(200);
      expect(up1.body).toMatchObject({ status: "ok", path: "notes/hello.txt", size: Buffer.byteLength(text) });
      const down1 = await t.call("GET", `/v1/sandboxes/${id}/filesystem/download?path=notes/hello.txt`);
      expect(down1.status).toBe(200);
      expect(down1.headers.get("content-type")).toContain("application/octet-stream");
      expect(down1.headers.get("content-disposition")).toContain("hello.txt");
      expect(await down1.text()).toBe(text);

      const bin = crypto.getRandomValues(new Uint8Array(1024 * 1024));
      const up2 = await t.json("POST", `/v1/sandboxes/${id}/filesystem/upload`, { body: uploadForm("a/b/c/blob.bin", bin) });
      expect(up2.status).toBe(200);
      expect(up2.body).toMatchObject({ status: "ok", path: "a/b/c/blob.bin", size: bin.length });
      const down2 = await t.call("GET", `/v1/sandboxes/${id}/filesystem/download?path=a/b/c/blob.bin`);
      expect(down2.status).toBe(200);
      const got = new Uint8Array(await down2.arrayBuffer());
      expect(got.length).toBe(bin.length);
      expect(sha256(got)).toBe(sha256(bin));
      // Also seen from inside the sandbox.
      const check = await sh(t, id, { command: "stat -c %s a/b/c/blob.bin && sha256sum a/b/c/blob.bin | cut -c1-64" });
      expect(check.body.output.trim().split("\n")).toEqual([String(bin.length), sha256(bin)]);
    });
  });

  test("missing file → 404 file_not_found; path after the file works (spooled); path missing → 400", async () => {
    await withSandbox(t, async (id) => {
      const missing = await t.json("GET", `/v1/sandboxes/${id}/filesystem/download?path=nope/none.bin`);
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe("file_not_found");

      const late = new FormData();
      late.append("file", new Blob(["data"]), "f.txt");
      late.append("path", "late.txt");
      const r1 = await t.json("POST", `/v1/sandboxes/${id}/filesystem/upload`, { body: late });
      expect(r1.status).toBe(200);
      expect(r1.body).toMatchObject({ status: "ok", path: "late.txt", size: 4 });
      expect((await t.json("GET", `/v1/sandboxes/${id}/filesystem/files?path=late.txt`)).body.content).toBe("data");

      const lateEscape = new FormData();
      lateEscape.append("file", new Blob(["data"]), "f.txt");
      lateEscape.append("path", "../late.txt");
      const r3 = await t.json("POST", `/v1/sandboxes/${id}/filesystem/upload`, { body: lateEscape });
      expect(r3.status).toBe(400);
      expect(r3.body.error.code).toBe("invalid_path");

      const none = new FormData();
      none.append("file", new Blob(["data"]), "f.txt");
      const r2 = await t.json("POST", `/v1/sandboxes/${id}/filesystem/upload`, { body: none });
      expect(r2.status).toBe(400);
      expect(r2.body.error.code).toBe("validation_error");

      const escaping = await t.json("POST", `/v1/sandboxes/${id}/filesystem/upload`, { body: uploadForm("../evil.txt", "x") });
      expect(escaping.status).toBe(400);
      expect(escaping.body.error.code).toBe("invalid_path");
    });
  });
});

describe("filesystem", () => {
  test("write, read, list entries, delete a file and a directory", async () => {
    await withSandbox(t, async (id) => {
      const base = `/v1/sandboxes/${id}/filesystem`;
      expect((await t.json("PUT", `${base}/files`, { body: { path: "dir/one.txt", content: "one" } })).status).toBe(200);
      expect((await t.json("PUT", `${base}/files`, { body: { path: "dir/sub/two.txt", content: "two!" } })).status).toBe(200);
      const read = await t.json("GET", `${base}/files?path=dir/one.txt`);
      expect(read.status).toBe(200);
      expect(read.body.content).toBe("one");

      const list = await t.json("GET", `${base}/directories?path=dir`);
      expect(list.status).toBe(200);
      const entries = [...list.body.entries].sort((a: any, b: any) => a.name.localeCompare(b.name));
      expect(entries.map((e: any) => e.name)).toEqual(["one.txt", "sub"]);
      for (const e of entries) {
        expect(Object.keys(e).sort()).toEqual(["is_dir", "is_file", "modified_time", "name", "path", "size"]);
        expect(Number.isNaN(Date.parse(e.modified_time))).toBe(false);
      }
      expect(entries[0]).toMatchObject({ name: "one.txt", path: "dir/one.txt", is_file: true, is_dir: false, size: 3 });
      expect(entries[1]).toMatchObject({ name: "sub", path: "dir/sub", is_file: false, is_dir: true });

      expect((await t.json("DELETE", `${base}/files?path=dir/one.txt`)).body).toEqual({ status: "ok" });
      expect((await t.json("GET", `${base}/files?path=dir/one.txt`)).body.error.code).toBe("file_not_found");
      // A path ending in / must name a directory, as `rm -r file/` says "Not a directory".
      expect((await t.json("PUT", `${base}/files`, { body: { path: "dir/file.txt", content: "kept" } })).status).toBe(200);
      const fileSlash = await t.json("DELETE", `${base}/files?path=dir/file.txt/`);
      expect([fileSlash.status, fileSlash.body.error?.code, fileSlash.body.error?.details?.reason]).toEqual([
        400,
        "invalid_path",
        NOT_A_DIRECTORY_REASON,
      ]);
      expect((await t.json("GET", `${base}/files?path=dir/file.txt`)).body.content).toBe("kept");
      // A path ending in `.` or `..` is refused, as `rm -r dir/file.txt/..` refuses it: normalised, it would delete `dir`.
      for (const path of ["dir/file.txt/..", "dir/."]) {
        const dotted = await t.json("DELETE", `${base}/files?path=${encodeURIComponent(path)}`);
        expect([path, dotted.status, dotted.body.error?.code, dotted.body.error?.details?.reason]).toEqual([
          path,
          400,
          "invalid_path",
          DOT_SEGMENT_REASON,
        ]);
      }
      expect((await t.json("GET", `${base}/files?path=dir/file.txt`)).body.content).toBe("kept");
      const delDir = await t.json("DELETE", `${base}/files?path=dir/`);
      expect(delDir.status).toBe(200);
      expect((await t.json("GET", `${base}/directories?path=dir`)).status).toBe(404);
      const absolute = await t.json("GET", `${base}/files?path=/etc/passwd`);
      expect(absolute.status).toBe(400);
      expect(absolute.body.error.code).toBe("invalid_path");
    });
  });
});

describe("python", () => {
  test("state across calls; exception → success false + plain traceback; timeout → 504, kernel keeps state", async () => {
    await withSandbox(t, async (id) => {
      expect((await py(t, id, "counter = 41\nimport math")).body.success).toBe(true);
      const state = await py(t, id, "counter + 1");
      expect(state.body.success).toBe(true);
      expect(`${state.body.output}`.trim()).toBe("42");

      const printed = await py(t, id, "print('out line')");
      expect(printed.body.output).toContain("out line");

      const boom = await py(t, id, "def f():\n    raise ValueError('bad value')\nf()");
      expect(boom.status).toBe(200);
      expect(boom.body.success).toBe(false);
      expect(boom.body.error).toContain("ValueError");
      expect(boom.body.error).toContain("bad value");
      expect(boom.body.error).toContain("Traceback");
      expect(boom.body.error).not.toContain("\u001b[");

      const slow = await py(t, id, "while True: pass", 1);
      expect(slow.status).toBe(504);
      expect(slow.body.error.code).toBe("timeout");

      const after = await py(t, id, "counter * 2");
      expect(after.status).toBe(200);
      expect(after.body.success).toBe(true);
      expect(`${after.body.output}`.trim()).toBe("82");
      expect(await containersOf(t, id)).toHaveLength(1);
    });
  });
});

describe("shell", () => {
  test("exit codes, stderr, cwd relative to the workspace, cwd escape → 400, env", async () => {
    await withSandbox(t, async (id) => {
      const ok = await sh(t, id, { command: "echo hi" });
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({ success: true, exit_code: 0 });
      expect(ok.body.output).toBe("hi\n");

      const bad = await sh(t, id, { command: "echo oops >&2; exit 7" });
      expect(bad.status).toBe(200);
      expect(bad.body.success).toBe(false);
      expect(bad.body.exit_code).toBe(7);
      expect(bad.body.error).toContain("oops");

      expect((await sh(t, id, { command: "mkdir -p work/deep" })).body.exit_code).toBe(0);
      const cwd = await sh(t, id, { command: "pwd", cwd: "work/deep" });
      expect(cwd.body.output.trim()).toBe("/workspace/work/deep");
      const root = await sh(t, id, { command: "pwd" });
      expect(root.body.output.trim()).toBe("/workspace");

      for (const outside of ["..", "/etc", "work/../../tmp"]) {
        const r = await sh(t, id, { command: "pwd", cwd: outside });
        expect(r.status).toBe(400);
        expect(r.body.error.code).toBe("invalid_path");
      }

      const env = await sh(t, id, { command: 'printf "%s" "$GREETING"', env: { GREETING: "hello from env" } });
      expect(env.body.output).toBe("hello from env");
    });
  });

  test("a background process is listed and can be killed", async () => {
    await withSandbox(t, async (id) => {
      const bg = await sh(t, id, { command: "sleep 300", background: true });
      expect(bg.status).toBe(200);
      expect(bg.body.success).toBe(true);
      const pid = bg.body.process_id as string;
      expect(pid).toBeTruthy();

      const list = await t.json("GET", `/v1/sandboxes/${id}/shell/processes`);
      expect(list.status).toBe(200);
      const item = list.body.items.find((p: any) => p.process_id === pid);
      expect(item).toMatchObject({ command: "sleep 300", status: "running" });
      expect(typeof item.pid).toBe("number");

      const kill = await t.json("DELETE", `/v1/sandboxes/${id}/shell/processes/${pid}`);
      expect(kill.status).toBe(200);
      let status = kill.body.status;
      for (let i = 0; i < 30 && status === "running"; i++) {
        await Bun.sleep(100);
        status = (await t.json("GET", `/v1/sandboxes/${id}/shell/processes/${pid}`)).body.status;
      }
      expect(status).not.toBe("running");
      const ps = await sh(t, id, { command: "pgrep -x sleep || true" });
      expect(ps.body.output.trim()).toBe("");

      const unknown = await t.json("GET", `/v1/sandboxes/${id}/shell/processes/proc-doesnotexist`);
      expect(unknown.status).toBe(404);
    });
  });
});
