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
import { BayError } from "../../src/bay/errors.ts";
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

test("a workspace its sandbox keeps rearranging is measured, or answered 409 conflict (changing), never a 500", async () => {
  const created = await t.json("POST", "/v1/sandboxes", { body: {} });
  const sb = created.body.id as string;
  const ws = (await t.bay.deps.stores.workspaces.get(created.body.workspace_id as string))!;
  const volume = {
    name: ws.volumeName,
    labels: { owner: ws.owner, workspace_id: ws.id, instance_id: t.bay.instanceId, workspace_kind: "managed" as const },
  };
  // Code in the sandbox moves directories around and swaps one for a symlink, in a loop,
  // and moves the middle of deep chains to another parent and back (below the depth fts
  // keeps open it climbs back by `..`: "fts_read failed"). GNU du gives up its whole walk
  // (no total), or crashes, when a directory goes from under it.
  const churn = [
    "import os, time",
    "os.chdir('/workspace'); os.makedirs('churn', exist_ok=True); os.chdir('churn')",
    "for i in range(20): os.makedirs(f'a{i}/b/c/d', exist_ok=True); open(f'a{i}/b/c/f', 'w').close()",
    "end = time.time() + 25",
    "while time.time() < end:",
    "    for i in range(20):",
    "        j = (i + 1) % 20",
    "        try:",
    "            os.rename(f'a{i}/b', f'a{i}/bb'); os.symlink('/', f'a{i}/b'); os.unlink(f'a{i}/b')",
    "            os.rename(f'a{i}/bb/c', f'a{j}/cc{i}'); os.rename(f'a{j}/cc{i}', f'a{i}/bb/c'); os.rename(f'a{i}/bb', f'a{i}/b')",
    "        except OSError: pass",
  ].join("\n");
  const deep = [
    "import os, time",
    "os.chdir('/workspace'); os.makedirs('deep', exist_ok=True); os.chdir('deep')",
    "for i in range(60):",
    "    p = f'x{i}'",
    "    for l in range(12):",
    "        p += f'/l{l}'; os.makedirs(p, exist_ok=True)",
    "        for k in range(5): open(f'{p}/f{k}', 'w').close()",
    "    os.makedirs(f'y{i}', exist_ok=True)",
    "mid = '/'.join(f'l{l}' for l in range(4))",
    "end = time.time() + 25",
    "while time.time() < end:",
    "    for i in range(60):",
    "        try: os.rename(f'x{i}/{mid}', f'y{i}/l3')",
    "        except OSError: pass",
    "    time.sleep(0.002)",
    "    for i in range(60):",
    "        try: os.rename(f'y{i}/l3', f'x{i}/{mid}')",
    "        except OSError: pass",
    "    time.sleep(0.002)",
  ].join("\n");
  const storms = [churn, deep].map((code) => `subprocess.Popen([sys.executable, '-c', ${JSON.stringify(code)}], start_new_session=True)`);
  const started = await t.json("POST", `/v1/sandboxes/${sb}/python/exec`, {
    body: {
      code: `import subprocess, sys\n${storms.join("\n")}\nNone`,
    },
  });
  expect(started.status).toBe(200);
  const stormEnd = Date.now() + 25_000;
  await Bun.sleep(3000); // the deep chains are made first
  const outcomes: string[] = [];
  // Four measurements at a time, 60 in all (each in a helper of its own): before the
  // retry, about one du in 40 here crashed or gave up (exit 134/139, or no total).
  const measure = async () => {
    try {
      const bytes = await t.bay.driver.volumeFiles.usage(volume);
      expect(bytes).toBeGreaterThan(0);
      outcomes.push("measured");
    } catch (e) {
      if (!(e instanceof BayError) || e.code !== "conflict") {
        throw new Error(`usage under the storm: ${String(e)} ${JSON.stringify((e as BayError).internal ?? {})}`);
      }
      expect(e.details.reason).toBe("changing");
      outcomes.push("changing");
    }
  };
  for (let round = 0; round < 15; round++) await Promise.all([measure(), measure(), measure(), measure()]);
  expect(outcomes).toHaveLength(60);
  // Once the sandbox stops, the workspace is measured again (nothing of the storm sticks).
  await Bun.sleep(Math.max(0, stormEnd - Date.now()));
  let after: number | null = null;
  for (let i = 0; i < 30 && after === null; i++) {
    after = await t.bay.driver.volumeFiles.usage(volume).catch(async (e) => {
      if (!(e instanceof BayError) || e.code !== "conflict") throw e;
      await Bun.sleep(1000); // the storms' own clocks started after their set-up
      return null;
    });
  }
  expect(after).toBeGreaterThan(0);
  await t.json("DELETE", `/v1/sandboxes/${sb}`);
}, 120_000);
