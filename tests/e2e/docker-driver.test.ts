/**
 * Driver contract suite: the same cases run against every driver in DRIVERS
 * (kysely-style). Each driver brings a probe that reads engine-side facts the
 * Driver interface does not expose (bindings, limits) and removes what a test made.
 * Runs against a real engine; no case is skipped when it is missing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import Docker from "dockerode";
import { BayError } from "../../src/bay/errors.ts";
import type { ContainerSpec, Driver, ResourceLabels } from "../../src/bay/drivers/driver.ts";
import { connectionOptions, resolveConnectMode } from "../../src/bay/drivers/docker/connect-mode.ts";
import { DockerDriver } from "../../src/bay/drivers/docker/docker-driver.ts";
import { pollUntil } from "../support/harness.ts";
import { ECHO_IMAGE, ECHO_PORT, ensureEchoImage, removeLabelled, requireDocker, waitForHttp } from "./support/docker-fixtures.ts";

type TestDriver = Driver;

interface Limits {
  nanoCpus: number;
  memoryBytes: number;
  memorySwapBytes: number;
  pidsLimit: number;
  capDrop: string[];
  capAdd: string[];
  securityOpt: string[];
  readOnlyRootfs: boolean;
  tmpfs: Record<string, string>;
}

interface DriverHarness {
  name: string;
  /** Ensures the engine and test image exist. */
  setup(): Promise<void>;
  make(opts?: { connectMode?: "host_port" | "container_network"; network?: string }): TestDriver;
  /** A driver pointed at an engine that is not there. */
  makeUnreachable(): Driver;
  /** Creates a network for container_network mode; removed by cleanup. */
  createNetwork(name: string): Promise<void>;
  hostBindings(id: string, port: number): Promise<Array<{ hostIp: string; hostPort: string }>>;
  limits(id: string): Promise<Limits>;
  /** Removes everything this run created, whatever state the test left. */
  cleanup(): Promise<void>;
}

/** Labels every object a test creates; an instance id per run keeps parallel runs apart. */
const TEST_LABEL = { "bay.test": "driver" };
const RUN = crypto.randomUUID().slice(0, 8);
const INSTANCE_ID = `test-${RUN}`;

const docker = new Docker({ socketPath: "/var/run/docker.sock" });

const DRIVERS: DriverHarness[] = [
  {
    name: "docker",
    setup: async () => {
      await requireDocker(docker);
      await ensureEchoImage(docker);
    },
    make: (opts = {}) =>
      new DockerDriver({
        socketPath: "/var/run/docker.sock",
        connectMode: opts.connectMode ?? "host_port",
        network: opts.network,
        defaultPidsLimit: 96,
        extraLabels: { test: "driver" },
        volumeFiles: { helperImage: ECHO_IMAGE },
      }),
    makeUnreachable: () => new DockerDriver({ socketPath: "/nonexistent/docker.sock", connectMode: "host_port", defaultPidsLimit: 64 }),
    createNetwork: async (name) => {
      await docker.createNetwork({ Name: name, Labels: { ...TEST_LABEL, "bay.instance_id": INSTANCE_ID } });
    },
    hostBindings: async (id, port) => {
      const info = await docker.getContainer(id).inspect();
      return (info.NetworkSettings.Ports[`${port}/tcp`] ?? []).map((b) => ({ hostIp: b.HostIp, hostPort: b.HostPort }));
    },
    limits: async (id) => {
      const h = (await docker.getContainer(id).inspect()).HostConfig;
      return {
        nanoCpus: h.NanoCpus ?? 0,
        memoryBytes: h.Memory ?? 0,
        memorySwapBytes: h.MemorySwap ?? 0,
        pidsLimit: h.PidsLimit ?? 0,
        capDrop: h.CapDrop ?? [],
        capAdd: h.CapAdd ?? [],
        securityOpt: h.SecurityOpt ?? [],
        readOnlyRootfs: h.ReadonlyRootfs ?? false,
        tmpfs: (h as { Tmpfs?: Record<string, string> }).Tmpfs ?? {},
      };
    },
    cleanup: () => removeLabelled(docker, { ...TEST_LABEL, "bay.instance_id": INSTANCE_ID }),
  },
];

let seq = 0;
/** A unique name for this run, so tests never collide with each other or old leftovers. */
const unique = (kind: string) => `bay-test-${RUN}-${kind}-${++seq}`;

const labelsFor = (sandboxId: string, extra: Partial<ResourceLabels> = {}): ResourceLabels => ({
  owner: "tester",
  sandbox_id: sandboxId,
  session_id: `sess-${sandboxId}`,
  workspace_id: `ws-${sandboxId}`,
  profile_id: "python-default",
  instance_id: INSTANCE_ID,
  ...extra,
});

