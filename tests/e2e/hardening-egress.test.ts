/**
 * A profile's network choice on real Docker, and DNS on Bay's managed network.
 * Every target is the test's own: an echo server on a Docker network the test
 * creates, and a stand-in upstream DNS server on that network's host address. No
 * packet is addressed outside this machine (the DNS test pins the sandbox's
 * upstream to the stand-in, so not even a query goes to the host's resolver).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DockerDriver } from "../../src/bay/drivers/docker/docker-driver.ts";
import {
  EgressGuard,
  egressRules,
  FORWARD_CHAIN,
  hostResolvers,
  INPUT_CHAIN,
  MANAGED_NETWORKS,
} from "../../src/bay/drivers/docker/egress.ts";
import { SHIP_IMAGE } from "../support/images.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { startDnsStandIn } from "./support/dns-standin.ts";
import { ECHO_PORT, ensureEchoImage, removeLabelled } from "./support/docker-fixtures.ts";
import { containersOf, docker, profiles, py, requireShipImages, sh, withSandbox } from "./support/e2e.ts";
import { addressOn, chainRules, createSubnetNetwork, hostIn, probeFrom, SUBNETS, type TestNetwork } from "./support/network.ts";

const tag = crypto.randomUUID().slice(0, 8);
const LABELS = { "bay.test.egress": tag };
let net: TestNetwork;
let t: TestBay;
let echoIp = "";

beforeAll(async () => {
  await requireShipImages();
  const image = await ensureEchoImage(docker);
  net = await createSubnetNetwork(docker, `bay-test-egress-${tag}`, LABELS, SUBNETS.ten);
  echoIp = hostIn(net.subnet, 10);
  const echo = await docker.createContainer({
    Image: image,
    name: `bay-test-echo-${tag}`,
    Labels: LABELS,
    HostConfig: { NetworkMode: net.name, Memory: 64 * 1024 * 1024, PidsLimit: 32, CapDrop: ["ALL"] },
    NetworkingConfig: { EndpointsConfig: { [net.name]: { IPAMConfig: { IPv4Address: echoIp } } } },
  });
  await echo.start();
  t = await createTestBay({
    config: {
      profiles: profiles(
        { id: "own", image: SHIP_IMAGE, network: { docker_network: net.name }, memory_mb: 256 },
        { id: "isolated", image: SHIP_IMAGE, memory_mb: 256 },
        { id: "offline", image: SHIP_IMAGE, network: "none", memory_mb: 256 },
      ),
    },
  });
}, 120_000);

afterAll(async () => {
  await t?.close();
  await removeLabelled(docker, LABELS);
});

describe("network choices", () => {
  test("docker_network: a sandbox on the operator's network reaches a target there", async () => {
    await withSandbox(
      t,
      async (id) => {
        expect(await probeFrom(t, id, [[echoIp, ECHO_PORT]])).toEqual(["open"]);
        const [c] = await containersOf(t, id);
        const info = await docker.getContainer(c!.id).inspect();
        expect(Object.keys(info.NetworkSettings.Networks)).toEqual([net.name]);
      },
      "own",
    );
  });

  test("egress (the default): Bay's managed network, containers isolated from each other, no IPv6, the host's resolvers pinned", async () => {
    await withSandbox(
      t,
      async (id) => {
        // The first call starts the session: Bay → Ship over 127.0.0.1 works through the rules.
        expect((await py(t, id, "1+1")).body.output.trim()).toBe("2");
        const [c] = await containersOf(t, id);
        const info = await docker.getContainer(c!.id).inspect();
        expect(Object.keys(info.NetworkSettings.Networks)).toEqual([MANAGED_NETWORKS.egress.network]);
        const resolvers = hostResolvers();
        expect(info.HostConfig.Dns ?? []).toEqual(resolvers);
        const network = await docker.getNetwork(MANAGED_NETWORKS.egress.network).inspect();
        expect(network.Options?.["com.docker.network.bridge.enable_icc"]).toBe("false");
        expect(network.EnableIPv6).toBe(false);
        // The private target is refused by Bay's rule (EHOSTUNREACH), not dropped or closed.
        expect(await probeFrom(t, id, [[echoIp, ECHO_PORT]])).toEqual(["EHOSTUNREACH"]);
      },
      "isolated",
    );
  });

  test("none: no egress at all, but Bay still reaches Ship", async () => {
    await withSandbox(
      t,
      async (id) => {
        expect((await py(t, id, "40+2")).body.output.trim()).toBe("42");
        const [c] = await containersOf(t, id);
        const info = await docker.getContainer(c!.id).inspect();
        expect(Object.keys(info.NetworkSettings.Networks)).toEqual([MANAGED_NETWORKS.none.network]);
        expect(await probeFrom(t, id, [[echoIp, ECHO_PORT]])).toEqual(["EHOSTUNREACH"]);
        expect(chainRules(FORWARD_CHAIN)).toContain(
          `-A ${FORWARD_CHAIN} -i ${MANAGED_NETWORKS.none.bridge} -j REJECT --reject-with icmp-admin-prohibited`,
        );
      },
      "offline",
    );
  });
});

describe("DNS on the managed network", () => {
  test("resolv.conf names only Docker's embedded resolver, which answers the sandbox's own name", async () => {
    await withSandbox(
      t,
      async (id) => {
        expect((await py(t, id, "1")).status).toBe(200);
        const [c] = await containersOf(t, id);
        const name = (await docker.getContainer(c!.id).inspect()).Name.replace(/^\//, "");
        const own = await addressOn(docker, c!.id, MANAGED_NETWORKS.egress.network);
        const r = await sh(t, id, { command: `grep '^nameserver' /etc/resolv.conf; getent hosts ${name}` });
        expect(r.body.exit_code).toBe(0);
        expect(r.body.output.trim().split("\n")).toEqual([
          "nameserver 127.0.0.11",
          expect.stringMatching(new RegExp(`^${own.replaceAll(".", "\\.")}\\s+${name}`)),
        ]);
      },
      "isolated",
    );
  });

  test("names Docker forwards upstream resolve: the query leaves from the sandbox's own address, through the port-53 allowance only", async () => {
    // A stand-in upstream resolver on a host address in 10/8, the range the rules otherwise refuse.
    const upstream = net.gateway;
    const name = `standin-${tag}.bay.test`;
    const dns = await startDnsStandIn(upstream, name, "203.0.113.7");
    const web = Bun.serve({ hostname: upstream, port: 0, fetch: () => new Response("host") });
    const guard = new EgressGuard(docker, { local: true, resolvers: () => [upstream] });
    const driver = new DockerDriver({ socketPath: "/var/run/docker.sock", connectMode: "host_port", defaultPidsLimit: 256, egress: guard });
    const d = await createTestBay({ driver, config: { profiles: profiles({ id: "isolated", image: SHIP_IMAGE, memory_mb: 256 }) } });
    try {
      await withSandbox(
        d,
        async (id) => {
          const r = await py(d, id, `import socket; print(socket.gethostbyname(${JSON.stringify(name)}))`);
          expect(r.body.output.trim()).toBe("203.0.113.7");
          const [c] = await containersOf(d, id);
          const own = await addressOn(docker, c!.id, MANAGED_NETWORKS.egress.network);
          // Docker 20.10 dials a non-loopback upstream from the container's namespace: hence the allowance.
          expect(dns.queries.some((q) => q.from === own && q.name === name)).toBe(true);
          // The same host address on any other port stays refused.
          expect(await probeFrom(d, id, [[upstream, web.port!]])).toEqual(["EHOSTUNREACH"]);
        },
        "isolated",
      );
    } finally {
      await d.close();
      web.stop(true);
      dns.close();
      // The stand-in's allowance is this test's own: take it out again.
      for (const rule of egressRules("egress", [upstream]).filter((r) => r.args.includes("53"))) {
        Bun.spawnSync(["iptables", "-w", "5", "-D", rule.chain, ...rule.args]);
      }
      for (const chain of [FORWARD_CHAIN, INPUT_CHAIN]) expect(chainRules(chain).some((l) => l.includes(`${upstream}/32`))).toBe(false);
    }
  });
});
