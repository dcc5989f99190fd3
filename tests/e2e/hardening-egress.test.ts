/**
 * Per-profile network and private-egress blocking on real Docker. Every target is
 * started by this test on this machine: an echo server on a Docker network the
 * test creates (a private subnet), and an HTTP server bound to the gateway address
 * of Bay's managed bridge. No packet is addressed outside this machine.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { FORWARD_CHAIN, INPUT_CHAIN, MANAGED_NETWORKS } from "../../src/bay/drivers/docker/egress.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { ECHO_PORT, ensureEchoImage, removeLabelled } from "./support/docker-fixtures.ts";
import { containersOf, docker, profiles, py, requireShipImages, sh, withSandbox } from "./support/e2e.ts";
import { SHIP_IMAGE } from "../support/images.ts";

const tag = crypto.randomUUID().slice(0, 8);
const LABELS = { "bay.test.egress": tag };
const NET = `bay-test-egress-${tag}`;
let t: TestBay;
let echoIp = "";

/** Packet count of the BAY-EGRESS rule for `cidr` (REJECT), from iptables counters. */
function rejectCount(chain: string, match: (line: string) => boolean): number {
  const out = Bun.spawnSync(["iptables", "-w", "5", "-L", chain, "-v", "-n", "-x"]).stdout.toString();
  return out
    .split("\n")
    .filter((l) => l.includes("REJECT") && match(l))
    .reduce((n, l) => n + Number(l.trim().split(/\s+/)[0]), 0);
}

const curl = (url: string) => `curl -sS -m 4 -o /dev/null -w '%{http_code}' ${url} 2>&1; echo " rc=$?"`;
/**
 * Bay's rules REJECT (icmp-admin-prohibited): the connection fails at once with
 * curl exit 7 (could not connect). A silent DROP would be exit 28 (timeout).
 */
const REFUSED = "rc=7";

/** The target answers when approached from this host: a refusal from the sandbox is the rule, not a dead target. */
async function expectReachableFromHost(url: string): Promise<void> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  await requireShipImages();
  const image = await ensureEchoImage(docker);
  await docker.createNetwork({ Name: NET, Driver: "bridge", Labels: LABELS });
  const echo = await docker.createContainer({
    Image: image,
    name: `bay-test-echo-${tag}`,
    Labels: LABELS,
    HostConfig: { NetworkMode: NET, Memory: 64 * 1024 * 1024, PidsLimit: 32, CapDrop: ["ALL"] },
  });
  await echo.start();
  echoIp = (await echo.inspect()).NetworkSettings.Networks[NET]!.IPAddress;
  t = await createTestBay({
    config: {
      profiles: profiles(
        { id: "open", image: SHIP_IMAGE, network: NET, memory_mb: 256 },
        { id: "restricted", image: SHIP_IMAGE, block_private_egress: true, memory_mb: 256 },
        { id: "offline", image: SHIP_IMAGE, network: "none", memory_mb: 256 },
      ),
    },
  });
}, 120_000);

afterAll(async () => {
  await t?.close();
  await removeLabelled(docker, LABELS);
});