function specFor(volumeName: string, overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  const sandboxId = unique("sbx");
  return {
    name: unique("ctr"),
    image: ECHO_IMAGE,
    runtimePort: ECHO_PORT,
    env: { ECHO_TAG: sandboxId },
    labels: labelsFor(sandboxId),
    cpus: 0.5,
    memoryMb: 256,
    pidsLimit: 128,
    volumeName,
    ...overrides,
  };
}

/** Resolves to the BayError a promise rejects with; fails the test when it resolves or throws something else. */
async function bayErrorOf(p: Promise<unknown>): Promise<BayError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(BayError);
    return err as BayError;
  }
  throw new Error("expected a BayError, but the call succeeded");
}

for (const h of DRIVERS) {
  describe(`driver contract: ${h.name}`, () => {
    let driver: TestDriver;

    /** A fresh labelled volume for one test. */
    const volume = async (sandboxId = unique("sbx")) => {
      const name = unique("vol");
      await driver.createVolume(name, labelsFor(sandboxId, { workspace_kind: "managed" }));
      return name;
    };

    beforeAll(async () => {
      await h.setup();
      driver = h.make();
    });
    afterEach(() => h.cleanup());
    afterAll(async () => {
      await h.cleanup();
      await driver?.close();
    });

    test("ping answers and the test image is present", async () => {
      await driver.ping();
      expect(await driver.imageExists(ECHO_IMAGE)).toBe(true);
      expect(await driver.imageExists("bay-test-no-such-image:never")).toBe(false);
    });

    test("create + start serves the runtime on a 127.0.0.1-only port", async () => {
      const id = await driver.createContainer(specFor(await volume()));
      expect((await driver.containerStatus(id)).state).toBe("created");

      const { baseUrl } = await driver.startContainer(id, ECHO_PORT);
      expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const health = (await (await waitForHttp(`${baseUrl}/health`)).json()) as { ok: boolean; uid: number };
      expect(health).toMatchObject({ ok: true, uid: 1000 });

      const bindings = await h.hostBindings(id, ECHO_PORT);
      expect(bindings.length).toBeGreaterThan(0);
      for (const b of bindings) expect(b.hostIp).toBe("127.0.0.1");
      expect(baseUrl).toBe(`http://127.0.0.1:${bindings[0]!.hostPort}`);

      // Starting a running container again is fine and gives the same endpoint.
      expect((await driver.startContainer(id, ECHO_PORT)).baseUrl).toBe(baseUrl);
      expect(await driver.containerLogs(id)).toContain(`echo listening on ${ECHO_PORT}`);
    });

    test("labels are set and listContainers by label finds exactly that container", async () => {
      const vol = await volume();
      const spec = specFor(vol);
      const other = specFor(vol);
      const id = await driver.createContainer(spec);
      await driver.createContainer(other);

      const status = await driver.containerStatus(id);
      expect(status).toMatchObject({ id, name: spec.name, state: "created" });
      expect(status.labels).toMatchObject({ ...spec.labels, "managed-by": "bay" });

      const found = await driver.listContainers({ sandbox_id: spec.labels.sandbox_id, instance_id: INSTANCE_ID });
      expect(found.map((c) => c.id)).toEqual([id]);
      expect(found[0]).toMatchObject({ name: spec.name, state: "created", labels: { owner: "tester" } });
      expect(await driver.listContainers({ instance_id: INSTANCE_ID })).toHaveLength(2);
      expect(await driver.listContainers({ sandbox_id: "no-such-sandbox", instance_id: INSTANCE_ID })).toEqual([]);
    });

    test("resource limits and hardening are applied", async () => {
      const id = await driver.createContainer(specFor(await volume(), { cpus: 0.5, memoryMb: 256, pidsLimit: 128 }));
      const l = await h.limits(id);
      expect(l.nanoCpus).toBe(500_000_000);
      expect(l.memoryBytes).toBe(256 * 1024 * 1024);
      expect(l.memorySwapBytes).toBe(l.memoryBytes);
      expect(l.pidsLimit).toBe(128);
      expect(l.capDrop).toEqual(["ALL"]);
      expect(l.capAdd).toEqual([]);
      expect(l.securityOpt.some((o) => o.startsWith("no-new-privileges"))).toBe(true);
      expect(l.readOnlyRootfs).toBe(false);

      const fallback = await driver.createContainer(specFor(await volume(), { pidsLimit: 0 }));
      expect((await h.limits(fallback)).pidsLimit).toBe(96);
    });

    test("read-only rootfs gets a writable /tmp tmpfs and still runs", async () => {
      const id = await driver.createContainer(specFor(await volume(), { readOnlyRootfs: true, tmpfsMb: 16 }));
      const l = await h.limits(id);
      expect(l.readOnlyRootfs).toBe(true);
      expect(l.tmpfs["/tmp"]).toContain("size=16m");
      expect(l.tmpfs["/tmp"]).toContain("mode=1777");
      const { baseUrl } = await driver.startContainer(id, ECHO_PORT);
      await waitForHttp(`${baseUrl}/health`);
    });

    test("the volume is mounted at /workspace and shared with a second container", async () => {
      const vol = await volume();
      const id = await driver.createContainer(specFor(vol));
      const { baseUrl } = await driver.startContainer(id, ECHO_PORT);
      await waitForHttp(`${baseUrl}/health`);
      const write = await fetch(`${baseUrl}/write?name=hello.txt`, { method: "POST", body: "from the runtime" });
      expect(write.status).toBe(200);

      // Read back without the runtime: the data plane's helper mounts the same volume.
      const ref = { name: vol, labels: labelsFor(unique("sbx"), { workspace_kind: "managed" }) };
      const { stat, body } = await driver.volumeFiles.read(ref, "hello.txt");
      expect(stat).toMatchObject({ name: "hello.txt", kind: "file", size: "from the runtime".length });
      expect(await new Response(body).text()).toBe("from the runtime");
    });

    test("volume files round trip on a volume no container runs on; helpers are labelled and gone after each call", async () => {
      const vol = await volume();
      const ref = { name: vol, labels: labelsFor(unique("sbx"), { workspace_kind: "managed" }) };
      const helpers = () =>
        docker.listContainers({ all: true, filters: { label: ["bay.role=workspace-helper", `bay.instance_id=${INSTANCE_ID}`] } });
      await driver.volumeFiles.write(ref, "a.txt", { size: 5, bytes: new TextEncoder().encode("alpha") });
      await driver.volumeFiles.write(ref, "dir/b.txt", { size: 4, bytes: new TextEncoder().encode("beta") });
      expect((await driver.volumeFiles.stat(ref, "dir"))?.kind).toBe("directory");
      expect(await new Response((await driver.volumeFiles.read(ref, "dir/b.txt")).body).text()).toBe("beta");
      expect(await new Response((await driver.volumeFiles.read(ref, "a.txt")).body).text()).toBe("alpha");
      expect((await driver.volumeFiles.list(ref, ".", { maxEntries: 10, timeoutMs: 60_000 })).entries.map((e) => e.name)).toEqual([
        "a.txt",
        "dir",
      ]);
      expect((await driver.volumeFiles.stat(ref, "a.txt"))?.size).toBe(5);
      expect(await helpers()).toEqual([]);
      expect(await driver.listContainers({ instance_id: INSTANCE_ID })).toEqual([]);

      // While a read is open its helper exists: labelled as a helper of this workspace, created and never started.
      const big = new Uint8Array(4 * 1024 * 1024);
      await driver.volumeFiles.write(ref, "big.bin", { size: big.byteLength, bytes: big });
      const open = await driver.volumeFiles.read(ref, "big.bin");
      // (Listed, not inspected: the engine locks a container while an archive of it streams.)
      const [helper] = await helpers();
      await open.body.cancel();
      expect(helper?.State).toBe("created");
      expect(helper?.Labels).toMatchObject({
        "bay.role": "workspace-helper",
        "bay.owner": ref.labels.owner,
        "bay.workspace_id": ref.labels.workspace_id,
        "bay.instance_id": INSTANCE_ID,
      });
      await pollUntil(helpers, (h) => h.length === 0, 15_000, "helper removed after the read");

      expect((await bayErrorOf(driver.volumeFiles.read(ref, "nope.txt"))).code).toBe("file_not_found");
    });

    test("stop leaves the container exited; stopping again or a missing one is no error", async () => {
      const id = await driver.createContainer(specFor(await volume()));
      await driver.startContainer(id, ECHO_PORT);
      await driver.stopContainer(id, 1);
      expect((await driver.containerStatus(id)).state).toBe("exited");
      await driver.stopContainer(id, 1);
      await driver.stopContainer("bay-test-missing-container", 1);
    });

    test("destroy makes the container missing; destroying again is no error", async () => {
      const id = await driver.createContainer(specFor(await volume()));
      await driver.startContainer(id, ECHO_PORT);
      await driver.destroyContainer(id);
      expect(await driver.containerStatus(id)).toMatchObject({ id, state: "missing" });
      await driver.destroyContainer(id);
    });

    test("engine errors become BayErrors", async () => {
      const vol = await volume();
      const missingImage = await bayErrorOf(driver.createContainer(specFor(vol, { image: "bay-test-no-such-image:never" })));
      expect(missingImage).toMatchObject({ code: "internal_error", details: { image: "bay-test-no-such-image:never" } });
      expect(missingImage.message).toBe("image not found: bay-test-no-such-image:never");

      const spec = specFor(vol);
      await driver.createContainer(spec);
      expect((await bayErrorOf(driver.createContainer({ ...spec, labels: labelsFor(unique("sbx")) }))).code).toBe("conflict");
      expect((await bayErrorOf(driver.startContainer("bay-test-missing-container", ECHO_PORT))).code).toBe("not_found");
      expect((await bayErrorOf(driver.containerLogs("bay-test-missing-container"))).code).toBe("not_found");
    });

    test("volumes: idempotent create, list by label, remove, remove missing, in-use conflict", async () => {
      const sandboxId = unique("sbx");
      const name = unique("vol");
      const labels = labelsFor(sandboxId, { workspace_kind: "managed" });
      await driver.createVolume(name, labels);
      await driver.createVolume(name, labels);

      const listed = await driver.listVolumes({ workspace_id: labels.workspace_id, instance_id: INSTANCE_ID });
      expect(listed).toEqual([{ name, labels: { ...labels, "managed-by": "bay", test: "driver" } }]);

      const user = await driver.createContainer(specFor(name));
      const inUse = await bayErrorOf(driver.removeVolume(name));
      expect(inUse).toMatchObject({ code: "conflict", details: {}, internal: { volume: name } }); // the volume name is for the log only

      await driver.destroyContainer(user);
      await driver.removeVolume(name);
      expect(await driver.listVolumes({ workspace_id: labels.workspace_id, instance_id: INSTANCE_ID })).toEqual([]);
      await driver.removeVolume(name);
    });

    test("container_network mode answers on the container's address on that network", async () => {
      const network = unique("net");
      await h.createNetwork(network);
      const netDriver = h.make({ connectMode: "container_network", network });
      const id = await netDriver.createContainer(specFor(await volume()));
      const { baseUrl } = await netDriver.startContainer(id, ECHO_PORT);
      expect(baseUrl).toMatch(new RegExp(`^http://\\d+\\.\\d+\\.\\d+\\.\\d+:${ECHO_PORT}$`));
      expect(baseUrl).not.toContain("127.0.0.1");
      expect(await h.hostBindings(id, ECHO_PORT)).toEqual([]);
      // Only the bridge address on this host: no traffic leaves the machine.
      await waitForHttp(`${baseUrl}/health`);
    });

    test("an unreachable engine is driver_unavailable, never 'missing'", async () => {
      const down = h.makeUnreachable();
      // Each call is made only when awaited: no rejection is left unobserved meanwhile.
      for (const call of [
        () => down.ping(),
        () => down.containerStatus("anything"),
        () => down.listContainers({ instance_id: INSTANCE_ID }),
        () => down.stopContainer("anything"),
        () => down.removeVolume("anything"),
      ]) {
        const err = await bayErrorOf(call());
        expect(err.code).toBe("driver_unavailable");
        expect(err.message).toBe("the container engine is unreachable");
        expect(err.details).toEqual({}); // the socket error is for the log only
        expect(typeof err.internal.engine_code).toBe("string");
        expect(err.retryAfter).toBe(5);
      }
      await down.close();
    });
  });
}

