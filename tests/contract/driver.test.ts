/**
 * Driver contract: the same cases run against every driver in HARNESSES
 * (kysely-style), so the in-memory driver the fast lifecycle tests use answers
 * as Docker does. Each container runs a Ship that takes its session credentials
 * on stdin: the real Ship image on Docker, the in-process fake on the memory
 * driver. Each harness brings what the Driver interface cannot do itself: kill a
 * container from outside and remove what a test made. Docker runs on the real
 * engine; no case is skipped when it is missing. Docker's own hardening checks
 * (bindings, limits, networks, helpers) are in tests/e2e/docker-driver.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import Docker from "dockerode";
import { DockerDriver } from "../../src/bay/drivers/docker/docker-driver.ts";
import type { ContainerSpec, Driver, ResourceLabels } from "../../src/bay/drivers/driver.ts";
import { MemoryDriver } from "../../src/bay/drivers/memory/memory-driver.ts";
import { BayError } from "../../src/bay/errors.ts";
import { CREDENTIALS_ENV, zMeta } from "../../src/protocol/ship/index.ts";
import { removeLabelled, waitForHttp } from "../e2e/support/docker-fixtures.ts";
import { requireShipImages } from "../e2e/support/e2e.ts";
import { pollUntil } from "../support/harness.ts";
import { SHIP_IMAGE } from "../support/images.ts";

interface DriverHarness {
  name: string;
  /** Ensures the engine and the runtime image exist. */
  setup(): Promise<void>;
  /** The driver under test; its objects carry the extra label test=driver. */
  make(): Driver;
  /** A driver whose engine is not there. */
  makeUnreachable(): Driver;
  /** Kills a running container from outside Bay (SIGKILL). */
  kill(id: string): Promise<void>;
  /** Removes everything this run created, whatever state the test left. */
  cleanup(): Promise<void>;
  /** Releases the engine after the suite. */
  close(): Promise<void>;
}

/** Labels every object a test creates; an instance id per run keeps parallel runs apart. */
const RUN = crypto.randomUUID().slice(0, 8);
const INSTANCE_ID = `test-${RUN}`;
const IMAGE = SHIP_IMAGE;
/** Ship's port inside its container. */
const PORT = 8123;

const docker = new Docker({ socketPath: "/var/run/docker.sock" });

const dockerHarness = (): DriverHarness => ({
  name: "docker",
  setup: () => requireShipImages([IMAGE]),
  make: () =>
    new DockerDriver({
      socketPath: "/var/run/docker.sock",
      connectMode: "host_port",
      defaultPidsLimit: 96,
      extraLabels: { test: "driver" },
      volumeFiles: { helperImage: IMAGE },
    }),
  makeUnreachable: () => new DockerDriver({ socketPath: "/nonexistent/docker.sock", connectMode: "host_port", defaultPidsLimit: 64 }),
  kill: async (id) => {
    await docker.getContainer(id).kill();
  },
  cleanup: () => removeLabelled(docker, { "bay.test": "driver", "bay.instance_id": INSTANCE_ID }),
  close: async () => {},
});

const memoryHarness = (): DriverHarness => {
  const engine = new MemoryDriver({ images: [IMAGE], extraLabels: { test: "driver" } });
  return {
    name: "memory",
    setup: async () => {},
    make: () => engine,
    makeUnreachable: () => {
      const down = new MemoryDriver({ images: [IMAGE] });
      down.makeUnreachable();
      return down;
    },
    kill: async (id) => engine.crash(id),
    cleanup: async () => {
      for (const c of await engine.listContainers({ instance_id: INSTANCE_ID })) await engine.destroyContainer(c.id);
      for (const v of await engine.listVolumes({ instance_id: INSTANCE_ID })) await engine.removeVolume(v.name);
    },
    close: async () => engine.shutdown(),
  };
};

const HARNESSES: DriverHarness[] = [dockerHarness(), memoryHarness()];

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

