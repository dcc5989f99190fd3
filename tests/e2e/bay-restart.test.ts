/**
 * Bay killed (SIGKILL) while a session is ready, then started again on the same
 * database: the next call works, the workspace data is intact, and the sandbox
 * has exactly one container afterwards (no duplicate, no orphan).
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, startBayProcess, type BayProcess } from "../support/bay-process.ts";
import { uniqueInstanceId } from "../support/harness.ts";
import { removeLabelled } from "./support/docker-fixtures.ts";
import { docker, requireShipImages } from "./support/e2e.ts";

test("SIGKILL of Bay with a ready session, restart on the same DB → next call works, data intact, one container", async () => {
  await requireShipImages();
  const dir = mkdtempSync(join(tmpdir(), "bay-cov-restart-"));
  const instanceId = uniqueInstanceId();
  const opts = { dbPath: join(dir, "bay.db"), instanceId, dir };
  const procs: BayProcess[] = [];
  let bay: BayProcess | undefined;
  let id = "";
  try {
    bay = await startBayProcess(opts);
    procs.push(bay);
    const created = await api(bay.url, "POST", "/v1/sandboxes", {});
    expect(created.status).toBe(201);
    id = created.body.id;
    const first = await api(bay.url, "POST", `/v1/sandboxes/${id}/python/exec`, {
      code: "open('/workspace/keep.txt','w').write('intact')",
    });
    expect(first.status).toBe(200);
    expect(first.body.success).toBe(true);
    expect((await api(bay.url, "GET", `/v1/sandboxes/${id}`)).body.status).toBe("ready");

    await bay.kill("SIGKILL");
    bay = await startBayProcess(opts);
    procs.push(bay);

    const next = await api(bay.url, "POST", `/v1/sandboxes/${id}/python/exec`, { code: "print(open('/workspace/keep.txt').read())" });
    expect(next.status).toBe(200);
    expect(next.body.output).toContain("intact");
    const file = await api(bay.url, "GET", `/v1/sandboxes/${id}/filesystem/files?path=keep.txt`);
    expect(file.status).toBe(200);
    expect(file.body.content).toBe("intact");
    expect((await api(bay.url, "GET", `/v1/sandboxes/${id}`)).body.status).toBe("ready");
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`bay.instance_id=${instanceId}`, `bay.sandbox_id=${id}`] },
    });
    expect(containers).toHaveLength(1);
    expect(containers[0]!.State).toBe("running");
  } finally {
    if (bay && id) await api(bay.url, "DELETE", `/v1/sandboxes/${id}`).catch(() => {});
    for (const p of procs) await p.kill("SIGTERM").catch(() => {});
    await removeLabelled(docker, { "bay.instance_id": instanceId });
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
