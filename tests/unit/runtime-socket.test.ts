/**
 * connect_mode unix_socket, the parts that need no engine: what a container is
 * created with (the socket mount and SHIP_SOCKET, no published port; a
 * loopback port instead for a runtime that cannot serve a socket to the host),
 * the endpoint's URLs, the directory's seal (a link or a file in place of the
 * socket is refused), the sweep, and Ship failing closed when never sealed.
 */
import { describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema } from "../../src/bay/config.ts";
import { containerCreateOptions } from "../../src/bay/drivers/docker/container-config.ts";
import { LabelCodec } from "../../src/bay/drivers/docker/labels.ts";
import { RuntimeSockets, runtimeServesSocket, SOCKET_MOUNT, SWEEP_GRACE_MS } from "../../src/bay/drivers/docker/runtime-socket.ts";
import { shipRequestTarget, shipWebSocketUrl } from "../../src/bay/runtime/endpoint.ts";
import { listenOnSocket } from "../../src/ship/socket-listener.ts";

const spec = {
  name: "bay-sandbox-x",
  image: "img",
  runtimePort: 8123,
  env: { A: "1" },
  labels: { owner: "o", sandbox_id: "s", workspace_id: "w", instance_id: "i" },
  cpus: 1,
  memoryMb: 256,
  pidsLimit: 64,
  volumeName: "v",
};
const ctx = { network: undefined, defaultPidsLimit: 64, labels: new LabelCodec("bay.") };

