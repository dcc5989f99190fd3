/**
 * Writes and deletes of one directory tree at the same moment, through a
 * running sandbox (Ship) and through the workspace data plane, on real Docker:
 * every call answers 200, 404 (what it touched may have just gone) or 400, never
 * a 5xx, and the tree stays the sandbox user's (nothing left that it cannot
 * change). bun run fuzz found three ways this failed: a parent recreated as
 * root by the engine, a directory deleted between Ship opening and checking it,
 * and `rm -rf` failing on an entry a writer added behind it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createLogger } from "../../src/bay/logger.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { requireShipImages, sh } from "./support/e2e.ts";

let t: TestBay;
/** Bay's error log lines: a 5xx is reported with what the engine said (its log has it, its answer does not). */
const errorLines: string[] = [];
beforeAll(async () => {
  await requireShipImages();
  t = await createTestBay({
    config: { limits: { rate_limit_per_minute: 1_000_000 } },
    logger: createLogger("error", (line) => errorLines.push(line)),
  });
});
afterAll(() => t?.close());

test("concurrent writes and deletes of one tree: never a 5xx; the tree stays the sandbox user's", async () => {
  const created = await t.json("POST", "/v1/sandboxes", { body: {} });
  const sb = created.body.id as string;
  const ws = created.body.workspace_id as string;
  expect((await sh(t, sb, { command: "true" })).status).toBe(200);
  const seen: string[] = [];
  for (let round = 0; round < 15; round++) {
    const answers = await Promise.all([
      t.json("PUT", `/v1/sandboxes/${sb}/filesystem/files`, { body: { path: "race/a/b/w.txt", content: "x" } }),
      t.json("PUT", `/v1/sandboxes/${sb}/filesystem/files`, { body: { path: "race/a/c/v.txt", content: "y" } }),
      t.json("DELETE", `/v1/sandboxes/${sb}/filesystem/files?path=race/a`),
      t.json("DELETE", `/v1/sandboxes/${sb}/filesystem/files?path=race/a/b`),
      t.json("PUT", `/v1/workspaces/${ws}/filesystem/files`, { body: { path: "race/a/d/u.txt", content: "z" } }),
      t.json("DELETE", `/v1/workspaces/${ws}/filesystem/files?path=race/a`),
    ]);
    for (const a of answers) {
      seen.push(String(a.status));
      if (a.status >= 500) throw new Error(`round ${round}: ${a.status} ${JSON.stringify(a.body)}\n${errorLines.join("\n")}`);
    }
  }
  // 400: a write can find a parent gone and back between two of its checks (a "dangling symlink" or not a directory).
  expect([...new Set(seen)].filter((s) => !["200", "400", "404"].includes(s))).toEqual([]);
  // Whatever is left is the sandbox user's: it can still add to the tree and delete it whole.
  const after = await sh(t, sb, { command: "mkdir -p race/a/x && touch race/a/x/f && rm -rf race && echo ok" });
  expect(after.body.output).toBe("ok\n");
});
