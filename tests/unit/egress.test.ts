/**
 * Network isolation without touching the host firewall: the rule set is pure,
 * installing runs against an in-memory iptables (order, idempotence, a chain an
 * older Bay filled), resolvers are found as dockerd finds them, and a guard whose
 * iptables calls fail (not root, no iptables) or whose engine is remote makes the
 * session start fail closed (503 driver_unavailable) instead of running the
 * sandbox unrestricted — and no container is left behind.
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
import { containerCreateOptions } from "../../src/bay/drivers/docker/container-config.ts";
import {
  BLOCKED_RANGES,
  EgressGuard,
  egressRules,
  FORWARD_CHAIN,
  hostResolvers,
  INPUT_CHAIN,
  MANAGED_NETWORKS,
  parseResolvConf,
  type RunCommand,
} from "../../src/bay/drivers/docker/egress.ts";
import { LabelCodec } from "../../src/bay/drivers/docker/labels.ts";
import { silentLogger } from "../../src/bay/logger.ts";
import { removeInstanceResources, uniqueInstanceId } from "../support/harness.ts";

const fakeDocker = {
  getNetwork: () => ({
    inspect: async () => ({
      Options: { "com.docker.network.bridge.name": "bay-egress-p0", "com.docker.network.bridge.enable_icc": "false" },
    }),
  }),
} as unknown as Docker;
const REJECT_ARGS = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"];

/** argv is `iptables -w 5 <args…>`: does it end with exactly these arguments? */
const endsWith = (argv: string[], args: string[]) => argv.length === args.length + 3 && args.every((a, i) => argv[i + 3] === a);

const BUILTIN = ["INPUT", "FORWARD", "OUTPUT"];

/** An in-memory iptables: chains as lists of argument strings, answering -S/-N/-C/-I/-A like the real one. */
function fakeIptables(initial: Record<string, string[][]> = {}) {
  const chains = new Map<string, string[]>(Object.entries(initial).map(([c, rules]) => [c, rules.map((r) => r.join(" "))]));
  for (const builtin of ["DOCKER-USER", ...BUILTIN]) if (!chains.has(builtin)) chains.set(builtin, []);
  const calls: string[][] = [];
  const run: RunCommand = async (argv) => {
    calls.push(argv);
    const [op, chain, ...rest] = argv.slice(3);
    const ok = (stdout = "") => ({ code: 0, stdout, stderr: "" });
    if (op === "-S" && chain === undefined) {
      const heads = [...chains.keys()].map((c) => (BUILTIN.includes(c) ? `-P ${c} ACCEPT` : `-N ${c}`));
      const rules = [...chains].flatMap(([c, list]) => list.map((r) => `-A ${c} ${r}`));
      return ok(`${[...heads, ...rules].join("\n")}\n`);
    }
    const list = chains.get(chain!);
    if (op === "-N") {
      if (list) return { code: 1, stdout: "", stderr: "Chain already exists." };
      chains.set(chain!, []);
      return ok();
    }
    if (!list) return { code: 1, stdout: "", stderr: `No chain/target/match by that name: ${chain}` };
    if (op === "-S") return ok();
    if (op === "-C") return { code: list.includes(rest.join(" ")) ? 0 : 1, stdout: "", stderr: "" };
    if (op === "-A") list.push(rest.join(" "));
    else if (op === "-I") list.splice(Number(rest[0]) - 1, 0, rest.slice(1).join(" "));
    else return { code: 2, stdout: "", stderr: `unexpected ${op}` };
    return ok();
  };
  return { run, calls, chain: (name: string) => chains.get(name) ?? [] };
}

const P0 = MANAGED_NETWORKS.egress.bridge;
const N0 = MANAGED_NETWORKS.none.bridge;

