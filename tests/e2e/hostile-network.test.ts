/**
 * Hostile network tests on real Docker: code in sandbox A tries to reach what it
 * must not, and each test passes only when the attempt fails with Bay's refusal
 * (EHOSTUNREACH from a REJECT rule, not a closed port or a silent drop). Every
 * target is the test's own: sandbox B, a Bun server on a host address, and one
 * echo container multi-homed on networks the test creates, on subnets inside
 * each refused range (metadata stand-in at 169.254.x.254, "Bay in a container"
 * in 172.16/12, and 10/8, 192.168/16, 100.64/10). Each target is first shown to
 * answer from this host, so a refusal is the rule, never a dead target. No packet
 * is addressed outside this machine.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BLOCKED_RANGES, FORWARD_CHAIN, INPUT_CHAIN, MANAGED_NETWORKS } from "../../src/bay/drivers/docker/egress.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { ECHO_PORT, ensureEchoImage, removeLabelled } from "./support/docker-fixtures.ts";
import { containersOf, docker, dropSandbox, newSandbox, py, requireShipImages } from "./support/e2e.ts";
import { addressOn, chainRules, createSubnetNetwork, hostIn, probeFrom, rejected, SUBNETS, type TestNetwork } from "./support/network.ts";

const tag = crypto.randomUUID().slice(0, 8);
const LABELS = { "bay.test.netiso": tag };
const BRIDGE = MANAGED_NETWORKS.egress.bridge;
const REFUSED = "EHOSTUNREACH";

let t: TestBay;
let a = "";
let b = "";
let bAddress = "";
let bHostPort = 0;
let managedGateway = "";
const nets: Record<keyof typeof SUBNETS, TestNetwork> = {} as never;
const targets: Record<keyof typeof SUBNETS, string> = {} as never;

/** A server on this host bound to one host address: a stand-in for Bay or any host service. */
function hostServer(hostname: string, body: string) {
  return Bun.serve({ hostname, port: 0, fetch: () => new Response(body) });
}

async function answersFromHost(url: string, body?: string): Promise<void> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  expect(res.status).toBe(200);
  if (body !== undefined) expect(text).toBe(body);
}

beforeAll(async () => {
  await requireShipImages();
  const image = await ensureEchoImage(docker);
  for (const key of Object.keys(SUBNETS) as Array<keyof typeof SUBNETS>) {
    nets[key] = await createSubnetNetwork(docker, `bay-test-netiso-${tag}-${key}`, LABELS, SUBNETS[key]);
  }
  // One echo container on every test network; on the link-local one at .254, like a metadata service.
  targets.linkLocal = hostIn(nets.linkLocal.subnet, 254);
  const standIn = await docker.createContainer({
    Image: image,
    name: `bay-test-netiso-${tag}-standin`,
    Labels: LABELS,
    HostConfig: { NetworkMode: nets.linkLocal.name, Memory: 64 * 1024 * 1024, PidsLimit: 32, CapDrop: ["ALL"] },
    NetworkingConfig: { EndpointsConfig: { [nets.linkLocal.name]: { IPAMConfig: { IPv4Address: targets.linkLocal } } } },
  });
  for (const key of ["ten", "oneSevenTwo", "oneNineTwo", "cgnat"] as const) {
    targets[key] = hostIn(nets[key].subnet, 10);
    await docker
      .getNetwork(nets[key].name)
      .connect({ Container: standIn.id, EndpointConfig: { IPAMConfig: { IPv4Address: targets[key] } } });
  }
  await standIn.start();

  t = await createTestBay();
  a = await newSandbox(t);
  b = await newSandbox(t);
  for (const id of [a, b]) expect((await py(t, id, "1+1")).body.output.trim()).toBe("2");
  const [cb] = await containersOf(t, b);
  bAddress = await addressOn(docker, cb!.id, MANAGED_NETWORKS.egress.network);
  const ports = (await docker.getContainer(cb!.id).inspect()).NetworkSettings.Ports["8123/tcp"] ?? [];
  bHostPort = Number(ports.find((p) => p.HostIp === "127.0.0.1")?.HostPort);
  const managed = await docker.getNetwork(MANAGED_NETWORKS.egress.network).inspect();
  managedGateway = managed.IPAM?.Config?.[0]?.Gateway as string;
}, 180_000);

afterAll(async () => {
  await t?.close();
  await removeLabelled(docker, LABELS);
});

describe("the rules Bay installed for the default profile", () => {
  test("every refused range, the host and the network itself are REJECTed, after every allowance, and both chains are jumped to", () => {
    expect(chainRules("DOCKER-USER")[0]).toBe(`-A DOCKER-USER -j ${FORWARD_CHAIN}`);
    expect(chainRules("INPUT")).toContain(`-A INPUT -j ${INPUT_CHAIN}`);
    const fwd = chainRules(FORWARD_CHAIN).filter((l) => l.includes(`-i ${BRIDGE} `));
    for (const cidr of BLOCKED_RANGES)
      expect(fwd).toContain(`-A ${FORWARD_CHAIN} -d ${cidr} -i ${BRIDGE} -j REJECT --reject-with icmp-admin-prohibited`);
    expect(fwd).toContain(`-A ${FORWARD_CHAIN} -i ${BRIDGE} -o ${BRIDGE} -j REJECT --reject-with icmp-admin-prohibited`);
    const inp = chainRules(INPUT_CHAIN).filter((l) => l.includes(`-i ${BRIDGE} `));
    expect(inp).toContain(`-A ${INPUT_CHAIN} -i ${BRIDGE} -j REJECT --reject-with icmp-admin-prohibited`);
    for (const rules of [fwd, inp]) {
      const lastReturn = rules.findLastIndex((l) => l.endsWith("-j RETURN"));
      const firstReject = rules.findIndex((l) => l.includes("-j REJECT"));
      expect(lastReturn).toBeLessThan(firstReject);
      // The only allowances: replies, and DNS (port 53) to single resolver addresses.
      for (const l of rules.filter((r) => r.endsWith("-j RETURN"))) {
        expect(l.includes("--ctstate RELATED,ESTABLISHED") || /-d [\d.]+\/32 .*--dport 53 -j RETURN$/.test(l)).toBe(true);
      }
    }
  });

  test("no IPv6 path around them: the sandbox has no IPv6 address at all", async () => {
    const r = await py(t, a, "print(repr(open('/proc/net/if_inet6').read()))");
    expect(r.body.output.trim()).toBe("''");
  });
});

