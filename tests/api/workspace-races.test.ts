/**
 * Creating a sandbox on an external workspace while that workspace is being
 * deleted: whichever wins, the other is refused, and the database never holds a
 * live sandbox on a deleted workspace (whose volume reconcile would remove).
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";

let t: TestBay;
beforeEach(async () => {
  t = await createTestBay();
});
afterEach(async () => {
  await t.close();
});

test("create-on-workspace racing delete-workspace never leaves a live sandbox on a deleted workspace", async () => {
  for (let i = 0; i < 25; i++) {
    const ws = (await t.json("POST", "/v1/workspaces")).body.id as string;
    const [create, del] = await Promise.all([
      t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws } }),
      t.json("DELETE", `/v1/workspaces/${ws}`),
    ]);
    expect([
      [201, 409],
      [404, 204],
    ]).toContainEqual([create.status, del.status]);
    const rs = await t.bay.deps.stores.db.execute({
      sql: `SELECT COUNT(*) AS n FROM sandboxes s JOIN workspaces w ON w.id = s.workspace_id
            WHERE s.deleted_at IS NULL AND w.deleted_at IS NOT NULL`,
      args: [],
    });
    expect(Number(rs.rows[0]!.n)).toBe(0);
    if (create.status === 201) await t.call("DELETE", `/v1/sandboxes/${create.body.id}`);
  }
});
