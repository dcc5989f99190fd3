/**
 * connect_mode unix_socket, the parts that need no engine: what a container is
 * created with (the socket mount and SHIP_SOCKET, no published port; a
 * loopback port instead for a runtime that cannot serve a socket to the host),
 * the endpoint's URLs, the directory's seal (a link or a file in place of the
 * socket is refused), the sweep, and Ship failing closed when never sealed.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

describe("the socket directory", () => {
  const fresh = () => new RuntimeSockets(join(mkdtempSync(join(tmpdir(), "bay-rs-")), "ships"));

  test("created open under a Bay-only root; sealed once a socket is there", async () => {
    const s = fresh();
    const dir = s.create("bay-sandbox-a");
    expect(statSync(s.root).mode & 0o777).toBe(0o700);
    expect(statSync(dir).mode & 0o777).toBe(0o777);
    const server = Bun.serve({ unix: join(dir, "ship.sock"), fetch: () => new Response("ok") });
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

  test("no socket before the deadline, or the container gone first: session_not_ready", async () => {
    const s = fresh();
    s.create("bay-sandbox-d");
    await expect(s.seal("bay-sandbox-d", async () => true, Date.now() + 50)).rejects.toMatchObject({ code: "session_not_ready" });
    s.create("bay-sandbox-e");
    await expect(s.seal("bay-sandbox-e", async () => false, Date.now() + 10_000)).rejects.toMatchObject({ code: "session_not_ready" });
  });

  test("a socket_dir Bay cannot make its own refuses at once", () => {
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
    for (const n of ["gone-old", "gone-new", "live-old"]) mkdirSync(join(s.root, n));
    const old = (Date.now() - SWEEP_GRACE_MS - 1000) / 1000;
    utimesSync(join(s.root, "gone-old"), old, old);
    utimesSync(join(s.root, "live-old"), old, old);
    expect(s.sweep(new Set(["live-old"]))).toBe(1);
    expect(existsSync(join(s.root, "gone-old"))).toBe(false);
    expect(existsSync(join(s.root, "gone-new"))).toBe(true);
    expect(existsSync(join(s.root, "live-old"))).toBe(true);
  });
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
