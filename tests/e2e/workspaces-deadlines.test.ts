/**
 * Deadlines of the workspace data plane, made to fire deterministically by
 * configuration, not by sleeps: a listing of a huge directory under a listing
 * deadline no helper can meet (the same listing answers within the default one),
 * and every data-plane call under a Docker call deadline no engine call can meet.
 * Each answers 504 `timeout` in the error model, without the engine's text, and no
 * helper container is left behind.
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { MAX_LIST_ENTRIES } from "../../src/bay/domain/workspace-files.ts";
import { expectErrorBody } from "../api/support/fixtures.ts";
import { createTestBay, pollUntil, uniqueInstanceId, type TestBay } from "../support/harness.ts";
import { shellOnVolume } from "../support/volume-shell.ts";
import { docker, requireShipImages, uploadForm } from "./support/e2e.ts";

/** More than a listing returns: the listing is cut at MAX_LIST_ENTRIES. */
const HUGE = MAX_LIST_ENTRIES + 5_000;

const bays: TestBay[] = [];
beforeAll(() => requireShipImages());
afterEach(async () => {
  // Helpers of a timed-out call are removed in the background (a create the engine
  // finishes after the deadline is retried): bounded wait, asserted either way.
  const first = bays[0];
  const helpers = async () =>
    first
      ? (await first.bay.driver.listContainers({ instance_id: first.bay.instanceId })).filter((c) => c.labels.role === "workspace-helper")
      : [];
  const left = await pollUntil(helpers, (h) => h.length === 0, 20_000).catch(() => helpers());
  for (const b of bays.splice(0).reverse()) await b.close();
  expect(left.map((c) => c.id)).toEqual([]);
});

function expectTimeout(r: { status: number; body: any; res: Response }, what: string): void {
  expect({ what, status: r.status, code: r.body?.error?.code }).toEqual({ what, status: 504, code: "timeout" });
  expectErrorBody(r.res, r.body, "timeout");
  expect(r.body.error.request_id).toBeTruthy();
  const { request_id: _, ...error } = r.body.error;
  expect(JSON.stringify(error)).not.toMatch(/[0-9a-f]{64}|docker|engine|abort|\/var\/lib|https?:\/\//i);
}

describe("workspace data-plane deadlines", () => {
  test("listing a huge directory: 200 and cut within the default deadline, 504 timeout under one it cannot meet", async () => {
    const instanceId = uniqueInstanceId();
    const roomy = await createTestBay({ instanceId });
    bays.push(roomy);
    const ws = (await roomy.json("POST", "/v1/workspaces", { body: {} })).body.id as string;
    expect((await roomy.json("PUT", `/v1/workspaces/${ws}/filesystem/files`, { body: { path: "keep.txt", content: "k" } })).status).toBe(
      200,
    );
    const made = await shellOnVolume(docker, ws, `mkdir huge && cd huge && seq 1 ${HUGE} | xargs touch`, { "bay.instance_id": instanceId });
    expect(made.exitCode).toBe(0);

    const listed = await roomy.json("GET", `/v1/workspaces/${ws}/filesystem/directories?path=huge`);
    expect(listed.status).toBe(200);
    expect(listed.body.truncated).toBe(true);
    expect(listed.body.entries).toHaveLength(MAX_LIST_ENTRIES);

    // A second Bay on the same database (a replica) with a listing deadline no helper container can meet.
    const tight = await createTestBay({
      instanceId,
      dbPath: join(roomy.dir, "bay.db"),
      config: { limits: { listing_timeout: 0.001 } } as never,
    });
    bays.push(tight);
    expectTimeout(await tight.json("GET", `/v1/workspaces/${ws}/filesystem/directories?path=huge`), "listing");
    // Only the listing has that deadline: the rest of the data plane still answers.
    expect((await tight.json("GET", `/v1/workspaces/${ws}/filesystem/files?path=keep.txt`)).body.content).toBe("k");
  });

  test("every data-plane call under a Docker call deadline no engine call can meet answers 504 timeout", async () => {
    const instanceId = uniqueInstanceId();
    const roomy = await createTestBay({ instanceId });
    bays.push(roomy);
    const ws = (await roomy.json("POST", "/v1/workspaces", { body: {} })).body.id as string;
    expect((await roomy.json("PUT", `/v1/workspaces/${ws}/filesystem/files`, { body: { path: "a.txt", content: "a" } })).status).toBe(200);

    const tight = await createTestBay({
      instanceId,
      dbPath: join(roomy.dir, "bay.db"),
      config: { driver: { call_timeout: 0.001 } } as never,
    });
    bays.push(tight);
    const base = `/v1/workspaces/${ws}/filesystem`;
    expectTimeout(await tight.json("GET", `${base}/files?path=a.txt`), "read");
    expectTimeout(await tight.json("PUT", `${base}/files`, { body: { path: "b.txt", content: "b" } }), "write");
    expectTimeout(await tight.json("GET", `${base}/directories`), "list");
    expectTimeout(await tight.json("GET", `${base}/download?path=a.txt`), "download");
    expectTimeout(await tight.json("POST", `${base}/upload`, { body: uploadForm("c.txt", "c") }), "upload");
    expectTimeout(await tight.json("DELETE", `${base}/files?path=a.txt`), "delete");

    // Nothing was half done: the first Bay sees the workspace as it was.
    const after = await roomy.json("GET", `${base}/directories`);
    expect(after.body.entries.map((e: { name: string }) => e.name)).toEqual(["a.txt"]);
  });
});
