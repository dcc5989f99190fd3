/**
 * The labels Bay itself puts on a sandbox's container and workspace volume,
 * read back from the engine with dockerode (not through Bay's own decoder).
 */
import { expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { containersOf, docker } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay));

test("container: owner, sandbox, session, workspace, profile, instance; volume: the same minus session and profile", async () => {
  const created = await t.json("POST", "/v1/sandboxes", { body: {}, owner: "label-owner" });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const workspaceId = created.body.workspace_id as string;
  try {
    expect((await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "1" }, owner: "label-owner" })).status).toBe(200);
    const rs = await t.bay.deps.stores.db.execute({ sql: "SELECT current_session_id FROM sandboxes WHERE id = ?", args: [id] });
    const sessionId = String(rs.rows[0]!.current_session_id);
    expect(sessionId).toBeTruthy();

    const [c] = await containersOf(t, id);
    const info = await docker.getContainer(c!.id).inspect();
    expect(info.Config.Labels).toMatchObject({
      "bay.managed-by": "bay",
      "bay.owner": "anon:label-owner", // an anonymous owner, in its own namespace
      "bay.sandbox_id": id,
      "bay.session_id": sessionId,
      "bay.workspace_id": workspaceId,
      "bay.profile_id": "python-default",
      "bay.instance_id": t.bay.instanceId,
    });

    const mount = info.Mounts.find((m) => m.Destination === "/workspace");
    expect(mount?.Type).toBe("volume");
    const vol = (await docker.getVolume(mount!.Name!).inspect()) as { Labels: Record<string, string> };
    expect(vol.Labels).toMatchObject({
      "bay.managed-by": "bay",
      "bay.owner": "anon:label-owner",
      "bay.sandbox_id": id,
      "bay.workspace_id": workspaceId,
      "bay.instance_id": t.bay.instanceId,
      "bay.workspace_kind": "managed",
    });
    // A volume outlives sessions: it names none, nor a profile.
    expect(vol.Labels["bay.session_id"]).toBeUndefined();
    expect(vol.Labels["bay.profile_id"]).toBeUndefined();
  } finally {
    await t.call("DELETE", `/v1/sandboxes/${id}`, { owner: "label-owner" });
  }
}, 60_000);