describe("network and egress", () => {
  test("a sandbox on the target's network reaches it (the target is really reachable)", async () => {
    expect(echoIp).toMatch(/^(10|172|192)\./);
    await withSandbox(
      t,
      async (id) => {
        const r = await sh(t, id, { command: curl(`http://${echoIp}:${ECHO_PORT}/health`) });
        expect(r.body.output).toContain("200 rc=0");
      },
      "open",
    );
  });

  test("block_private_egress: the private target is refused by Bay's rule; Bay still reaches the Ship", async () => {
    await withSandbox(
      t,
      async (id) => {
        // The first call starts the session: Bay → Ship over 127.0.0.1 works through the rules.
        expect((await py(t, id, "1+1")).body.output.trim()).toBe("2");
        const [c] = await containersOf(t, id);
        const info = await docker.getContainer(c!.id).inspect();
        expect(Object.keys(info.NetworkSettings.Networks)).toEqual([MANAGED_NETWORKS.private.network]);

        const rules = Bun.spawnSync(["iptables", "-w", "5", "-S", FORWARD_CHAIN]).stdout.toString();
        for (const cidr of ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]) {
          expect(rules).toContain(`-d ${cidr} -i ${MANAGED_NETWORKS.private.bridge} -j REJECT`);
        }

        const isTarget = (l: string) => l.includes(MANAGED_NETWORKS.private.bridge) && !l.includes("0.0.0.0/0            0.0.0.0/0");
        const before = rejectCount(FORWARD_CHAIN, isTarget);
        const r = await sh(t, id, { command: curl(`http://${echoIp}:${ECHO_PORT}/health`) });
        // REJECT answers at once (exit 7); Docker's own isolation would only drop (exit 28, timeout).
        expect(r.body.output).toContain(REFUSED);
        expect(rejectCount(FORWARD_CHAIN, isTarget)).toBeGreaterThan(before);
      },
      "restricted",
    );
  });

  test("block_private_egress: the Docker host itself is not reachable from the sandbox", async () => {
    await withSandbox(
      t,
      async (id) => {
        expect((await py(t, id, "1")).status).toBe(200);
        const net = await docker.getNetwork(MANAGED_NETWORKS.private.network).inspect();
        const gateway = net.IPAM?.Config?.[0]?.Gateway as string;
        expect(gateway).toBeTruthy();
        // A server on this host, bound only to the managed bridge's own address.
        const server = Bun.serve({ hostname: gateway, port: 0, fetch: () => new Response("host") });
        try {
          const ok = await fetch(`http://${gateway}:${server.port}/`);
          expect(await ok.text()).toBe("host");
          const before = rejectCount(INPUT_CHAIN, (l) => l.includes(MANAGED_NETWORKS.private.bridge));
          const r = await sh(t, id, { command: curl(`http://${gateway}:${server.port}/`) });
          expect(r.body.output).toContain(REFUSED);
          expect(rejectCount(INPUT_CHAIN, (l) => l.includes(MANAGED_NETWORKS.private.bridge))).toBeGreaterThan(before);
        } finally {
          server.stop(true);
        }
      },
      "restricted",
    );
  });

  test("network none: no egress at all, but Bay still reaches the Ship", async () => {
    await withSandbox(
      t,
      async (id) => {
        expect((await py(t, id, "40+2")).body.output.trim()).toBe("42");
        const [c] = await containersOf(t, id);
        const info = await docker.getContainer(c!.id).inspect();
        expect(Object.keys(info.NetworkSettings.Networks)).toEqual([MANAGED_NETWORKS.all.network]);
        await expectReachableFromHost(`http://${echoIp}:${ECHO_PORT}/health`);
        const r = await sh(t, id, { command: curl(`http://${echoIp}:${ECHO_PORT}/health`) });
        expect(r.body.output).toContain(REFUSED);
        expect(Bun.spawnSync(["iptables", "-w", "5", "-S", FORWARD_CHAIN]).stdout.toString()).toContain(
          `-A ${FORWARD_CHAIN} -i ${MANAGED_NETWORKS.all.bridge} -j REJECT`,
        );
      },
      "offline",
    );
  });

  test("two restricted sandboxes cannot reach each other", async () => {
    await withSandbox(
      t,
      async (a) => {
        await withSandbox(
          t,
          async (b) => {
            expect((await py(t, b, "1")).status).toBe(200);
            const [cb] = await containersOf(t, b);
            const ipB = (await docker.getContainer(cb!.id).inspect()).NetworkSettings.Networks[MANAGED_NETWORKS.private.network]!.IPAddress;
            // b's Ship really listens on that address (reached from the host)…
            await expectReachableFromHost(`http://${ipB}:8123/health`);
            // …and a is refused by the rule, not left to time out.
            expect((await py(t, a, "1")).status).toBe(200);
            const r = await sh(t, a, { command: curl(`http://${ipB}:8123/health`) });
            expect(r.body.output).toContain(REFUSED);
          },
          "restricted",
        );
      },
      "restricted",
    );
  });
});
