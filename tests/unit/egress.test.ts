/**
 * Egress guard without touching the host firewall: the rule set is pure, and a
 * guard whose iptables calls fail (not root, no iptables) or whose engine is
 * remote makes the session start fail clearly (503 driver_unavailable) instead of
 * running the sandbox unrestricted — and no container is left behind.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { SHIP_IMAGE } from "../support/images.ts";
import { buildBay } from "../../src/bay/bootstrap.ts";
import { configSchema } from "../../src/bay/config.ts";
import { DockerDriver } from "../../src/bay/drivers/docker/docker-driver.ts";
import {
  BLOCKED_RANGES,
  EgressGuard,
  egressRules,
  FORWARD_CHAIN,
  INPUT_CHAIN,
  type RunCommand,
} from "../../src/bay/drivers/docker/egress.ts";
import { silentLogger } from "../../src/bay/logger.ts";
import { removeInstanceResources, uniqueInstanceId } from "../support/harness.ts";

const fakeDocker = {
  getNetwork: () => ({ inspect: async () => ({ Options: { "com.docker.network.bridge.name": "bay-egress-p0" } }) }),
} as unknown as Docker;

/** argv is `iptables -w 5 <args…>`: does it end with exactly these arguments? */
const endsWith = (argv: string[], args: string[]) => argv.length === args.length + 3 && args.every((a, i) => argv[i + 3] === a);
const countCalls = (calls: string[][], args: string[]) => calls.filter((c) => endsWith(c, args)).length;

describe("egress rules", () => {
  test("private: replies pass first, every blocked range is rejected, the host is rejected", () => {
    const rules = egressRules("private");
    expect(rules[0]).toEqual({ chain: FORWARD_CHAIN, args: expect.arrayContaining(["ESTABLISHED,RELATED", "RETURN"]) });
    for (const cidr of ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]) expect(BLOCKED_RANGES).toContain(cidr);
    for (const cidr of BLOCKED_RANGES) {
      expect(rules.some((r) => r.chain === FORWARD_CHAIN && r.args.includes(cidr) && r.args.includes("REJECT"))).toBe(true);
    }
    expect(rules.some((r) => r.chain === INPUT_CHAIN && r.args.includes("REJECT"))).toBe(true);
    // Every rule is keyed on the managed bridge: no other container is affected.
    for (const r of rules) expect(r.args.slice(0, 2)).toEqual(["-i", "bay-egress-p0"]);
  });

  test("all (network none): everything from the bridge is rejected after replies", () => {
    const fwd = egressRules("all").filter((r) => r.chain === FORWARD_CHAIN);
    expect(fwd.map((r) => r.args.includes("REJECT"))).toEqual([false, true]);
    expect(fwd[1]!.args).not.toContain("-d");
  });

  test("install is idempotent: rules already present are not added again", async () => {
    const calls: string[][] = [];
    const run: RunCommand = async (argv) => {
      calls.push(argv);
      return { code: 0, stderr: "" };
    };
    const guard = new EgressGuard(fakeDocker, { local: true, run });
    expect(await guard.prepare("private")).toBe("bay-egress-restricted");
    expect(calls.some((c) => c.includes("-A") || c.includes("-I") || c.includes("-N"))).toBe(false);
    // Every rule was checked exactly once (-C with that rule's chain and arguments).
    const rules = egressRules("private");
    for (const rule of rules) expect(countCalls(calls, ["-C", rule.chain, ...rule.args])).toBe(1);
    expect(calls.filter((c) => c.includes("-C")).length).toBe(rules.length + 2); // + the two chain jumps
  });

  test("rules missing (-C fails) → exactly one append per rule and one jump per chain", async () => {
    const calls: string[][] = [];
    const run: RunCommand = async (argv) => {
      calls.push(argv);
      return {
        code: argv.includes("-C") ? 1 : 0,
        stderr: argv.includes("-C") ? "Bad rule (does a matching rule exist in that chain?)" : "",
      };
    };
    const guard = new EgressGuard(fakeDocker, { local: true, run });
    expect(await guard.prepare("private")).toBe("bay-egress-restricted");
    const rules = egressRules("private");
    for (const rule of rules) {
      expect(countCalls(calls, ["-C", rule.chain, ...rule.args])).toBe(1);
      expect(countCalls(calls, ["-A", rule.chain, ...rule.args])).toBe(1);
    }
    expect(calls.filter((c) => c.includes("-A")).length).toBe(rules.length);
    expect(countCalls(calls, ["-I", "DOCKER-USER", "1", "-j", FORWARD_CHAIN])).toBe(1);
    expect(countCalls(calls, ["-I", "INPUT", "1", "-j", INPUT_CHAIN])).toBe(1);
    expect(calls.filter((c) => c.includes("-I")).length).toBe(2);
    // Each append follows its own check.
    for (const rule of rules) {
      const checkAt = calls.findIndex((c) => endsWith(c, ["-C", rule.chain, ...rule.args]));
      const addAt = calls.findIndex((c) => endsWith(c, ["-A", rule.chain, ...rule.args]));
      expect(addAt).toBeGreaterThan(checkAt);
    }
  });

  test("iptables failing (not root) → driver_unavailable naming the cause", async () => {
    const run: RunCommand = async () => ({ code: 4, stderr: "Permission denied (you must be root)" });
    const guard = new EgressGuard(fakeDocker, { local: true, run });
    await expect(guard.prepare("private")).rejects.toMatchObject({ code: "driver_unavailable", message: expect.stringContaining("root") });
  });

  test("a remote engine → driver_unavailable without touching iptables", async () => {
    let ran = false;
    const guard = new EgressGuard(fakeDocker, { local: false, run: async () => ((ran = true), { code: 0, stderr: "" }) });
    await expect(guard.prepare("all")).rejects.toMatchObject({ code: "driver_unavailable", message: expect.stringContaining("remote") });
    expect(ran).toBe(false);
  });
});

describe("a start that cannot be restricted fails clearly", () => {
  const dir = mkdtempSync(join(tmpdir(), "bay-egress-"));
  const instanceId = uniqueInstanceId();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("503 driver_unavailable, sandbox failed with the reason, no container left", async () => {
    const config = configSchema.parse({
      database: { url: `file:${join(dir, "bay.db")}` },
      auth: { mode: "anonymous" },
      driver: { instance_id: instanceId },
      profiles: [{ id: "restricted", image: SHIP_IMAGE, block_private_egress: true }],
    });
    const failing = new EgressGuard(fakeDocker, { local: true, run: async () => ({ code: 1, stderr: "iptables: not found" }) });
    const driver = new DockerDriver({ connectMode: "host_port", defaultPidsLimit: 256, egress: failing });
    const bay = await buildBay(config, { logger: silentLogger, hostEnv: {}, driver });
    try {
      const h = { "x-owner": "alice", "content-type": "application/json" };
      const created = await bay.app.request("/v1/sandboxes", {
        method: "POST",
        headers: h,
        body: JSON.stringify({ profile: "restricted" }),
      });
      const id = ((await created.json()) as { id: string }).id;
      const res = await bay.app.request(`/v1/sandboxes/${id}/python/exec`, {
        method: "POST",
        headers: h,
        body: JSON.stringify({ code: "1" }),
      });
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(res.status).toBe(503);
      expect(body.error.code).toBe("driver_unavailable");
      expect(body.error.message).toContain("egress");
      expect(await driver.listContainers({ instance_id: instanceId })).toHaveLength(0);
    } finally {
      await removeInstanceResources(bay, instanceId);
      await bay.close();
    }
  });
});
