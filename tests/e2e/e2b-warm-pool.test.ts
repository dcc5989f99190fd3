/**
 * A warm-pool hit serves an E2B create too, with the official SDKs unmodified
 * against a real Bay process whose default profile keeps a pool of one on real
 * Docker and the real Ship image: e2b 2.51.0 (POST /v2/sandboxes) and e2b 2.7.0
 * (legacy POST /sandboxes) each get the warm member of the moment (its sandbox
 * id, its container, labelled by the pool at birth; Bay counts a pool start),
 * the first command runs on that member's warmed session (no session is
 * started for it: no cold start), @e2b/code-interpreter's first runCode on it is
 * the warmed kernel's first cell, and the pool refills between and after them.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Sandbox as CodeSandbox } from "@e2b/code-interpreter";
import { Sandbox } from "e2b";
import { Sandbox as LegacySandbox } from "e2b-legacy";
import { type Database, openDatabase } from "../../src/bay/store/database.ts";
import { createStores, type Stores } from "../../src/bay/store/index.ts";
import type { PoolMember } from "../../src/bay/store/pool-store.ts";
import { pollUntil } from "../support/harness.ts";
import { type BayProcess, docker, requireShipImages, SHIP_IMAGE, spawnBay } from "./support/e2e.ts";
import { within } from "../support/within.ts";

setDefaultTimeout(300_000);

const KEY = `e2b_${"b2".repeat(20)}`;
let bay: BayProcess;
let db: Database;
let stores: Stores;
let opts: { apiKey: string; apiUrl: string; sandboxUrl: string };
const created: string[] = [];

beforeAll(async () => {
  await requireShipImages([SHIP_IMAGE]);
  bay = await spawnBay({
    BAY_AUTH_MODE: "api_key",
    BAY_API_KEY: KEY,
    BAY_API_KEY_OWNER: "alice",
    BAY_WARM_POOL: "python-default:1",
  });
  db = await openDatabase({ url: `file:${bay.dbPath}` });
  stores = createStores(db);
  const api = `${bay.url}/e2b`;
  opts = { apiKey: KEY, apiUrl: api, sandboxUrl: api };
});

afterAll(async () => {
  for (const id of created) await Sandbox.kill(id, opts).catch(() => {});
  db?.close();
  await bay?.close();
});

/** The pool's one warm member other than those already handed out (starts are slow on a loaded machine). */
const nextWarm = async (handedOut: string[]): Promise<PoolMember> => {
  const warm = await pollUntil(
    async () => (await stores.pool.members()).filter((m) => m.state === "warm" && !handedOut.includes(m.id)),
    (w) => w.length === 1,
    240_000,
    "a warm member",
  );
  return warm[0]!;
};

/** `bay_sandbox_starts_total` (cold: on demand, pool: a claim) for python-default, outcome ok, from Bay's /metrics (loopback). */
async function starts(kind: "cold" | "pool"): Promise<number> {
  const text = await (await fetch(`${bay.url}/metrics`)).text();
  const m = new RegExp(`bay_sandbox_starts_total\\{profile="python-default",kind="${kind}",outcome="ok"\\} (\\d+)`).exec(text);
  if (!m) throw new Error(`no ${kind} starts in /metrics`);
  return Number(m[1]);
}

/** The sandbox claimed `member`: its container is the member's (labelled by the pool), its session the member's. */
async function expectClaimed(sandboxId: string, member: PoolMember): Promise<void> {
  expect(sandboxId).toBe(member.id);
  const containers = await docker.listContainers({ filters: { label: [`bay.sandbox_id=${sandboxId}`] } });
  expect(containers.map((c) => c.Id)).toEqual([member.containerId!]);
  expect(containers[0]!.Labels["bay.pool"]).toBe("python-default");
  const sb = await stores.sandboxes.get(sandboxId);
  expect(sb?.owner).toBe("alice");
  expect(sb?.currentSessionId).toBe(member.sessionId);
  expect(sb?.session?.status).toBe("ready");
}

describe("E2B SDKs on Bay's warm pool", () => {
  test("v2 and legacy creates each claim the warm member, whose warmed session runs the first command and cell; the pool refills", async () => {
    const first = await nextWarm([]);
    const cold = await starts("cold");
    const claims = await starts("pool");

    const sb = await within(60_000, "Sandbox.create (v2)", Sandbox.create({ ...opts, timeoutMs: 300_000 }));
    created.push(sb.sandboxId);
    await expectClaimed(sb.sandboxId, first);
    const run = await within(60_000, "commands.run", sb.commands.run("echo warm; python3 -c 'print(6 * 7)'"));
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toBe("warm\n42\n");
    // The member's session answered it: no new session, no on-demand start.
    expect((await stores.sandboxes.get(sb.sandboxId))?.currentSessionId).toBe(first.sessionId);
    expect(await starts("cold")).toBe(cold);
    expect(await starts("pool")).toBe(claims + 1);
    // runCode's default Python context is the kernel the member warmed: the owner's first cell is its first.
    const ci = await within(60_000, "CodeSandbox.connect", CodeSandbox.connect(sb.sandboxId, opts));
    const cell = await within(60_000, "runCode", ci.runCode("print(len(In))\n6 * 7"));
    expect(cell.error).toBeUndefined();
    expect(cell.text).toBe("42");
    expect(cell.executionCount).toBe(1);
    expect(cell.logs.stdout.join("")).toBe("2\n");
    expect(await starts("cold")).toBe(cold);

    // The claim kicked a refill; the legacy SDK's create takes the new member.
    const second = await nextWarm([first.id]);
    expect(second.id).not.toBe(first.id);
    const legacy = await within(60_000, "Sandbox.create (legacy)", LegacySandbox.create({ ...opts, timeoutMs: 300_000 }));
    created.push(legacy.sandboxId);
    await expectClaimed(legacy.sandboxId, second);
    const again = await within(60_000, "legacy commands.run", legacy.commands.run("echo ok"));
    expect(again.stdout).toBe("ok\n");
    expect((await stores.sandboxes.get(legacy.sandboxId))?.currentSessionId).toBe(second.sessionId);
    expect(await starts("cold")).toBe(cold);

    // Two claims, and the pool is back to its size with a member neither create had.
    const third = await nextWarm([first.id, second.id]);
    expect([first.id, second.id]).not.toContain(third.id);
    expect(await starts("pool")).toBe(claims + 2);
  });
});
