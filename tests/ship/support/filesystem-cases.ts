import { expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { DOT_SEGMENT_REASON, NOT_A_DIRECTORY_REASON } from "../../../src/protocol/ship/constants.ts";
import type { ShipClient } from "./caller.ts";

const q = (path: string) => `?path=${encodeURIComponent(path)}`;

/** Filesystem behaviours shared by every Ship target. */
export function filesystemCases(client: () => ShipClient): void {
  test("fs: write, read, list, delete", async () => {
    const put = await client().json("PUT", "/filesystem/files", { path: "notes/deep/a.txt", content: "héllo\n" });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ status: "ok", path: "notes/deep/a.txt", size: 7 });
    const read = await client().json("GET", `/filesystem/files${q("notes/deep/a.txt")}`);
    expect(read.body).toEqual({ path: "notes/deep/a.txt", content: "héllo\n" });
    const list = await client().json("GET", `/filesystem/directories${q("notes/deep")}`);
    expect(list.body.path).toBe("notes/deep");
    expect(list.body.entries).toHaveLength(1);
    const entry = list.body.entries[0];
    expect(entry).toMatchObject({ name: "a.txt", path: "notes/deep/a.txt", is_file: true, is_dir: false, size: 7 });
    expect(new Date(entry.modified_time).toISOString()).toBe(entry.modified_time);
    const root = await client().json("GET", "/filesystem/directories");
    expect(root.body.entries.find((e: any) => e.name === "notes")).toMatchObject({ path: "notes", is_dir: true });
    const del = await client().json("DELETE", `/filesystem/files${q("notes")}`);
    expect(del.body).toEqual({ status: "ok" });
    const gone = await client().json("GET", `/filesystem/files${q("notes/deep/a.txt")}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe("file_not_found");
  });

  test("fs: missing paths are file_not_found", async () => {
    for (const path of ["/filesystem/files?path=nope.txt", "/filesystem/directories?path=nope", "/filesystem/download?path=nope"]) {
      const res = await client().json(path.includes("download") ? "GET" : "GET", path);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe("file_not_found");
    }
    const del = await client().json("DELETE", "/filesystem/files?path=nope");
    expect(del.body.error.code).toBe("file_not_found");
  });

  test("fs: binary upload and download round-trip", async () => {
    const bytes = randomBytes(1_500_000);
    const up = await client().call(`/filesystem/upload${q("up/nested/blob.bin")}`, { method: "POST", body: bytes });
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ status: "ok", path: "up/nested/blob.bin", size: bytes.length });
    const down = await client().call(`/filesystem/download${q("up/nested/blob.bin")}`);
    expect(down.status).toBe(200);
    expect(down.headers.get("content-type")).toBe("application/octet-stream");
    expect(down.headers.get("content-disposition")).toContain('attachment; filename="blob.bin"');
    expect(Buffer.from(await down.arrayBuffer()).equals(bytes)).toBe(true);
    // an empty body is an empty file
    const up2 = await client().call(`/filesystem/upload${q("up/empty.bin")}`, { method: "POST" });
    expect(((await up2.json()) as any).size).toBe(0);
    const noTemp = await client().json("GET", "/filesystem/directories");
    expect(noTemp.body.entries.some((e: any) => e.name.startsWith(".ship-upload-"))).toBe(false);
  });

  test("fs: a text read of a file that is not text is 400 binary, pointing to download; UTF-8 text reads as is", async () => {
    const cases: Array<[string, Uint8Array<ArrayBuffer>]> = [
      ["bin/invalid.bin", new Uint8Array([0x68, 0x69, 0xff, 0xfe, 0x0a])], // not UTF-8
      ["bin/nul.txt", new TextEncoder().encode("a\u0000b")], // valid UTF-8 with a NUL
      ["bin/cut.txt", new Uint8Array([0xc3])], // a character cut in half (the first byte of é)
    ];
    for (const [path, bytes] of cases) {
      expect((await client().call(`/filesystem/upload${q(path)}`, { method: "POST", body: bytes })).status).toBe(200);
      const read = await client().json("GET", `/filesystem/files${q(path)}`);
      expect({ path, status: read.status, code: read.body.error?.code, details: read.body.error?.details }).toEqual({
        path,
        status: 400,
        code: "validation_error",
        details: { path, reason: "binary" },
      });
      expect(read.body.error.message).toContain(`filesystem/download?path=${encodeURIComponent(path)}`);
    }
    // A leading byte-order mark is part of the text: read, changed and written back, it stays.
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0x69]);
    await client().call(`/filesystem/upload${q("bin/bom.txt")}`, { method: "POST", body: bom });
    expect((await client().json("GET", `/filesystem/files${q("bin/bom.txt")}`)).body).toEqual({ path: "bin/bom.txt", content: "\ufeffhi" });
    const text = "héllo, 世界 🌊\n";
    await client().call(`/filesystem/upload${q("bin/ok.txt")}`, { method: "POST", body: new TextEncoder().encode(text) });
    expect((await client().json("GET", `/filesystem/files${q("bin/ok.txt")}`)).body).toEqual({ path: "bin/ok.txt", content: text });
  });

  test("fs: invalid paths are refused with invalid_path", async () => {
    await client().shell("ln -sfn /etc etc-link && ln -sfn /etc/passwd passwd-link && ln -sfn /nonexistent/x dangling");
    try {
      const cases = ["/etc/passwd", "..", "../x", "a/../../x", "a\0b", "etc-link/passwd", "passwd-link", "etc-link"];
      for (const path of cases) {
        const read = await client().json("GET", `/filesystem/files${q(path)}`);
        expect([path, read.status, read.body.error?.code]).toEqual([path, 400, "invalid_path"]);
        const write = await client().json("PUT", "/filesystem/files", { path, content: "x" });
        expect([path, write.status, write.body.error?.code]).toEqual([path, 400, "invalid_path"]);
      }
      const escapes = await client().json("PUT", "/filesystem/files", { path: "etc-link/new-file", content: "x" });
      expect(escapes.body.error.code).toBe("invalid_path");
      const dangling = await client().json("PUT", "/filesystem/files", { path: "dangling", content: "x" });
      expect(dangling.body.error.code).toBe("invalid_path");
      const list = await client().json("GET", `/filesystem/directories${q("etc-link")}`);
      expect(list.body.error.code).toBe("invalid_path");
      const down = await client().json("GET", `/filesystem/download${q("passwd-link")}`);
      expect(down.body.error.code).toBe("invalid_path");
      const up = await client().call(`/filesystem/upload${q("../escape.bin")}`, { method: "POST", body: "x" });
      expect(up.status).toBe(400);
      expect(((await up.json()) as any).error.code).toBe("invalid_path");
    } finally {
      await client().shell("rm -f etc-link passwd-link dangling");
    }
  });

  test("fs: a listing shows symlinks as links, never their targets", async () => {
    await client().shell(
      "mkdir -p links && ln -sfn /etc/passwd links/passwd-link && ln -sfn /etc links/etc-link && ln -sfn /nonexistent/x links/dangling",
    );
    try {
      const list = await client().json("GET", `/filesystem/directories${q("links")}`);
      expect(list.status).toBe(200);
      const byName = Object.fromEntries(list.body.entries.map((e: any) => [e.name, e]));
      expect(Object.keys(byName).sort()).toEqual(["dangling", "etc-link", "passwd-link"]);
      // The link's own size (its target's length), not /etc/passwd's.
      expect(byName["passwd-link"]).toMatchObject({ path: "links/passwd-link", is_file: false, is_dir: false, size: "/etc/passwd".length });
      expect(byName["etc-link"]).toMatchObject({ is_file: false, is_dir: false, size: "/etc".length });
      expect(byName["dangling"]).toMatchObject({ is_file: false, is_dir: false });
    } finally {
      await client().shell("rm -rf links");
    }
  });

  test("fs: deleting a symlink removes the link, never its target", async () => {
    await client().shell(
      "mkdir -p keep && echo k > keep/f && echo s > sentinel && ln -sfn keep lnk && ln -sfn . self && " +
        "ln -sfn /etc etc-del-link && ln -sfn /nonexistent/x dangling-del",
    );
    try {
      for (const link of ["lnk", "self", "etc-del-link", "dangling-del"]) {
        const del = await client().json("DELETE", `/filesystem/files${q(link)}`);
        expect([link, del.status, del.body]).toEqual([link, 200, { status: "ok" }]);
      }
      const left = await client().shell("ls -A; cat keep/f sentinel; ls -ld /etc >/dev/null && echo etc-ok");
      expect(left.body.output).not.toMatch(/^(lnk|self|etc-del-link|dangling-del)$/m);
      expect(left.body.output).toMatch(/^keep$/m);
      expect(left.body.output).toMatch(/^sentinel$/m);
      expect(left.body.output).toContain("k\ns\netc-ok\n");
      // Deleting a directory through a symlinked parent deletes inside the real directory.
      await client().shell("mkdir -p keep/sub && ln -sfn keep lnk2");
      const viaLink = await client().json("DELETE", `/filesystem/files${q("lnk2/sub")}`);
      expect(viaLink.status).toBe(200);
      const after = await client().shell("ls -A keep; ls -A | grep -c '^.ship-delete-' || true");
      expect(after.body.output).toBe("f\n0\n");
      const root = await client().json("DELETE", `/filesystem/files${q("./")}`);
      expect([root.status, root.body.error?.code]).toEqual([400, "invalid_path"]);
    } finally {
      await client().shell("rm -rf keep sentinel lnk lnk2 self etc-del-link dangling-del");
    }
  });

  test("fs: a delete of a path ending in / must find a directory, and one ending in . or .. is refused, as rm does", async () => {
    await client().shell("mkdir -p tr/dir/sub && echo f > tr/file.txt && echo d > tr/dir/sub/x && ln -sfn dir tr/link");
    try {
      for (const path of ["tr/file.txt/", "tr/link/", "tr/dir/sub/x/"]) {
        const del = await client().json("DELETE", `/filesystem/files${q(path)}`);
        expect([path, del.status, del.body.error?.code, del.body.error?.details?.reason]).toEqual([
          path,
          400,
          "invalid_path",
          NOT_A_DIRECTORY_REASON,
        ]);
      }
      // One ending in `.` or `..` is refused outright, as rm refuses it: `tr/file.txt/..` would otherwise delete `tr`.
      for (const path of ["tr/file.txt/..", "tr/file.txt/.", "tr/dir/.", "tr/dir/sub/.."]) {
        const del = await client().json("DELETE", `/filesystem/files${q(path)}`);
        expect([path, del.status, del.body.error?.code, del.body.error?.details?.reason]).toEqual([
          path,
          400,
          "invalid_path",
          DOT_SEGMENT_REASON,
        ]);
      }
      expect((await client().shell("cat tr/file.txt tr/dir/sub/x && readlink tr/link")).body.output).toBe("f\nd\ndir\n");
      const missing = await client().json("DELETE", `/filesystem/files${q("tr/nope/")}`);
      expect([missing.status, missing.body.error?.code]).toEqual([404, "file_not_found"]);
      for (const path of ["tr/dir/sub/", "tr/dir/", "tr/file.txt", "tr/link"]) {
        const del = await client().json("DELETE", `/filesystem/files${q(path)}`);
        expect([path, del.status, del.body]).toEqual([path, 200, { status: "ok" }]);
      }
      expect((await client().shell("ls -A tr")).body.output).toBe("");
    } finally {
      await client().shell("rm -rf tr");
    }
  });

  test("fs: a FIFO is refused promptly and no descriptor is left open", async () => {
    await client().shell("rm -f fifo && mkfifo fifo");
    const within = <T>(p: Promise<T>) => Promise.race([p, Bun.sleep(5000).then(() => Promise.reject(new Error("request hung on a FIFO")))]);
    try {
      const read = await within(client().json("GET", `/filesystem/files${q("fifo")}`));
      expect([read.status, read.body.error?.code]).toEqual([400, "validation_error"]);
      const down = await within(client().json("GET", `/filesystem/download${q("fifo")}`));
      expect([down.status, down.body.error?.code]).toEqual([400, "validation_error"]);
      const write = await within(client().json("PUT", "/filesystem/files", { path: "fifo", content: "x" }));
      expect([write.status, write.body.error?.code]).toEqual([400, "validation_error"]);
      // Ship is the parent of the exec's bash: none of its descriptors points at the FIFO.
      const fds = await client().shell("ls -l /proc/$PPID/fd | grep -c '/fifo$' || true");
      expect(fds.body.output.trim()).toBe("0");
    } finally {
      // Opening read-write releases a reader blocked in open(); then remove the FIFO.
      await client().shell("exec 3<>fifo; exec 3>&-; rm -f fifo");
    }
  });

  test("fs: bad path shapes are 400, never 500", async () => {
    await client().shell("echo x > plain && ln -sfn loop-a loop-b && ln -sfn loop-b loop-a");
    try {
      const cases: Array<[string, string]> = [
        ["x".repeat(300), "invalid_path"],
        ["a/".repeat(2100) + "x", "invalid_path"],
        ["loop-a", "invalid_path"],
        ["loop-a/x", "invalid_path"],
        ["plain/x", "invalid_path"],
      ];
      for (const [path, code] of cases) {
        const shown = path.slice(0, 20);
        const read = await client().json("GET", `/filesystem/files${q(path)}`);
        expect([shown, "read", read.status, read.body.error?.code]).toEqual([shown, "read", 400, code]);
        const write = await client().json("PUT", "/filesystem/files", { path, content: "x" });
        expect([shown, "write", write.status, write.body.error?.code]).toEqual([shown, "write", 400, code]);
        const list = await client().json("GET", `/filesystem/directories${q(path)}`);
        expect([shown, "list", list.status, list.body.error?.code]).toEqual([shown, "list", 400, code]);
      }
      const plainDir = await client().json("GET", `/filesystem/directories${q("plain")}`);
      expect([plainDir.status, plainDir.body.error?.code]).toEqual([400, "validation_error"]);
    } finally {
      await client().shell("rm -f plain loop-a loop-b");
    }
  });

  test("fs: an upload refused for its path stores nothing", async () => {
    for (const path of ["etc-nope/../../x", "."]) {
      const up = await client().call(`/filesystem/upload${q(path)}`, { method: "POST", body: "payload" });
      expect([path, up.status]).toEqual([path, 400]);
    }
    const list = await client().json("GET", "/filesystem/directories");
    expect(list.body.entries.some((e: any) => e.name.startsWith(".ship-upload-"))).toBe(false);
  });

  test("fs: upload-check answers each path as its upload would, with its index, and writes nothing", async () => {
    await client().shell("mkdir -p uc/dir && echo f > uc/file && ln -s /etc uc/out && ln -s nowhere uc/dangle && ln -s dir uc/linkdir");
    try {
      for (const path of ["uc/dir", "uc/linkdir", "uc/file/x", "uc/out/x", "uc/dangle", "uc/dangle/x", "."]) {
        const up = await client().call(`/filesystem/upload${q(path)}`, { method: "POST", body: "payload" });
        const upBody = await up.json();
        const check = await client().json("POST", "/filesystem/upload-check", { paths: ["uc/ok.txt", path, "uc/dir"] });
        expect([path, check.status, check.body]).toEqual([
          path,
          up.status,
          { error: { ...upBody.error, details: { ...upBody.error.details, index: 1 } } },
        ]);
      }
      const ok = await client().json("POST", "/filesystem/upload-check", {
        paths: ["uc/new/deep/a.txt", "uc/ok.txt", "uc/linkdir/b.txt", "uc/file"],
      });
      expect([ok.status, ok.body]).toEqual([200, { status: "ok" }]);
      const list = await client().json("GET", `/filesystem/directories${q("uc")}`);
      expect(list.body.entries.map((e: any) => e.name).sort()).toEqual(["dangle", "dir", "file", "linkdir", "out"]);
      expect((await client().json("GET", `/filesystem/files${q("uc/file")}`)).body.content).toBe("f\n");
      for (const paths of [[], Array.from({ length: 1001 }, (_, i) => `f${i}`), [""]]) {
        const refused = await client().json("POST", "/filesystem/upload-check", { paths });
        expect([refused.status, refused.body.error?.code]).toEqual([400, "validation_error"]);
      }
    } finally {
      await client().shell("rm -rf uc");
    }
  });

  test("fs: a listing is capped at 10000 entries", async () => {
    await client().shell("mkdir -p big && cd big && touch f{00001..10001} && mkdir -p ../small && touch ../small/one");
    try {
      const big = await client().json("GET", `/filesystem/directories${q("big")}`);
      expect(big.status).toBe(200);
      expect(big.body.entries).toHaveLength(10_000);
      expect(big.body.truncated).toBe(true);
      const small = await client().json("GET", `/filesystem/directories${q("small")}`);
      expect(small.body).toMatchObject({ path: "small", truncated: false });
      expect(small.body.entries).toHaveLength(1);
    } finally {
      await client().shell("rm -rf big small");
    }
  });

  test("fs: validation errors", async () => {
    const noPath = await client().json("GET", "/filesystem/files");
    expect([noPath.status, noPath.body.error.code]).toEqual([400, "validation_error"]);
    const noContent = await client().json("PUT", "/filesystem/files", { path: "a.txt" });
    expect([noContent.status, noContent.body.error.code]).toEqual([400, "validation_error"]);
    const noUploadPath = await client().json("POST", "/filesystem/upload", { path: "a" });
    expect([noUploadPath.status, noUploadPath.body.error.code]).toEqual([400, "validation_error"]);
  });
}
