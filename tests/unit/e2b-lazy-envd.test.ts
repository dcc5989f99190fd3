/**
 * envd's Connect RPC services load with the first envd call (src/bay/e2b/envd/rpc.ts):
 * a Bay whose E2B API serves only its control plane, or nothing, never loads Connect
 * RPC or protobuf (several MiB of resident memory for every Bay otherwise).
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "../..");

test("Connect RPC is not loaded by Bay, nor by an E2B create; the first envd call loads it and is answered", async () => {
  // A fresh Bun: this test process may hold the modules already (other test files).
  const script = `
    import { createTestBay } from ${JSON.stringify(join(ROOT, "tests/support/harness.ts"))};
    const connect = () => Object.keys(require.cache).filter((k) => /node_modules[\\\\/]@(connectrpc|bufbuild)[\\\\/]/.test(k)).length;
    const t = await createTestBay();
    const atStart = connect();
    const created = await t.bay.app.request("/e2b/v2/sandboxes", {
      method: "POST",
      headers: { "x-owner": "alice", "content-type": "application/json" },
      body: JSON.stringify({ templateID: "base" }),
    });
    const { sandboxID, envdAccessToken } = await created.json();
    const afterCreate = connect();
    const rpc = await t.bay.app.request("/e2b/process.Process/List", {
      method: "POST",
      headers: { "content-type": "application/json", "e2b-sandbox-id": sandboxID, "x-access-token": envdAccessToken + "x" },
      body: "{}",
    });
    const answer = await rpc.json();
    console.log(JSON.stringify({ created: created.status, atStart, afterCreate, rpcStatus: rpc.status, rpcCode: answer.code, afterRpc: connect() }));
    await t.close();
  `;
  const proc = Bun.spawn(["bun", "-e", script], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`bun -e exited ${code}: ${err}`);
  const r = JSON.parse(out.trim().split("\n").at(-1) ?? "null");
  expect(r).toMatchObject({ created: 201, atStart: 0, afterCreate: 0, rpcStatus: 401, rpcCode: "unauthenticated" });
  expect(r.afterRpc).toBeGreaterThan(0);
});
