import { expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
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
    const form = new FormData();
    form.append("path", "up/nested/blob.bin");
    form.append("file", new Blob([bytes]), "blob.bin");
    const up = await client().call("/filesystem/upload", { method: "POST", body: form });
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ status: "ok", path: "up/nested/blob.bin", size: bytes.length });
    const down = await client().call(`/filesystem/download${q("up/nested/blob.bin")}`);
    expect(down.status).toBe(200);
    expect(down.headers.get("content-type")).toBe("application/octet-stream");
    expect(down.headers.get("content-disposition")).toContain('attachment; filename="blob.bin"');
    expect(Buffer.from(await down.arrayBuffer()).equals(bytes)).toBe(true);
    // file part first, path second works too
    const form2 = new FormData();
    form2.append("file", new Blob([bytes.subarray(0, 10)]), "x.bin");
    form2.append("path", "up/second.bin");
    const up2 = await client().call("/filesystem/upload", { method: "POST", body: form2 });
    expect(((await up2.json()) as any).size).toBe(10);
    const noTemp = await client().json("GET", "/filesystem/directories");
    expect(noTemp.body.entries.some((e: any) => e.name.startsWith(".ship-upload-"))).toBe(false);
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
      const form = new FormData();
      form.append("path", "../escape.bin");
      form.append("file", new Blob(["x"]), "e.bin");
      const up = await client().call("/filesystem/upload", { method: "POST", body: form });
      expect(up.status).toBe(400);
      expect(((await up.json()) as any).error.code).toBe("invalid_path");
    } finally {
      await client().shell("rm -f etc-link passwd-link dangling");
    }
  });

  test("fs: a listing shows symlinks as links, never their targets", async () => {
    await client().shell("mkdir -p links && ln -sfn /etc/passwd links/passwd-link && ln -sfn /etc links/etc-link && ln -sfn /nonexistent/x links/dangling");
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

  test("fs: validation errors", async () => {
    const noPath = await client().json("GET", "/filesystem/files");
    expect([noPath.status, noPath.body.error.code]).toEqual([400, "validation_error"]);
    const noContent = await client().json("PUT", "/filesystem/files", { path: "a.txt" });
    expect([noContent.status, noContent.body.error.code]).toEqual([400, "validation_error"]);
    const notMultipart = await client().json("POST", "/filesystem/upload", { path: "a" });
    expect([notMultipart.status, notMultipart.body.error.code]).toEqual([400, "validation_error"]);
  });
}
