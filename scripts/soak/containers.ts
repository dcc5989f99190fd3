/**
 * The soak's view of Docker, always filtered by its Bay's instance id: the
 * Ship containers running for each sandbox, and the fault actions on them.
 */
import { docker } from "../lib/bay-under-test.ts";

/** Running Ship containers per sandbox id (helpers carry no sandbox id and are not counted). */
export async function runningPerSandbox(instanceId: string): Promise<Map<string, string[]>> {
  const list = await docker.listContainers({
    filters: { label: [`bay.instance_id=${instanceId}`, "bay.sandbox_id"], status: ["running"] },
  });
  const out = new Map<string, string[]>();
  for (const c of list) {
    const sb = c.Labels["bay.sandbox_id"]!;
    out.set(sb, [...(out.get(sb) ?? []), c.Id]);
  }
  return out;
}

/** The one running container of a sandbox, or null. */
export async function runningContainer(instanceId: string, sandboxId: string): Promise<string | null> {
  return (await runningPerSandbox(instanceId)).get(sandboxId)?.[0] ?? null;
}

/** Every container of a sandbox, whatever its state. */
export async function containersOf(instanceId: string, sandboxId: string): Promise<string[]> {
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`bay.instance_id=${instanceId}`, `bay.sandbox_id=${sandboxId}`] },
  });
  return list.map((c) => c.Id);
}

/** Polls (every 50 ms) until the sandbox has a container not in `before`; false after `withinMs`. */
export async function waitNewContainer(instanceId: string, sandboxId: string, before: Set<string>, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if ((await containersOf(instanceId, sandboxId)).some((id) => !before.has(id))) return true;
    await Bun.sleep(50);
  }
  return false;
}

/** `docker kill` (SIGKILL) or `docker stop` (SIGTERM, then SIGKILL after 2 s). */
export async function hitContainer(id: string, how: "kill" | "stop"): Promise<void> {
  const c = docker.getContainer(id);
  if (how === "kill") await c.kill();
  else await c.stop({ t: 2 });
}

/** Polls until the sandbox has no running container; false when it still has one after `withinMs`. */
export async function waitNoContainer(instanceId: string, sandboxId: string, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (!(await runningContainer(instanceId, sandboxId))) return true;
    await Bun.sleep(250);
  }
  return false;
}

/** Processes running in a container now (docker top), or -1 when it cannot be asked. */
export async function processCount(id: string): Promise<number> {
  try {
    const top = (await docker.getContainer(id).top()) as { Processes?: unknown[] };
    return top.Processes?.length ?? 0;
  } catch {
    return -1;
  }
}

/**
 * Samples Docker every `intervalMs` for the whole soak and records each time a
 * sandbox had more than one running container, with the phase it happened in:
 * a duplicate that lives between two checkpoints is still a duplicate.
 */
export class DuplicateWatch {
  readonly seen: Array<{ phase: string; sandbox: string; containers: number; samples: number }> = [];
  phase = "start";
  private timer: ReturnType<typeof setInterval> | null = null;
  private busy = false;

  constructor(private readonly instanceId: string) {}

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.sample(), intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const [sandbox, ids] of await runningPerSandbox(this.instanceId)) {
        if (ids.length < 2) continue;
        const last = this.seen.at(-1);
        if (last && last.phase === this.phase && last.sandbox === sandbox) {
          last.samples++;
          last.containers = Math.max(last.containers, ids.length);
        } else this.seen.push({ phase: this.phase, sandbox, containers: ids.length, samples: 1 });
      }
    } catch {
      // the engine was busy; the next sample will tell
    } finally {
      this.busy = false;
    }
  }
}
