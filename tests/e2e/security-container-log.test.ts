/**
 * A sandbox's container log lives on the host's disk. A tenant that could write to
 * it without bound would fill that disk, so: user code has no way to write into
 * it (PID 1's and Ship's descriptors are out of its reach: both are non-dumpable,
 * so their /proc entries belong to root), and whatever Ship itself writes rotates
 * at the configured size and count.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { docker, requireShipImages } from "./support/e2e.ts";

let t: TestBay;
beforeAll(async () => {
  await requireShipImages();
  t = await createTestBay({ config: { driver: { log_max_size_mb: 2, log_max_files: 4 } } });
});
afterAll(async () => {
  await t?.close();
});

test("user code cannot write into its container's log, and the log rotates at the configured size and count", async () => {
  const created = await t.json("POST", "/v1/sandboxes", { body: {} });
  const id = created.body.id as string;
  const marker = `flood-${crypto.randomUUID()}`;
  const attempt = await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, {
    body: {
      command: [
        "ship=$(pgrep -x ship | head -1)",
        `for fd in /proc/1/fd/1 /proc/1/fd/2 /proc/$ship/fd/1 /proc/$ship/fd/2; do`,
        `  if echo ${marker} 2>/dev/null > $fd; then echo "wrote $fd"; else echo "refused $fd"; fi`,
        "done",
      ].join("\n"),
    },
  });
  expect(attempt.status).toBe(200);
  expect(attempt.body.output).not.toContain("wrote");
  expect(attempt.body.output.match(/refused/g)).toHaveLength(4);

  const session = (await t.bay.deps.stores.sandboxes.get(id))!.session!;
  const logs = await t.bay.driver.containerLogs(session.containerId!, 10_000);
  expect(logs).toContain(session.id); // Ship's own line is there, so the log is being read
  expect(logs).not.toContain(marker);

  const info = await docker.getContainer(session.containerId!).inspect();
  expect(info.HostConfig.LogConfig).toEqual({ Type: "json-file", Config: { "max-size": "2m", "max-file": "4" } });
});
