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