describe("from inside sandbox A", () => {
  test("sandbox B's Ship at its address on the shared network is refused", async () => {
    await answersFromHost(`http://${bAddress}:8123/health`);
    const before = rejected(FORWARD_CHAIN, BRIDGE);
    expect(await probeFrom(t, a, [[bAddress, 8123]])).toEqual([REFUSED]);
    expect(rejected(FORWARD_CHAIN, BRIDGE)).toBeGreaterThan(before);
  });

  test("Docker's resolver names sandbox B to A by a random name only: neither B's sandbox nor its workspace id (review s86)", async () => {
    const code = `import socket\nprint(socket.gethostbyaddr(${JSON.stringify(bAddress)})[0])`;
    const named = (await py(t, a, code)).body.output.trim();
    // The resolver does answer (the name is what it gives away), and the name is Bay's random one.
    expect(named).toMatch(/^bay-[0-9a-f]{32}\.bay-egress/);
    const workspace = (await t.json("GET", `/v1/sandboxes/${b}`)).body.workspace_id as string;
    for (const id of [b, workspace]) expect(named.toLowerCase()).not.toContain(id.split("-").pop()!.toLowerCase());
  });

  test("sandbox B's Ship through its published port on a host address is refused", async () => {
    await answersFromHost(`http://127.0.0.1:${bHostPort}/health`);
    const before = rejected(INPUT_CHAIN, BRIDGE);
    expect(await probeFrom(t, a, [[managedGateway, bHostPort]])).toEqual([REFUSED]);
    expect(rejected(INPUT_CHAIN, BRIDGE)).toBeGreaterThan(before);
  });

  test("Bay and other services on the Docker host are refused, on any host address", async () => {
    // Bay on the host, as a sandbox would find it (its gateway), and a service on another host address.
    const bay = hostServer(managedGateway, "bay");
    const other = hostServer(nets.ten.gateway, "host");
    try {
      await answersFromHost(`http://${managedGateway}:${bay.port}/`, "bay");
      await answersFromHost(`http://${nets.ten.gateway}:${other.port}/`, "host");
      const before = rejected(INPUT_CHAIN, BRIDGE);
      expect(
        await probeFrom(t, a, [
          [managedGateway, bay.port!],
          [nets.ten.gateway, other.port!],
        ]),
      ).toEqual([REFUSED, REFUSED]);
      expect(rejected(INPUT_CHAIN, BRIDGE)).toBeGreaterThanOrEqual(before + 2);
    } finally {
      bay.stop(true);
      other.stop(true);
    }
  });

  test("a metadata service at 169.254.x.254 is refused by the link-local rule", async () => {
    await answersFromHost(`http://${targets.linkLocal}:${ECHO_PORT}/health`);
    const linkLocal = (r: { destination: string }) => r.destination === "169.254.0.0/16";
    const before = rejected(FORWARD_CHAIN, BRIDGE, linkLocal);
    expect(await probeFrom(t, a, [[targets.linkLocal, ECHO_PORT]])).toEqual([REFUSED]);
    expect(rejected(FORWARD_CHAIN, BRIDGE, linkLocal)).toBeGreaterThan(before);
  });

  test("Bay in a container and services in 10/8, 172.16/12, 192.168/16 and 100.64/10 are refused, each by its range's rule", async () => {
    const cases = [
      ["ten", "10.0.0.0/8"],
      ["oneSevenTwo", "172.16.0.0/12"],
      ["oneNineTwo", "192.168.0.0/16"],
      ["cgnat", "100.64.0.0/10"],
    ] as const;
    for (const [key] of cases) await answersFromHost(`http://${targets[key]}:${ECHO_PORT}/health`);
    const before = cases.map(([, cidr]) => rejected(FORWARD_CHAIN, BRIDGE, (r) => r.destination === cidr));
    const outcomes = await probeFrom(
      t,
      a,
      cases.map(([key]) => [targets[key], ECHO_PORT]),
    );
    expect(outcomes).toEqual(cases.map(() => REFUSED));
    cases.forEach(([, cidr], i) => {
      expect(rejected(FORWARD_CHAIN, BRIDGE, (r) => r.destination === cidr)).toBeGreaterThan(before[i]!);
    });
  });
});

describe("from inside a gVisor sandbox", () => {
  test("the same rules hold under runsc: sandbox B and the metadata stand-in are refused", async () => {
    const c = await newSandbox(t, "python-gvisor");
    try {
      expect((await py(t, c, "1+1")).body.output.trim()).toBe("2");
      const [cc] = await containersOf(t, c);
      expect((await docker.getContainer(cc!.id).inspect()).HostConfig.Runtime).toBe("runsc");
      expect(
        await probeFrom(t, c, [
          [bAddress, 8123],
          [targets.linkLocal, ECHO_PORT],
        ]),
      ).toEqual([REFUSED, REFUSED]);
    } finally {
      await dropSandbox(t, c);
    }
  });
});
