/**
 * Cold start seen from outside: GET shows `starting` while the first call
 * starts the session, and a DELETE during the start makes the call answer 404
 * or 409 (never 5xx) and leaves no container for the sandbox.
 */
import { expect, test } from "bun:test";
import { pollUntil, type TestBay } from "../support/harness.ts";
import { docker, dropSandbox, newSandbox, py } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay));

const statusOf = async (id: string) => {
  const r = await t.json("GET", `/v1/sandboxes/${id}`);
  return r.status === 200 ? (r.body.status as string) : `http ${r.status}`;
};

/** Polls GET until the sandbox shows `starting`, for as long as `call` is pending; returns what was seen. */
async function watchForStarting(id: string, call: Promise<unknown>): Promise<string[]> {
  let settled = false;
  void call.finally(() => (settled = true));
  const seen: string[] = [];
  while (!settled) {
    const s = await statusOf(id);
    seen.push(s);
    if (s === "starting") break;
    await Bun.sleep(10);
  }
  return seen;
}

/** This Bay's containers for one sandbox, asked of Docker directly (any state). */
const containersFor = (id: string) =>
  docker.listContainers({ all: true, filters: { label: [`bay.instance_id=${t.bay.instanceId}`, `bay.sandbox_id=${id}`] } });

test("status `starting` is visible via GET while the first call starts the session", async () => {
  const id = await newSandbox(t);
  try {
    expect(await statusOf(id)).toBe("idle");
    const call = py(t, id, "1+1");
    const seen = await watchForStarting(id, call);
    expect(seen).toContain("starting");
    const r = await call;
    expect(r.status).toBe(200);
    expect(r.body.output.trim()).toBe("2");
    expect(await statusOf(id)).toBe("ready");
  } finally {
    await dropSandbox(t, id);
  }
}, 60_000);

test("DELETE during a cold start: the exec answers 404 or 409, no container for the sandbox remains", async () => {
  const id = await newSandbox(t);
  try {
    const call = py(t, id, "1+1");
    const seen = await watchForStarting(id, call);
    expect(seen).toContain("starting");
    const del = await t.call("DELETE", `/v1/sandboxes/${id}`);
    expect(del.status).toBeLessThan(300);
    const r = await call;
    expect([404, 409]).toContain(r.status);
    expect(["not_found", "conflict"]).toContain(r.body.error.code);
    expect((await t.json("GET", `/v1/sandboxes/${id}`)).status).toBe(404);
    // Removal may finish just after the answers: bounded wait, then asserted.
    const left = await pollUntil(
      () => containersFor(id),
      (cs) => cs.length === 0,
      15_000,
    ).catch(() => containersFor(id));
    expect(left.map((c) => `${c.Id.slice(0, 12)} ${c.State}`)).toEqual([]);
  } finally {
    await dropSandbox(t, id);
  }
}, 60_000);