describe("the rule set", () => {
  test("egress: replies and DNS to each resolver pass first; host, own network and every blocked range are rejected", () => {
    const rules = egressRules("egress", ["10.255.255.53", "127.0.0.53"]);
    for (const cidr of ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"])
      expect(BLOCKED_RANGES).toContain(cidr);
    const rejects = rules.filter((r) => r.args.includes("REJECT"));
    for (const cidr of BLOCKED_RANGES) expect(rejects.some((r) => r.chain === FORWARD_CHAIN && r.args.includes(cidr))).toBe(true);
    expect(rejects).toContainEqual({ chain: FORWARD_CHAIN, args: ["-i", P0, "-o", P0, ...REJECT_ARGS], at: "end" });
    expect(rejects).toContainEqual({ chain: INPUT_CHAIN, args: ["-i", P0, ...REJECT_ARGS], at: "end" });
    // Allowances: only replies and udp/tcp 53 to the one non-loopback resolver, in both chains, all on top.
    const allows = rules.filter((r) => !r.args.includes("REJECT"));
    expect(allows.every((r) => r.at === "top" && r.args.at(-1) === "RETURN")).toBe(true);
    expect(rejects.every((r) => r.at === "end")).toBe(true);
    const dns = allows.filter((r) => r.args.includes("53"));
    expect(dns.map((r) => [r.chain, r.args[1], r.args[5]])).toEqual([
      [FORWARD_CHAIN, "10.255.255.53/32", "udp"],
      [FORWARD_CHAIN, "10.255.255.53/32", "tcp"],
      [INPUT_CHAIN, "10.255.255.53/32", "udp"],
      [INPUT_CHAIN, "10.255.255.53/32", "tcp"],
    ]);
    expect(allows.length).toBe(dns.length + 2);
    // Every rule is keyed on the managed bridge: no other container is affected.
    for (const r of rules) expect(r.args[r.args.indexOf("-i") + 1]).toBe(P0);
  });

  test("none: everything from the bridge is rejected after replies, with no DNS allowance", () => {
    const rules = egressRules("none", ["10.255.255.53"]);
    expect(rules.some((r) => r.args.includes("53"))).toBe(false);
    const fwd = rules.filter((r) => r.chain === FORWARD_CHAIN);
    expect(fwd.map((r) => r.args.includes("REJECT"))).toEqual([false, true]);
    expect(fwd[1]!.args).toEqual(["-i", N0, ...REJECT_ARGS]);
  });
});

describe("host resolvers, found the way dockerd finds them", () => {
  const files = (f: Record<string, string>) => (path: string) => f[path] ?? null;

  test("resolv.conf nameservers, IPv4 only, in order, no duplicates", () => {
    expect(
      parseResolvConf("# c\nnameserver 10.255.255.53\nnameserver ::1\n nameserver 1.1.1.1 # x\nnameserver 10.255.255.53\nsearch x"),
    ).toEqual(["10.255.255.53", "1.1.1.1"]);
    expect(hostResolvers(files({ "/etc/resolv.conf": "nameserver 10.255.255.53\n" }))).toEqual(["10.255.255.53"]);
  });

  test("the daemon's dns setting wins; systemd-resolved's stub is replaced by its upstream file", () => {
    expect(
      hostResolvers(files({ "/etc/docker/daemon.json": '{"dns":["192.168.1.53"]}', "/etc/resolv.conf": "nameserver 10.0.0.2\n" })),
    ).toEqual(["192.168.1.53"]);
    expect(
      hostResolvers(files({ "/etc/resolv.conf": "nameserver 127.0.0.53\n", "/run/systemd/resolve/resolv.conf": "nameserver 10.1.2.3\n" })),
    ).toEqual(["10.1.2.3"]);
    expect(hostResolvers(files({ "/etc/docker/daemon.json": "{broken", "/etc/resolv.conf": "nameserver 127.0.0.1\n" }))).toEqual([
      "127.0.0.1",
    ]);
    expect(hostResolvers(files({}))).toEqual([]);
  });
});

describe("installing the rules", () => {
  test("from scratch: chains created and jumped to first, every rule added once, each after its check", async () => {
    const ipt = fakeIptables();
    const guard = new EgressGuard(fakeDocker, { local: true, run: ipt.run, resolvers: () => ["10.255.255.53"] });
    expect(await guard.prepare("egress")).toEqual({ network: "bay-egress-restricted", dns: ["10.255.255.53"] });
    expect(ipt.chain("DOCKER-USER")[0]).toBe(`-j ${FORWARD_CHAIN}`);
    expect(ipt.chain("INPUT")[0]).toBe(`-j ${INPUT_CHAIN}`);
    const rules = egressRules("egress", ["10.255.255.53"]);
    for (const rule of rules) {
      expect(ipt.chain(rule.chain).filter((r) => r === rule.args.join(" "))).toHaveLength(1);
      const checkAt = ipt.calls.findIndex((c) => endsWith(c, ["-C", rule.chain, ...rule.args]));
      const add = rule.at === "top" ? ["-I", rule.chain, "1", ...rule.args] : ["-A", rule.chain, ...rule.args];
      const addAt = ipt.calls.findIndex((c) => endsWith(c, add));
      expect(addAt).toBeGreaterThan(checkAt);
    }
  });

  test("idempotent: once everything is there, a prepare is one listing and adds nothing", async () => {
    const ipt = fakeIptables();
    const guard = new EgressGuard(fakeDocker, { local: true, run: ipt.run, resolvers: () => ["10.255.255.53"] });
    await guard.prepare("egress");
    const before = ipt.calls.length;
    await guard.prepare("egress");
    expect(ipt.calls.slice(before)).toEqual([["iptables", "-w", "5", "-S"]]);
  });

  test("one missing rule (e.g. after a firewall reload) is put back, and only that one", async () => {
    const ipt = fakeIptables();
    const guard = new EgressGuard(fakeDocker, { local: true, run: ipt.run, resolvers: () => [] });
    await guard.prepare("egress");
    const link = ipt.chain(FORWARD_CHAIN).findIndex((r) => r.includes("169.254.0.0/16"));
    ipt.chain(FORWARD_CHAIN).splice(link, 1);
    const before = ipt.calls.length;
    await guard.prepare("egress");
    const adds = ipt.calls.slice(before).filter((c) => ["-A", "-I", "-N"].includes(c[3]!));
    expect(adds).toEqual([["iptables", "-w", "5", "-A", FORWARD_CHAIN, "-d", "169.254.0.0/16", "-i", P0, ...REJECT_ARGS]]);
  });

  test("into a chain an older Bay filled (refusals first): every allowance still ends up before every refusal", async () => {
    const old = egressRules("egress", []).filter((r) => r.chain === FORWARD_CHAIN);
    const ipt = fakeIptables({
      [FORWARD_CHAIN]: [...old.filter((r) => r.at === "end"), ...old.filter((r) => r.at === "top")].map((r) => r.args),
      "DOCKER-USER": [["-j", FORWARD_CHAIN]],
    });
    const guard = new EgressGuard(fakeDocker, { local: true, run: ipt.run, resolvers: () => ["10.255.255.53"] });
    await guard.prepare("egress");
    for (const chain of [FORWARD_CHAIN, INPUT_CHAIN]) {
      const list = ipt.chain(chain);
      const lastReturn = list.findLastIndex((r) => r.endsWith("RETURN") && !r.includes("ESTABLISHED"));
      expect(lastReturn).toBeGreaterThanOrEqual(0);
      expect(lastReturn).toBeLessThan(list.findIndex((r) => r.includes("REJECT")));
    }
  });

  test("iptables failing (not root) → driver_unavailable naming the cause", async () => {
    const run: RunCommand = async () => ({ code: 4, stdout: "", stderr: "Permission denied (you must be root)" });
    const guard = new EgressGuard(fakeDocker, { local: true, run });
    await expect(guard.prepare("egress")).rejects.toMatchObject({ code: "driver_unavailable", message: expect.stringContaining("root") });
  });

  test("a remote engine → driver_unavailable without touching iptables", async () => {
    let ran = false;
    const guard = new EgressGuard(fakeDocker, { local: false, run: async () => ((ran = true), { code: 0, stdout: "", stderr: "" }) });
    await expect(guard.prepare("none")).rejects.toMatchObject({ code: "driver_unavailable", message: expect.stringContaining("remote") });
    expect(ran).toBe(false);
  });

  test("a managed network someone created with containers talking to each other is refused", async () => {
    const iccOn = {
      getNetwork: () => ({ inspect: async () => ({ Options: { "com.docker.network.bridge.name": P0 } }) }),
    } as unknown as Docker;
    const guard = new EgressGuard(iccOn, { local: true, run: fakeIptables().run });
    await expect(guard.prepare("egress")).rejects.toMatchObject({
      code: "driver_unavailable",
      message: expect.stringContaining("reach each other"),
    });
  });

  test("a managed network in container_network mode → driver_unavailable before any engine call", async () => {
    let touched = false;
    const guard = new EgressGuard(fakeDocker, { local: true, run: async () => ((touched = true), { code: 0, stdout: "", stderr: "" }) });
    const driver = new DockerDriver({
      socketPath: "/nonexistent/docker.sock",
      connectMode: "container_network",
      network: "bay-net",
      defaultPidsLimit: 64,
      egress: guard,
    });
    const spec = {
      name: "x",
      image: SHIP_IMAGE,
      runtimePort: 8123,
      env: {},
      labels: { owner: "o", sandbox_id: "s", workspace_id: "w", instance_id: "i" },
      cpus: 1,
      memoryMb: 256,
      pidsLimit: 64,
      volumeName: "v",
      network: "egress" as const,
    };
    await expect(driver.createContainer(spec)).rejects.toMatchObject({
      code: "driver_unavailable",
      message: expect.stringContaining("host_port"),
    });
    expect(touched).toBe(false);
  });
});

describe("container options", () => {
  test("the managed network and its pinned resolvers go into the create request", () => {
    const opts = containerCreateOptions(
      {
        name: "n",
        image: "img",
        runtimePort: 8123,
        env: {},
        labels: { owner: "o", sandbox_id: "s", workspace_id: "w", instance_id: "i" },
        cpus: 1,
        memoryMb: 256,
        pidsLimit: 64,
        volumeName: "v",
        network: "egress",
      },
      { mode: "host_port", network: "bay-egress-restricted", dns: ["10.255.255.53"], defaultPidsLimit: 64, labels: new LabelCodec("bay.") },
    );
    expect(opts.HostConfig?.NetworkMode).toBe("bay-egress-restricted");
    expect(opts.HostConfig?.Dns).toEqual(["10.255.255.53"]);
  });
});

describe("a start that cannot be isolated fails closed", () => {
  const dir = mkdtempSync(join(tmpdir(), "bay-egress-"));
  const instanceId = uniqueInstanceId();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("503 driver_unavailable, sandbox failed with the reason, no container left", async () => {
    const config = configSchema.parse({
      database: { url: `file:${join(dir, "bay.db")}` },
      auth: { mode: "anonymous" },
      driver: { instance_id: instanceId },
      profiles: [{ id: "isolated", image: SHIP_IMAGE }],
    });
    const failing = new EgressGuard(fakeDocker, { local: true, run: async () => ({ code: 1, stdout: "", stderr: "iptables: not found" }) });
    const driver = new DockerDriver({ connectMode: "host_port", defaultPidsLimit: 256, egress: failing });
    const bay = await buildBay(config, { logger: silentLogger, hostEnv: {}, driver });
    try {
      const h = { "x-owner": "alice", "content-type": "application/json" };
      const created = await bay.app.request("/v1/sandboxes", {
        method: "POST",
        headers: h,
        body: JSON.stringify({ profile: "isolated" }),
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
      expect(body.error.message).toContain("isolate");
      expect(body.error.message).toContain("root");
      // The command's own output goes to the log, never to the client.
      expect(JSON.stringify(body)).not.toContain("iptables: not found");
      expect((body.error as unknown as { details: Record<string, unknown> }).details).toMatchObject({
        network_policy: "egress",
        reason: "firewall",
      });
      expect(await driver.listContainers({ instance_id: instanceId })).toHaveLength(0);
    } finally {
      await removeInstanceResources(bay, instanceId);
      await bay.close();
    }
  });
});