describe("container options in unix_socket mode", () => {
  test("a socket directory: mounted at SOCKET_MOUNT, SHIP_SOCKET set, no port published", () => {
    const o = containerCreateOptions(spec, { ...ctx, mode: "unix_socket", socketDir: "/run/bay/ships/bay-sandbox-x" });
    expect(o.HostConfig?.Mounts).toContainEqual({ Type: "bind", Source: "/run/bay/ships/bay-sandbox-x", Target: SOCKET_MOUNT });
    expect(o.Env).toContain(`SHIP_SOCKET=${SOCKET_MOUNT}/ship.sock`);
    expect(o.Env).toContain("A=1");
    expect(o.HostConfig?.PortBindings).toBeUndefined();
  });

  test("no socket directory (a runtime that cannot serve one): the loopback port as in host_port mode", () => {
    const o = containerCreateOptions(spec, { ...ctx, mode: "unix_socket" });
    expect(o.HostConfig?.PortBindings).toEqual({ "8123/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] });
    expect(o.Env?.some((e) => e.startsWith("SHIP_SOCKET="))).toBe(false);
    expect(o.HostConfig?.Mounts).toHaveLength(1);
  });

  test("runc serves sockets to the host; gVisor does not", () => {
    expect(runtimeServesSocket(undefined)).toBe(true);
    expect(runtimeServesSocket("runc")).toBe(true);
    expect(runtimeServesSocket("runsc")).toBe(false);
  });
});

describe("endpoints", () => {
  test("a unix endpoint: fetch through the socket, WebSocket as ws+unix", () => {
    expect(shipRequestTarget("unix:/run/s/ship.sock", "/meta?x=1")).toEqual({ url: "http://ship/meta?x=1", unix: "/run/s/ship.sock" });
    expect(shipWebSocketUrl("unix:/run/s/ship.sock", "/terminals/t/attach")).toBe("ws+unix:///run/s/ship.sock:/terminals/t/attach");
  });

  test("an http endpoint is unchanged", () => {
    expect(shipRequestTarget("http://127.0.0.1:3000", "/meta")).toEqual({ url: "http://127.0.0.1:3000/meta" });
    expect(shipWebSocketUrl("http://127.0.0.1:3000", "/t")).toBe("ws://127.0.0.1:3000/t");
  });
});

/**
 * A socket bound as a Ship in a container would: owned by another user than Bay's
 * (uid 1000; these tests run as root), put in place in one step.
 */
function containerSocket(dir: string): ReturnType<typeof Bun.serve> {
  const elsewhere = join(mkdtempSync(join(tmpdir(), "bay-rs-sock-")), "ship.sock");
  const server = Bun.serve({ unix: elsewhere, fetch: () => new Response("ok") });
  chownSync(elsewhere, 1000, 1000);
  renameSync(elsewhere, join(dir, "ship.sock"));
  return server;
}

describe("the socket directory", () => {
  const fresh = () => new RuntimeSockets(join(mkdtempSync(join(tmpdir(), "bay-rs-")), "ships"));

  test("created open under a Bay-only root; sealed once a socket is there", async () => {
    const s = fresh();
    const dir = s.create("bay-sandbox-a");
    expect(statSync(s.root).mode & 0o777).toBe(0o700);
    expect(statSync(dir).mode & 0o777).toBe(0o777);
    const server = containerSocket(dir);
    try {
      const endpoint = await s.seal("bay-sandbox-a", async () => true, Date.now() + 5000);
      expect(endpoint).toBe(`unix:${join(dir, "ship.sock")}`);
      expect(statSync(dir).mode & 0o777).toBe(0o711);
      const { url, unix } = shipRequestTarget(endpoint, "/");
      expect(await (await fetch(url, { unix } as RequestInit)).text()).toBe("ok");
    } finally {
      server.stop(true);
    }
  });

  test("a link or a plain file where the socket should be is refused", async () => {
    const s = fresh();
    const dir = s.create("bay-sandbox-b");
    symlinkSync("/var/run/docker.sock", join(dir, "ship.sock"));
    await expect(s.seal("bay-sandbox-b", async () => true, Date.now() + 5000)).rejects.toMatchObject({ code: "ship_error" });
    const dir2 = s.create("bay-sandbox-c");
    writeFileSync(join(dir2, "ship.sock"), "x");
    await expect(s.seal("bay-sandbox-c", async () => true, Date.now() + 5000)).rejects.toMatchObject({ code: "ship_error" });
  });

  test("found by the security review: a directory not Bay's own, a socket of Bay's own user, or anything beside the socket", async () => {
    const s = fresh();
    // The directory owned by the container's user (Bay running as that user): its owner could always write again.
    const a = s.create("bay-sandbox-f");
    chownSync(a, 1000, 1000);
    const sa = containerSocket(a);
    await expect(s.seal("bay-sandbox-f", async () => true, Date.now() + 5000)).rejects.toThrow(/not sealed/);
    sa.stop(true);
    // The runtime runs as Bay's own user.
    const b = s.create("bay-sandbox-g");
    const sb = Bun.serve({ unix: join(b, "ship.sock"), fetch: () => new Response("ok") });
    await expect(s.seal("bay-sandbox-g", async () => true, Date.now() + 5000)).rejects.toThrow(/Bay's own user/);
    sb.stop(true);
    // Something left beside the socket before the seal (a directory that would stay the sandbox's).
    const c = s.create("bay-sandbox-h");
    mkdirSync(join(c, "mine"), { mode: 0o777 });
    const sc = containerSocket(c);
    await expect(s.seal("bay-sandbox-h", async () => true, Date.now() + 5000)).rejects.toThrow(/other entries/);
    sc.stop(true);
  });

  test("socket_dir: a root that is a link, not Bay's, or under a directory others may write, refuses Bay's start", () => {
    const base = mkdtempSync(join(tmpdir(), "bay-rs-"));
    mkdirSync(join(base, "real"));
    symlinkSync(join(base, "real"), join(base, "link"));
    expect(() => new RuntimeSockets(join(base, "link"))).toThrow(/socket_dir/);
    mkdirSync(join(base, "theirs"));
    chownSync(join(base, "theirs"), 1000, 1000);
    expect(() => new RuntimeSockets(join(base, "theirs"))).toThrow(/socket_dir/);
    mkdirSync(join(base, "open"), { mode: 0o777 });
    chmodSync(join(base, "open"), 0o777);
    expect(() => new RuntimeSockets(join(base, "open", "bay-x"))).toThrow(/writable by other users/);
    // Found by the second review: a directory above the root that another user owns
    // (it could rename the root away and put a link to its own directory in its place).
    mkdirSync(join(base, "shared"));
    chownSync(join(base, "shared"), 1000, 1000);
    expect(() => new RuntimeSockets(join(base, "shared", "bay-x"))).toThrow(/another user/);
    // A sticky world-writable parent (like /tmp) is fine.
    mkdirSync(join(base, "sticky"));
    chmodSync(join(base, "sticky"), 0o1777);
    expect(new RuntimeSockets(join(base, "sticky", "bay-x")).root).toBe(join(base, "sticky", "bay-x"));
  });

  test("no socket before the deadline, or the container gone first: session_not_ready", async () => {
    const s = fresh();
    s.create("bay-sandbox-d");
    await expect(s.seal("bay-sandbox-d", async () => true, Date.now() + 50)).rejects.toMatchObject({ code: "session_not_ready" });
    s.create("bay-sandbox-e");
    await expect(s.seal("bay-sandbox-e", async () => false, Date.now() + 10_000)).rejects.toMatchObject({ code: "session_not_ready" });
  });

  test("a socket_dir that cannot be made refuses at once", () => {
    const file = join(mkdtempSync(join(tmpdir(), "bay-rs-")), "file");
    writeFileSync(file, "x");
    expect(() => new RuntimeSockets(join(file, "ships"))).toThrow(/socket_dir/);
  });

  test("names that could leave the root are refused", () => {
    const s = fresh();
    for (const bad of ["../x", "a/b", "", ".hidden", "x".repeat(200)]) expect(() => s.dirOf(bad)).toThrow();
  });

  test("sweep: only directories without a container and past the grace period", () => {
    const s = fresh();
    mkdirSync(s.root, { recursive: true });
    for (const n of ["bay-gone-old", "bay-gone-new", "bay-live-old", "other-old"]) mkdirSync(join(s.root, n));
    writeFileSync(join(s.root, "bay-file-old"), "x");
    const old = (Date.now() - SWEEP_GRACE_MS - 1000) / 1000;
    for (const n of ["bay-gone-old", "bay-live-old", "other-old", "bay-file-old"]) utimesSync(join(s.root, n), old, old);
    expect(s.sweep(new Set(["bay-live-old"]))).toBe(1);
    expect(existsSync(join(s.root, "bay-gone-old"))).toBe(false);
    expect(existsSync(join(s.root, "bay-gone-new"))).toBe(true);
    expect(existsSync(join(s.root, "bay-live-old"))).toBe(true);
    // Only directories Bay makes (named bay-…): anything else someone put there stays.
    expect(existsSync(join(s.root, "other-old"))).toBe(true);
    expect(existsSync(join(s.root, "bay-file-old"))).toBe(true);
  });
});

test("socket_dir in the config: absolute, plain characters, no '.' or '..' (a ':' would split Bun's ws+unix URL)", () => {
  const parse = (socket_dir: string) => configSchema.safeParse({ driver: { socket_dir } }).success;
  expect(parse("/run/bay/ships")).toBe(true);
  for (const bad of ["run/bay", "/run/../etc", "/run/./x", "/x:2/y", "/a b", "/", ""]) expect(parse(bad)).toBe(false);
});

test("Ship fails closed: a socket directory never sealed stops it (and its socket) after the wait", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ship-sock-"));
  const path = join(dir, "ship.sock");
  // Writable to this process (as root, every directory is): never sealed.
  await expect(listenOnSocket(path, { fetch: () => new Response("ok") }, 100)).rejects.toThrow(/not sealed/);
  await Bun.sleep(300);
  expect(
    await fetch("http://ship/", { unix: path } as RequestInit).then(
      () => "answered",
      () => "refused",
    ),
  ).toBe("refused");
});
