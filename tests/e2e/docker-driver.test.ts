/**
 * What is Docker's own in the Docker driver: where the runtime port is published,
 * the limits and hardening a container gets, read-only root filesystems, the data
 * plane's helper containers, container_network mode and the connection settings.
 * What every driver promises (states, labels, volumes, errors, credentials) is the
 * one contract suite in tests/contract/driver.test.ts, run on Docker and in memory.
 * Runs against a real engine; nothing is skipped when it is missing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import Docker from "dockerode";
import { BayError } from "../../src/bay/errors.ts";
import type { ContainerSpec, ResourceLabels } from "../../src/bay/drivers/driver.ts";
import { connectionOptions, resolveConnectMode } from "../../src/bay/drivers/docker/connect-mode.ts";
import { DockerDriver } from "../../src/bay/drivers/docker/docker-driver.ts";
import { pollUntil } from "../support/harness.ts";
import { ECHO_IMAGE, ECHO_PORT, ensureEchoImage, removeLabelled, requireDocker, waitForHttp } from "./support/docker-fixtures.ts";

/** Labels every object a test creates; an instance id per run keeps parallel runs apart. */
const TEST_LABEL = { "bay.test": "driver" };
const RUN = crypto.randomUUID().slice(0, 8);
const INSTANCE_ID = `test-${RUN}`;

const docker = new Docker({ socketPath: "/var/run/docker.sock" });

const make = (opts: { connectMode?: "host_port" | "container_network"; network?: string } = {}) =>
  new DockerDriver({
    socketPath: "/var/run/docker.sock",
    connectMode: opts.connectMode ?? "host_port",
    network: opts.network,
    defaultPidsLimit: 96,
    extraLabels: { test: "driver" },
    volumeFiles: { helperImage: ECHO_IMAGE },
  });

/** Removes everything this run created, whatever state the test left. */
const cleanup = () => removeLabelled(docker, { ...TEST_LABEL, "bay.instance_id": INSTANCE_ID });

const hostBindings = async (id: string, port: number) => {
  const info = await docker.getContainer(id).inspect();
  return (info.NetworkSettings.Ports[`${port}/tcp`] ?? []).map((b) => ({ hostIp: b.HostIp, hostPort: b.HostPort }));
};

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

/** The limits and hardening Docker applied to a container. */
const limits = async (id: string): Promise<Limits> => {
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
};

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

describe("docker driver: what is Docker's own", () => {
  let driver: DockerDriver;

  /** A fresh labelled volume for one test. */
  const volume = async (sandboxId = unique("sbx")) => {
    const name = unique("vol");
    await driver.createVolume(name, labelsFor(sandboxId, { workspace_kind: "managed" }));
    return name;
  };

  beforeAll(async () => {
    await requireDocker(docker);
    await ensureEchoImage(docker);
    driver = make();
  });
  afterEach(() => cleanup());
  afterAll(async () => {
    await cleanup();
    await driver?.close();
  });

  test("the runtime port is published on 127.0.0.1 only; the runtime runs as uid 1000 and its output reaches the logs", async () => {
    const id = await driver.createContainer(specFor(await volume()));
    const { baseUrl } = await driver.startContainer(id, ECHO_PORT);
    const health = (await (await waitForHttp(`${baseUrl}/health`)).json()) as { ok: boolean; uid: number };
    expect(health).toMatchObject({ ok: true, uid: 1000 });

    const bindings = await hostBindings(id, ECHO_PORT);
    expect(bindings.length).toBeGreaterThan(0);
    for (const b of bindings) expect(b.hostIp).toBe("127.0.0.1");
    expect(baseUrl).toBe(`http://127.0.0.1:${bindings[0]!.hostPort}`);
    expect(await driver.containerLogs(id)).toContain(`echo listening on ${ECHO_PORT}`);
  });

  test("resource limits and hardening are applied", async () => {
    const id = await driver.createContainer(specFor(await volume(), { cpus: 0.5, memoryMb: 256, pidsLimit: 128 }));
    const l = await limits(id);
    expect(l.nanoCpus).toBe(500_000_000);
    expect(l.memoryBytes).toBe(256 * 1024 * 1024);
    expect(l.memorySwapBytes).toBe(l.memoryBytes);
    expect(l.pidsLimit).toBe(128);
    expect(l.capDrop).toEqual(["ALL"]);
    expect(l.capAdd).toEqual([]);
    expect(l.securityOpt.some((o) => o.startsWith("no-new-privileges"))).toBe(true);
    expect(l.readOnlyRootfs).toBe(false);

    const fallback = await driver.createContainer(specFor(await volume(), { pidsLimit: 0 }));
    expect((await limits(fallback)).pidsLimit).toBe(96);
  });

  test("read-only rootfs gets a writable /tmp tmpfs and still runs", async () => {
    const id = await driver.createContainer(specFor(await volume(), { readOnlyRootfs: true, tmpfsMb: 16 }));
    const l = await limits(id);
    expect(l.readOnlyRootfs).toBe(true);
    expect(l.tmpfs["/tmp"]).toContain("size=16m");
    expect(l.tmpfs["/tmp"]).toContain("mode=1777");
    const { baseUrl } = await driver.startContainer(id, ECHO_PORT);
    await waitForHttp(`${baseUrl}/health`);
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

  test("container_network mode answers on the container's address on that network", async () => {
    const network = unique("net");
    await docker.createNetwork({ Name: network, Labels: { ...TEST_LABEL, "bay.instance_id": INSTANCE_ID } });
    const netDriver = make({ connectMode: "container_network", network });
    const id = await netDriver.createContainer(specFor(await volume()));
    const { baseUrl } = await netDriver.startContainer(id, ECHO_PORT);
    expect(baseUrl).toMatch(new RegExp(`^http://\\d+\\.\\d+\\.\\d+\\.\\d+:${ECHO_PORT}$`));
    expect(baseUrl).not.toContain("127.0.0.1");
    expect(await hostBindings(id, ECHO_PORT)).toEqual([]);
    // Only the bridge address on this host: no traffic leaves the machine.
    await waitForHttp(`${baseUrl}/health`);
  });
});

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