describe("docker connection settings", () => {
  test.each([
    ["auto", undefined, true, "host_port"],
    ["auto", "bay-net", false, "host_port"],
    ["auto", "bay-net", true, "container_network"],
    ["host_port", "bay-net", true, "host_port"],
    ["container_network", "bay-net", false, "container_network"],
  ] as const)("mode %s, network %s, in container %s -> %s", (mode, network, inside, expected) => {
    expect(resolveConnectMode(mode, network, () => inside)).toBe(expected);
  });

  test("container_network without a network is a configuration error", () => {
    expect(() => resolveConnectMode("container_network", undefined)).toThrow(BayError);
  });

  test.each([
    [undefined, undefined, { socketPath: "/var/run/docker.sock" }],
    [undefined, "/run/alt.sock", { socketPath: "/run/alt.sock" }],
    ["unix:///run/docker.sock", "/ignored.sock", { socketPath: "/run/docker.sock" }],
    ["tcp://10.0.0.5:2375", undefined, { host: "10.0.0.5", port: 2375, protocol: "http" }],
  ] as const)("host %s, socket %s", (host, socketPath, expected) => {
    expect(connectionOptions(host, socketPath)).toMatchObject(expected);
  });

  test("an unsupported docker host is a configuration error", () => {
    expect(() => connectionOptions("ssh://user@box", undefined)).toThrow(BayError);
  });
});
