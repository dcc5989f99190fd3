/**
 * The per-owner sandbox quota under concurrent creates: the count and the insert
 * are one write, so a burst never ends above the limit, and a refused create
 * leaves nothing behind (no managed workspace without its sandbox).
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";

let t: TestBay;
beforeEach(async () => {
  t = await createTestBay({ config: { limits: { max_sandboxes_per_owner: 3 } } });
});
afterEach(async () => {
  await t.close();
});

async function count(sql: string): Promise<number> {
  const rs = await t.bay.deps.stores.db.execute({ sql, args: ["anon:alice"] });
  return Number(rs.rows[0]!.n);
}

test("20 concurrent creates against a quota of 3: exactly 3 sandboxes, 17 × 429, no stray workspace", async () => {
  const results = await Promise.all(Array.from({ length: 20 }, () => t.json("POST", "/v1/sandboxes")));
  const statuses = results.map((r) => r.status).sort();
  expect(statuses.filter((s) => s === 201)).toHaveLength(3);
  expect(statuses.filter((s) => s === 429)).toHaveLength(17);
  for (const r of results.filter((r) => r.status === 429)) {
    expect(r.body.error.code).toBe("quota_exceeded");
    expect(r.res.headers.get("retry-after")).not.toBeNull();
  }
  expect(await count("SELECT COUNT(*) AS n FROM sandboxes WHERE owner = ? AND deleted_at IS NULL")).toBe(3);
  expect(await count("SELECT COUNT(*) AS n FROM workspaces WHERE owner = ? AND deleted_at IS NULL")).toBe(3);
});

test("concurrent creates on external workspaces respect the quota too", async () => {
  const workspaces = await Promise.all(Array.from({ length: 6 }, async () => (await t.json("POST", "/v1/workspaces")).body.id as string));
  const results = await Promise.all(workspaces.map((ws) => t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws } })));
  expect(results.filter((r) => r.status === 201)).toHaveLength(3);
  expect(results.filter((r) => r.status === 429)).toHaveLength(3);
  expect(await count("SELECT COUNT(*) AS n FROM sandboxes WHERE owner = ? AND deleted_at IS NULL")).toBe(3);
});
