/**
 * Container hardening on real Docker, checked both from the engine's view
 * (docker inspect) and from inside the sandbox: uid 1000, no capabilities,
 * no_new_privs, read-only root with a writable /workspace and a size-limited
 * /tmp, cgroup limits from the profile, loopback-only ports, unknown OCI runtime.
 */
import { describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { CGROUP, catCgroup, containersOf, docker, profiles, py, sh, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";
import { SHIP_IMAGE } from "../support/images.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay), {
  config: {
    profiles: profiles(
      { id: "hard", image: SHIP_IMAGE, cpus: 0.5, memory_mb: 256, pids_limit: 64, tmpfs_mb: 16 },
      { id: "bad-runtime", image: SHIP_IMAGE, runtime: "bay-test-no-such-runtime" },
    ),
  },
});

describe("container hardening", () => {
  test("docker inspect: caps dropped, no-new-privileges, limits from profile, ro rootfs, tmpfs, 127.0.0.1 ports", async () => {
    await withSandbox(
      t,
      async (id) => {
        expect((await py(t, id, "1")).status).toBe(200);
        const [c] = await containersOf(t, id);
        const info = await docker.getContainer(c!.id).inspect();
        const hc = info.HostConfig;
        expect(hc.CapDrop).toEqual(["ALL"]);
        expect(hc.CapAdd ?? []).toEqual([]);
        expect(hc.Privileged).toBe(false);
        expect(hc.SecurityOpt).toContain("no-new-privileges");
        expect(hc.PidsLimit).toBe(64);
        expect(hc.Memory).toBe(256 * 1024 * 1024);
        expect(hc.MemorySwap).toBe(256 * 1024 * 1024);
        expect(hc.NanoCpus).toBe(0.5e9);
        expect(hc.ReadonlyRootfs).toBe(true);
        expect(hc.Tmpfs?.["/tmp"]).toContain("size=16m");
        const bindings = Object.values(hc.PortBindings ?? {}).flat() as Array<{ HostIp: string }>;
        expect(bindings.length).toBeGreaterThan(0);
        for (const b of bindings) expect(b.HostIp).toBe("127.0.0.1");
        expect(info.Config.User).toBe("1000:1000");
      },
      "hard",
    );
  });

  test("Ship runs with JSC's on-demand threads off (it outlives a pids-limit bomb); user code does not inherit them", async () => {
    await withSandbox(
      t,
      async (id) => {
        expect((await py(t, id, "import os; sorted(k for k in os.environ if k.startswith('BUN_JSC_'))")).body.output.trim()).toBe("[]");
        const [c] = await containersOf(t, id);
        const env = (await docker.getContainer(c!.id).inspect()).Config.Env;
        expect(env).toEqual(
          expect.arrayContaining(["BUN_JSC_useConcurrentGC=0", "BUN_JSC_useConcurrentJIT=0", "BUN_JSC_numberOfGCMarkers=1"]),
        );
        const shell = await sh(t, id, { command: "env | grep -c '^BUN_JSC_' || true" });
        expect(shell.body.output.trim()).toBe("0");
      },
      "hard",
    );
  });

  test("inside: uid 1000, zero capability sets, NoNewPrivs, cgroup pids/memory limits", async () => {
    await withSandbox(
      t,
      async (id) => {
        const r = await sh(t, id, {
          command: [
            "id -u; id -g",
            "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status",
            catCgroup(CGROUP.pidsMax),
            catCgroup(CGROUP.memoryMax),
          ].join("; "),
        });
        expect(r.status).toBe(200);
        const lines = r.body.output.trim().split("\n");
        expect(lines[0]).toBe("1000");
        expect(lines[1]).toBe("1000");
        for (const cap of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) {
          expect(lines.find((l: string) => l.startsWith(cap))).toMatch(/:\s+0{16}$/);
        }
        expect(lines.find((l: string) => l.startsWith("NoNewPrivs"))).toMatch(/:\s+1$/);
        expect(lines).toContain("64");
        expect(lines).toContain(String(256 * 1024 * 1024));
        // Python (the kernel) runs as the same unprivileged user.
        const p = await py(t, id, "import os; (os.getuid(), os.geteuid())");
        expect(p.body.output.trim()).toBe("(1000, 1000)");
      },
      "hard",
    );
  });

  test("read-only root: writing to / and /usr fails; /workspace writable; /tmp is a 16 MiB tmpfs", async () => {
    await withSandbox(
      t,
      async (id) => {
        const root = await sh(t, id, { command: "touch /evil 2>&1; touch /usr/evil 2>&1; echo done" });
        expect(root.body.output).toContain("Read-only file system");
        const ws = await sh(t, id, { command: "echo hi > /workspace/ok.txt && cat /workspace/ok.txt" });
        expect(ws.body.exit_code).toBe(0);
        expect(ws.body.output.trim()).toBe("hi");
        const tmp = await sh(t, id, { command: "findmnt -n -o FSTYPE,OPTIONS /tmp; df -k --output=size /tmp | tail -1" });
        expect(tmp.body.output).toContain("tmpfs");
        expect(tmp.body.output).toMatch(/nosuid/);
        expect(Number(tmp.body.output.trim().split("\n").pop())).toBe(16 * 1024);
        const mount = await sh(t, id, { command: "mount -o remount,rw / 2>&1; echo rc=$?" });
        expect(mount.body.output).not.toContain("rc=0");
      },
      "hard",
    );
  });

  // "No hang": the test's own timeout bounds the call (a hang fails the test).
  test("unknown OCI runtime: a clear error naming the runtime, no hang, no container left", async () => {
    await withSandbox(
      t,
      async (id) => {
        const r = await py(t, id, "1");
        expect(r.status).toBeGreaterThanOrEqual(500);
        expect(r.body.error.message).toContain("bay-test-no-such-runtime");
        expect(JSON.stringify(r.body)).not.toMatch(/\bat \w+ \(/); // no stack trace
        expect(await containersOf(t, id)).toHaveLength(0);
      },
      "bad-runtime",
    );
  }, 30_000);
});
