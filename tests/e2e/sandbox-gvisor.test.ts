/**
 * The python-gvisor profile end to end on a real runsc container: the same
 * capabilities as the default profile (Python state, errors and timeouts, shell
 * exit codes, cwd, env and background processes, files written, listed, uploaded,
 * downloaded and deleted), and proof that the code really ran under gVisor's
 * kernel, not the host's. One sandbox for the file: a runsc cold start is slow.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { containersOf, docker, dropSandbox, newSandbox, py, sh, uploadForm } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay));
let id = "";

beforeAll(async () => {
  id = await newSandbox(t, "python-gvisor");
}, 60_000);
afterAll(async () => {
  if (t && id) await dropSandbox(t, id);
});

describe("python-gvisor", () => {
  test("the first call starts a runsc container whose kernel is gVisor's", async () => {
    const r = await py(t, id, "import platform; print(platform.release())");
    expect(r.status).toBe(200);
    const [c] = await containersOf(t, id);
    const info = await docker.getContainer(c!.id).inspect();
    expect(info.HostConfig.Runtime).toBe("runsc");
    // Same hardening as any profile.
    expect(info.HostConfig.CapDrop).toEqual(["ALL"]);
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    // gVisor's Sentry reports its own kernel and boot log, never the host's.
    const host = Bun.spawnSync(["uname", "-r"]).stdout.toString().trim();
    expect(r.body.output.trim()).not.toBe(host);
    const boot = await sh(t, id, { command: "dmesg | head -1" });
    expect(boot.body.output).toContain("gVisor");
  });

  test("python: state across calls, a traceback on error, a timeout that keeps the kernel", async () => {
    expect((await py(t, id, "counter = 41")).body.success).toBe(true);
    expect((await py(t, id, "counter + 1")).body.output.trim()).toBe("42");
    const boom = await py(t, id, "raise ValueError('bad value')");
    expect(boom.body.success).toBe(false);
    expect(boom.body.error).toContain("ValueError: bad value");
    const slow = await py(t, id, "while True: pass", 1);
    expect(slow.status).toBe(504);
    expect((await py(t, id, "counter * 2")).body.output.trim()).toBe("82");
  });

  test("shell: exit codes, stderr, cwd, env and a background process that can be killed", async () => {
    const bad = await sh(t, id, { command: "echo oops >&2; exit 7" });
    expect(bad.body).toMatchObject({ success: false, exit_code: 7 });
    expect(bad.body.error).toContain("oops");
    expect((await sh(t, id, { command: "mkdir -p w/d" })).body.exit_code).toBe(0);
    expect((await sh(t, id, { command: "pwd", cwd: "w/d" })).body.output.trim()).toBe("/workspace/w/d");
    expect((await sh(t, id, { command: 'printf %s "$G"', env: { G: "hi" } })).body.output).toBe("hi");
    const bg = await sh(t, id, { command: "sleep 300", background: true });
    const pid = bg.body.process_id as string;
    expect(pid).toBeTruthy();
    expect((await t.json("DELETE", `/v1/sandboxes/${id}/shell/processes/${pid}`)).status).toBe(200);
    let status = "running";
    for (let i = 0; i < 50 && status === "running"; i++) {
      status = (await t.json("GET", `/v1/sandboxes/${id}/shell/processes/${pid}`)).body.status;
      if (status === "running") await Bun.sleep(100);
    }
    expect(status).not.toBe("running");
  });

  test("files: write, list, upload, download byte-exact, delete", async () => {
    const base = `/v1/sandboxes/${id}/filesystem`;
    expect((await t.json("PUT", `${base}/files`, { body: { path: "dir/one.txt", content: "one" } })).status).toBe(200);
    expect((await t.json("GET", `${base}/files?path=dir/one.txt`)).body.content).toBe("one");
    const list = await t.json("GET", `${base}/directories?path=dir`);
    expect(list.body.entries.map((e: { name: string }) => e.name)).toEqual(["one.txt"]);
    const bin = crypto.getRandomValues(new Uint8Array(256 * 1024));
    expect((await t.json("POST", `${base}/upload`, { body: uploadForm("dir/blob.bin", bin) })).status).toBe(200);
    const down = await t.call("GET", `${base}/download?path=dir/blob.bin`);
    expect(new Uint8Array(await down.arrayBuffer())).toEqual(bin);
    // Python inside sees what was uploaded through Bay.
    expect((await py(t, id, "print(len(open('dir/blob.bin','rb').read()))")).body.output.trim()).toBe(String(bin.length));
    expect((await t.json("DELETE", `${base}/files?path=dir`)).status).toBe(200);
    expect((await t.json("GET", `${base}/directories?path=dir`)).status).toBe(404);
  });
});
