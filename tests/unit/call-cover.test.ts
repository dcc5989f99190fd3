/**
 * A call's cover is a lease: renewed while the call runs (never past the call's own
 * deadline), and left to lapse once renewing stops (the call ended, or its Bay died).
 * Real libSQL file, real timers (short lease for the test).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CallCover } from "../../src/bay/domain/call-cover.ts";
import { openDatabase } from "../../src/bay/store/database.ts";
import { createStores } from "../../src/bay/store/index.ts";

const dir = mkdtempSync(join(tmpdir(), "bay-call-cover-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("renewed while held, up to the call's deadline; after stop() it lapses", async () => {
  const stores = createStores(await openDatabase({ url: `file:${join(dir, "bay.db")}` }));
  const until = async (id: string) =>
    Number((await stores.db.execute({ sql: "SELECT until FROM call_covers WHERE id = ?", args: [id] })).rows[0]!.until);
  const failures: unknown[] = [];
  const timing = { leaseMs: 150, renewMs: 20 };

  const long = new CallCover(stores.sandboxes, "sandbox-a", Date.now() + 60_000, Date.now, (e) => failures.push(e), timing);
  await long.take();
  await Bun.sleep(400);
  // Renewed: still reaching about a lease past now, long after the first lease would have lapsed.
  expect(await until(long.id)).toBeGreaterThan(Date.now() + 50);
  long.stop();
  await Bun.sleep(300);
  expect(await until(long.id)).toBeLessThan(Date.now());

  const short = new CallCover(stores.sandboxes, "sandbox-b", Date.now() + 100, Date.now, (e) => failures.push(e), timing);
  await short.take();
  const deadline = Date.now() + 100;
  await Bun.sleep(300);
  // A call whose deadline is within the lease is never covered past it.
  expect(await until(short.id)).toBeLessThanOrEqual(deadline + 5);
  short.stop();
  expect(failures).toEqual([]);
  stores.db.close();
});
