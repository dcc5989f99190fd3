/**
 * What a started Bay does not load until a request needs it (issue 14's idle
 * RSS): jose (JWT configured), busboy (the first multipart body), tar-stream
 * (the first file moved through a workspace helper), the MCP SDK (the first
 * /mcp call) and the `yaml` package (a configuration file). Each is resident
 * memory every Bay would hold otherwise. The first use of each still works:
 * the multipart upload below, and the JWT, workspace and MCP suites.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "../..");

test("a started Bay has loaded none of the lazily loaded packages; the first multipart upload loads busboy and is stored", async () => {
  // A fresh Bun: this test process may hold the modules already (other test files).
  const script = `
    import { createMemoryBay, newSandbox } from ${JSON.stringify(join(ROOT, "tests/api/support/memory-bay.ts"))};
    const loaded = () => {
      const names = new Set();
      for (const k of Object.keys(require.cache)) {
        const m = /node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)[\\\\/]/.exec(k);
        if (m) names.add(m[1].replace("\\\\", "/"));
      }
      return ["jose", "busboy", "tar-stream", "streamx", "yaml", "@modelcontextprotocol/sdk"].filter((n) => names.has(n));
    };
    const t = await createMemoryBay();
    const id = await newSandbox(t);
    const listed = await t.call("GET", "/v1/sandboxes");
    const atStart = loaded();
    const form = new FormData();
    form.set("path", "lazy/a.txt");
    form.set("file", new Blob(["lazy bytes"]), "a.txt");
    const up = await t.call("POST", "/v1/sandboxes/" + id + "/filesystem/upload", { body: form });
    const back = await t.call("GET", "/v1/sandboxes/" + id + "/filesystem/download?path=lazy/a.txt");
    console.log(JSON.stringify({ listed: listed.status, atStart, upload: up.status, back: await back.text(), afterUpload: loaded() }));
    await t.close();
  `;
  const proc = Bun.spawn(["bun", "-e", script], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`bun -e exited ${code}: ${err}`);
  const r = JSON.parse(out.trim().split("\n").at(-1) ?? "null");
  expect(r).toEqual({ listed: 200, atStart: [], upload: 200, back: "lazy bytes", afterUpload: ["busboy"] });
});
