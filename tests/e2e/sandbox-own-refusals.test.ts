/**
 * What the sandbox's own code does to its files, as the runtime's user (uid 1000 in the
 * real Ship image, not root as in tests/ship) and through Bay: a tree with a read-only
 * directory inside, a locked cwd, a program that is running. Each is the path's refusal
 * in the error model (relayed from Ship with its details), never 502 "sandbox runtime
 * failed"; nothing is lost without a word.
 */
import { describe, expect, test } from "bun:test";
import { assertContractErrorBody } from "../support/error-contract.ts";
import type { TestBay } from "../support/harness.ts";
import { sh, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => {
  t = bay;
});

const files = (id: string) => `/v1/sandboxes/${id}/filesystem/files`;

/** A refusal: its status, code and details, its body checked against the spec. */
async function refusal(res: { status: number; body: any }) {
  assertContractErrorBody(res.status, res.body);
  return [res.status, res.body.error.code, res.body.error.details];
}

describe("refusals the sandbox's own code causes, as the runtime's user", () => {
  test("a tree with a read-only directory inside (as Go's module cache makes): 400 invalid_path, what could go is gone, the rest put back and said so", async () => {
    await withSandbox(t, async (id) => {
      const made = await sh(t, id, {
        command:
          "id -u && mkdir -p go/pkg/mod/m@v1 && echo 'module m' > go/pkg/mod/m@v1/go.mod && echo x > go/notes.txt && chmod 555 go/pkg/mod/m@v1",
      });
      expect([made.status, made.body.output]).toEqual([200, "1000\n"]);
      const res = await t.json("DELETE", `${files(id)}?path=go`);
      expect(await refusal(res)).toEqual([400, "invalid_path", { path: "go", reason: "permission denied", remaining_at: "go" }]);
      expect(JSON.stringify(res.body)).not.toContain(".ship-delete-");
      expect((await t.json("GET", `${files(id)}?path=go/pkg/mod/m@v1/go.mod`)).body.content).toBe("module m\n");
      expect((await t.json("GET", `${files(id)}?path=go/notes.txt`)).status).toBe(404);
      // Once the sandbox unlocks it, the same delete goes through, and nothing is left in the root.
      expect((await sh(t, id, { command: "chmod 755 go/pkg/mod/m@v1" })).status).toBe(200);
      expect((await t.call("DELETE", `${files(id)}?path=go`)).status).toBe(200);
      const root = await t.json("GET", `/v1/sandboxes/${id}/filesystem/directories?path=.`);
      expect(root.body.entries.map((e: { name: string }) => e.name).filter((n: string) => n.startsWith(".ship-delete-"))).toEqual([]);
    });
  });

  test("the workspace routes (the volume, no runtime) answer the same: a read-only tree's delete, a locked directory's listing; a file dated before 1970 is listed", async () => {
    const ws = await t.json("POST", "/v1/workspaces", { body: {} });
    expect(ws.status).toBe(201);
    const wsFiles = `/v1/workspaces/${ws.body.id}/filesystem`;
    try {
      const sb = await t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws.body.id } });
      expect(sb.status).toBe(201);
      const made = await sh(t, sb.body.id, {
        command:
          "mkdir -p go/mod/m && echo 'module m' > go/mod/m/go.mod && echo x > go/notes.txt && chmod 555 go/mod/m && " +
          "mkdir locked && chmod 000 locked && touch -d 1960-01-01 old",
      });
      expect(made.status).toBe(200);
      // What the sandbox made stays in the volume once it is gone: the workspace routes read the volume itself.
      expect((await t.call("DELETE", `/v1/sandboxes/${sb.body.id}`)).status).toBe(204);
      const del = await t.json("DELETE", `${wsFiles}/files?path=go`);
      expect(await refusal(del)).toEqual([400, "invalid_path", { path: "go", reason: "permission denied", remaining_at: "go" }]);
      expect((await t.json("GET", `${wsFiles}/files?path=go/notes.txt`)).status).toBe(404);
      expect((await t.json("GET", `${wsFiles}/files?path=go/mod/m/go.mod`)).body.content).toBe("module m\n");
      const locked = await t.json("GET", `${wsFiles}/directories?path=locked`);
      expect(await refusal(locked)).toEqual([400, "invalid_path", { path: "locked", reason: "permission denied" }]);
      const root = await t.json("GET", `${wsFiles}/directories?path=.`);
      const old = root.body.entries.find((e: { name: string }) => e.name === "old");
      expect(old?.modified_time).toStartWith("1960-01-01");
    } finally {
      await t.call("DELETE", `/v1/workspaces/${ws.body.id}`);
    }
  });

  test("an exec in a cwd the sandbox locked (chmod 000): 400 invalid_path naming it; unlocked, it runs there", async () => {
    await withSandbox(t, async (id) => {
      expect((await sh(t, id, { command: "mkdir -p box/inner && chmod 000 box" })).status).toBe(200);
      const res = await sh(t, id, { command: "pwd", cwd: "box/inner" });
      expect(await refusal(res)).toEqual([400, "invalid_path", expect.objectContaining({ path: "box/inner" })]);
      expect((await sh(t, id, { command: "chmod 755 box" })).status).toBe(200);
      const ok = await sh(t, id, { command: "pwd", cwd: "box/inner" });
      expect([ok.status, ok.body.output]).toEqual([200, "/workspace/box/inner\n"]);
    });
  });

  test("a write over a program the sandbox is running: 409 conflict busy naming it, and the program runs on", async () => {
    await withSandbox(t, async (id) => {
      const started = await sh(t, id, { command: "cp /bin/sleep ./mysleep && exec ./mysleep 30", background: true });
      expect(started.status).toBe(200);
      const pid = started.body.process_id as string;
      let res = await t.json("PUT", files(id), { body: { path: "mysleep", content: "x" } });
      // The copy and the exec take an instant: until then the write may land.
      for (let i = 0; res.status === 200 && i < 50; i++) {
        await Bun.sleep(100);
        res = await t.json("PUT", files(id), { body: { path: "mysleep", content: "x" } });
      }
      expect(await refusal(res)).toEqual([409, "conflict", { path: "mysleep", reason: "busy" }]);
      expect((await t.json("GET", `/v1/sandboxes/${id}/shell/processes/${pid}`)).body.status).toBe("running");
    });
  });
});
