/**
 * Bay only sends requests to Ship: it needs the protocol's routes, auth and
 * constants, never the generated zod schemas Ship validates with (a few MiB of
 * resident memory in every Bay). A fresh Bun that builds a Bay and serves an
 * exec through its Ship client must not have loaded them.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "../..");

test("a Bay (bootstrap, app, Ship client) loads no generated Ship schema", async () => {
  const script = `
    import { createTestBay } from ${JSON.stringify(join(ROOT, "tests/support/harness.ts"))};
    const loaded = () => Object.keys(require.cache).filter((k) => /protocol[\\\\/]ship[\\\\/](generated[\\\\/](schemas|operations)|index)\\.ts$/.test(k));
    const t = await createTestBay();
    const res = await t.bay.app.request("/v1/sandboxes", { method: "POST", headers: { "x-owner": "alice", "content-type": "application/json" }, body: "{}" });
    console.log(JSON.stringify({ status: res.status, loaded: loaded(), routes: Object.keys(require.cache).some((k) => /protocol[\\/]ship[\\/]generated[\\/]routes\\.ts$/.test(k)) }));
    await t.close();
  `;
  const proc = Bun.spawn(["bun", "-e", script], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`bun -e exited ${code}: ${err}`);
  const r = JSON.parse(out.trim().split("\n").at(-1) ?? "null");
  expect(r).toEqual({ status: 201, loaded: [], routes: true });
});