/** A Ship container as the session manager asks for one: credentials on stdin. */
function specFor(volumeName: string, overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  const sandboxId = unique("sbx");
  return {
    name: unique("ctr"),
    image: IMAGE,
    runtimePort: PORT,
    env: { [CREDENTIALS_ENV]: "stdin" },
    credentialsOnStdin: true,
    labels: labelsFor(sandboxId),
    cpus: 0.5,
    memoryMb: 256,
    pidsLimit: 128,
    volumeName,
    ...overrides,
  };
}

/** The session credentials for a spec's container, and the line that carries them. */
function credentialsFor(spec: ContainerSpec) {
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  const sessionId = spec.labels.session_id!;
  return { sessionId, secret, line: JSON.stringify({ session_id: sessionId, secret }) };
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

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

for (const h of HARNESSES) {
  describe(`driver contract: ${h.name}`, () => {
    let driver: Driver;

    /** A fresh labelled volume for one test. */
    const volume = async (sandboxId = unique("sbx")) => {
      const name = unique("vol");
      await driver.createVolume(name, labelsFor(sandboxId, { workspace_kind: "managed" }));
      return name;
    };
    /** Creates and starts a Ship container on `vol`, waits until it answers; its endpoint and secret. */
    const startShip = async (vol: string) => {
      const spec = specFor(vol);
      const id = await driver.createContainer(spec);
      const creds = credentialsFor(spec);
      const { baseUrl } = await driver.startContainer(id, PORT, creds.line);
      await waitForHttp(`${baseUrl}/health`, 60_000);
      return { id, spec, baseUrl, ...creds };
    };

    beforeAll(async () => {
      await h.setup();
      driver = h.make();
    });
    afterEach(() => h.cleanup());
    afterAll(async () => {
      await h.cleanup();
      await driver?.close();
      await h.close();
    });

    test("ping answers and the runtime image is present", async () => {
      await driver.ping();
      expect(await driver.imageExists(IMAGE)).toBe(true);
      expect(await driver.imageExists("bay-test-no-such-image:never")).toBe(false);
      // What a name points at now: stable while it does, none for an absent image (warm-pool fingerprints).
      const id = await driver.imageId(IMAGE);
      expect(id).toBeTruthy();
      expect(await driver.imageId(IMAGE)).toBe(id);
      expect(await driver.imageId("bay-test-no-such-image:never")).toBeNull();
    });

    test("the engine names its runtimes (runc among them); a profile's runtime the engine lacks is refused at create, naming it", async () => {
      expect(await driver.runtimes?.()).toContain("runc");
      const spec = specFor(await volume(), { runtime: "bay-test-no-such-runtime" });
      const err = await bayErrorOf(driver.createContainer(spec));
      expect({ code: err.code, details: err.details }).toEqual({
        code: "internal_error",
        details: { runtime: "bay-test-no-such-runtime" },
      });
      // Refused, not half made.
      expect(await driver.listContainers({ sandbox_id: spec.labels.sandbox_id })).toEqual([]);
    });

    test("create + start serves the runtime on a 127.0.0.1 endpoint; starting again gives the same one; its output is in the logs", async () => {
      const spec = specFor(await volume());
      const id = await driver.createContainer(spec);
      expect((await driver.containerStatus(id)).state).toBe("created");

      const { baseUrl } = await driver.startContainer(id, PORT, credentialsFor(spec).line);
      expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const health = (await (await waitForHttp(`${baseUrl}/health`, 60_000)).json()) as { status: string };
      expect(health.status).toBe("healthy");
      expect((await driver.containerStatus(id)).state).toBe("running");

      // Starting a running container again is fine and gives the same endpoint.
      expect((await driver.startContainer(id, PORT)).baseUrl).toBe(baseUrl);
      await pollUntil(
        () => driver.containerLogs(id),
        (l) => l.includes(`listening on :`),
        15_000,
        "the runtime's start line in its logs",
      );
    });

    test("the credentials line reaches the runtime: /meta names the session for its secret, anything else is 401; the secret is nowhere else", async () => {
      const { id, baseUrl, sessionId, secret } = await startShip(await volume());
      const meta = await fetch(`${baseUrl}/meta`, { headers: bearer(secret) });
      expect(meta.status).toBe(200);
      const body = await meta.json();
      expect(zMeta.safeParse(body).success).toBe(true);
      expect(body.session.id).toBe(sessionId);

      for (const headers of [{}, bearer("x".repeat(43)), bearer(`${secret}x`), { authorization: secret }]) {
        const refused = await fetch(`${baseUrl}/meta`, { headers });
        expect(refused.status).toBe(401);
        expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
      }
      expect(JSON.stringify(await driver.containerStatus(id))).not.toContain(secret);
      expect(JSON.stringify(await driver.listContainers({ instance_id: INSTANCE_ID }))).not.toContain(secret);
      expect(await driver.containerLogs(id)).not.toContain(secret);
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
      expect(Math.abs(found[0]!.createdAt! - Date.now())).toBeLessThan(5 * 60_000);
      expect(await driver.listContainers({ instance_id: INSTANCE_ID })).toHaveLength(2);
      expect(await driver.listContainers({ sandbox_id: "no-such-sandbox", instance_id: INSTANCE_ID })).toEqual([]);
    });

    test("the volume is the runtime's /workspace: what it writes the data plane reads, and a later container on the volume too", async () => {
      const vol = await volume();
      const first = await startShip(vol);
      const write = await fetch(`${first.baseUrl}/filesystem/files`, {
        method: "PUT",
        headers: { ...bearer(first.secret), "content-type": "application/json" },
        body: JSON.stringify({ path: "hello.txt", content: "from the runtime" }),
      });
      expect(write.status).toBe(200);

      // Read back without the runtime: the data plane reaches the same volume.
      const ref = { name: vol, labels: labelsFor(unique("sbx"), { workspace_kind: "managed" }) };
      const { stat, body } = await driver.volumeFiles.read(ref, "hello.txt");
      expect(stat).toMatchObject({ name: "hello.txt", kind: "file", size: "from the runtime".length });
      expect(await new Response(body).text()).toBe("from the runtime");

      // The file outlives its container: a new one on the volume reads it.
      await driver.destroyContainer(first.id);
      const second = await startShip(vol);
      const read = await fetch(`${second.baseUrl}/filesystem/files?path=hello.txt`, { headers: bearer(second.secret) });
      expect(read.status).toBe(200);
      expect(((await read.json()) as { content: string }).content).toBe("from the runtime");
    });

    test("a container killed from outside is exited (137), its endpoint refuses connections, its volume keeps the data", async () => {
      const vol = await volume();
      const { id, baseUrl, secret } = await startShip(vol);
      const put = await fetch(`${baseUrl}/filesystem/files`, {
        method: "PUT",
        headers: { ...bearer(secret), "content-type": "application/json" },
        body: JSON.stringify({ path: "kept.txt", content: "kept" }),
      });
      expect(put.status).toBe(200);

      await h.kill(id);
      const dead = await pollUntil(
        () => driver.containerStatus(id),
        (s) => s.state !== "running",
        15_000,
        "container stopped",
      );
      expect(dead).toMatchObject({ state: "exited", exitCode: 137, oomKilled: false });
      const reached = () =>
        fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2_000) }).then(
          (r) => `answered ${r.status}`,
          () => "refused",
        );
      expect(await pollUntil(reached, (r) => r === "refused", 15_000, "endpoint refuses")).toBe("refused");

      const ref = { name: vol, labels: labelsFor(unique("sbx"), { workspace_kind: "managed" }) };
      expect(await new Response((await driver.volumeFiles.read(ref, "kept.txt")).body).text()).toBe("kept");
    });

    test("stop leaves the container exited; stopping again or a missing one is no error", async () => {
      const { id } = await startShip(await volume());
      await driver.stopContainer(id, 1);
      expect((await driver.containerStatus(id)).state).toBe("exited");
      await driver.stopContainer(id, 1);
      await driver.stopContainer("bay-test-missing-container", 1);
    });

    test("destroy makes the container missing; destroying again is no error", async () => {
      const { id } = await startShip(await volume());
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
      expect((await bayErrorOf(driver.startContainer("bay-test-missing-container", PORT))).code).toBe("not_found");
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
