/**
 * A real Bay (real app, managers, reaper, reconcile and a real libSQL file) on
 * the in-memory driver, with a clock the test moves: the lifecycle's rules run
 * in milliseconds, with no Docker and no waiting for deadlines. Several Bays may
 * share one engine and one database file, as replicas or a restarted Bay do.
 * What these tests prove is the lifecycle; capabilities and hardening are proved
 * on Docker (tests/e2e).
 */
import { configSchema } from "../../../src/bay/config.ts";
import { MemoryDriver, type MemoryDriverOptions } from "../../../src/bay/drivers/memory/memory-driver.ts";
import { createTestBay, type TestBay, type TestBayOptions } from "../../support/harness.ts";
import { SHIP_DATA_IMAGE, SHIP_IMAGE } from "../../support/images.ts";

/** Real time plus what the test added: deadlines that are not moved still pass as they would. */
export class TestClock {
  private offset = 0;
  readonly now = (): number => Date.now() + this.offset;
  advance(ms: number): void {
    this.offset += ms;
  }
}

/** An engine with the default profiles' images, each running a well-behaved fake Ship. */
export const memoryEngine = (opts: MemoryDriverOptions = {}) => new MemoryDriver({ images: [SHIP_IMAGE, SHIP_DATA_IMAGE], ...opts });

export interface MemoryBay extends TestBay {
  engine: MemoryDriver;
  clock: TestClock;
}

/** Builds a Bay on `engine` (default: a new one) with `clock` (default: a new one). */
export async function createMemoryBay(
  opts: Omit<TestBayOptions, "driver" | "now"> & { engine?: MemoryDriver; clock?: TestClock } = {},
): Promise<MemoryBay> {
  const engine = opts.engine ?? memoryEngine();
  const clock = opts.clock ?? new TestClock();
  const t = await createTestBay({ ...opts, driver: engine, now: clock.now });
  return { ...t, engine, clock };
}

/** The python-default profile alone, with other settings. */
export const pythonProfile = (over: Record<string, unknown> = {}) =>
  configSchema.parse({ profiles: [{ id: "python-default", image: SHIP_IMAGE, ...over }] }).profiles;

export async function newSandbox(t: TestBay, body: Record<string, unknown> = {}, owner = "alice"): Promise<string> {
  const r = await t.json("POST", "/v1/sandboxes", { body, owner });
  if (r.status !== 201) throw new Error(`create sandbox: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id as string;
}

export const py = (t: TestBay, id: string, code: string, owner = "alice", timeout?: number) =>
  t.json("POST", `/v1/sandboxes/${id}/python/exec`, { owner, body: { code, ...(timeout ? { timeout } : {}) } });

export const sh = (t: TestBay, id: string, command: string, owner = "alice") =>
  t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { owner, body: { command } });

export const sandbox = async (t: TestBay, id: string, owner = "alice") => (await t.json("GET", `/v1/sandboxes/${id}`, { owner })).body;

/** The sandbox's containers on the engine, whatever their state. */
/** An E2B sandbox of `owner`'s, created through the E2B API: its id, and the data plane's credentials (E2b-Sandbox-Id, X-Access-Token). */
export async function e2bSandbox(t: TestBay, templateID = "base", owner = "alice"): Promise<{ id: string; auth: Record<string, string> }> {
  const c = await t.bay.app.request("/e2b/v2/sandboxes", {
    method: "POST",
    headers: { "x-owner": owner, "content-type": "application/json" },
    body: JSON.stringify({ templateID }),
  });
  if (c.status !== 201) throw new Error(`E2B create: ${c.status} ${await c.text()}`);
  const sb = (await c.json()) as { sandboxID: string; envdAccessToken: string };
  return { id: sb.sandboxID, auth: { "e2b-sandbox-id": sb.sandboxID, "x-access-token": sb.envdAccessToken } };
}

export const containersOf = (t: MemoryBay, sandboxId: string) => t.engine.listContainers({ sandbox_id: sandboxId });

/** The sandbox's current session row (endpoint, secret, container), or null. */
export const sessionOf = async (t: TestBay, sandboxId: string) => (await t.bay.deps.stores.sandboxes.get(sandboxId))?.session ?? null;

/** A gate for fake Ships' sleeps: every sleep waits until `release` (or its cell's deadline). */
export function sleepGate() {
  let open!: () => void;
  const released = new Promise<void>((resolve) => (open = resolve));
  let sleeping = 0;
  return {
    sleep: (_seconds: number, signal: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        sleeping++;
        released.then(resolve);
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      }),
    /** How many sleeps have begun. */
    sleeping: () => sleeping,
    release: () => open(),
  };
}
