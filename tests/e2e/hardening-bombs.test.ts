/**
 * Containment on real Docker: a fork bomb, a memory bomb and a /tmp-filling loop,
 * each inside a sandbox whose profile has deliberately low limits (pids 48,
 * memory 160 MiB, /tmp 8 MiB, half a CPU), so the host is never at risk. Each
 * ends with a clear answer for that sandbox only; Bay stays healthy and a second
 * sandbox keeps answering Python during and after. /workspace is never filled:
 * volumes have no quota on this host (workspace size is enforced on writes
 * through Bay only).
 */
import { describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { CGROUP, catCgroup, containersOf, dropSandbox, readCgroup, newSandbox, profiles, py, sh } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";
import { SHIP_IMAGE } from "../support/images.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay), {
  config: {
    profiles: profiles(
      { id: "bomb", image: SHIP_IMAGE, cpus: 0.5, memory_mb: 160, pids_limit: 48, tmpfs_mb: 8 },
      { id: "calm", image: SHIP_IMAGE, cpus: 0.5, memory_mb: 256, pids_limit: 128 },
    ),
  },
});

/**
 * Runs `bomb` while a calm sandbox of its own (created here, dropped at the end)
 * answers Python in a loop; checks health and the neighbour after.
 */
async function contained<T>(bomb: () => Promise<T>): Promise<T> {
  const calm = await newSandbox(t, "calm");
  try {
    expect((await py(t, calm, "counter = 0")).status).toBe(200);
    let stop = false;
    let answered = 0;
    const neighbour = (async () => {
      while (!stop) {
        const r = await py(t, calm, "counter += 1; counter");
        expect(r.status).toBe(200);
        expect(r.body.success).toBe(true);
        answered++;
        await Bun.sleep(200);
      }
    })();
    try {
      return await bomb();
    } finally {
      stop = true;
      await neighbour;
      expect(answered).toBeGreaterThan(0);
      const health = await t.json("GET", "/health");
      expect(health.status).toBe(200);
      expect(health.body.status).toBe("healthy");
      const after = await py(t, calm, "6*7");
      expect(after.body.output.trim()).toBe("42");
    }
  } finally {
    await dropSandbox(t, calm);
  }
}

describe("containment (bounded bombs)", () => {
  test("fork bomb hits the pids limit (EAGAIN), Ship kills its process group; the sandbox keeps answering", async () => {
    const id = await newSandbox(t, "bomb");
    try {
      expect((await py(t, id, "1")).status).toBe(200);
      const [before] = await containersOf(t, id);
      // After the bomb the outer shell never forks: bash retries a fork that fails with
      // EAGAIN for 1+2+4+8 s, so a `sleep` and a `cat` could each take 15 s while the
      // bomb holds every pid. It waits on a FIFO it holds open itself (`read -t`) and
      // reads the counter with a redirect, both builtins.
      const command =
        "rm -f /tmp/bomb.fifo; mkfifo /tmp/bomb.fifo; exec 9<>/tmp/bomb.fifo; " +
        `bash -c ':(){ :|:& };:'; read -t 2 -u 9; ${readCgroup(CGROUP.pidsCurrent, "n")}; echo "$n"`;
      const r = await contained(() => sh(t, id, { command, timeout: 20 }));
      expect(r.status).toBe(200);
      // Ship itself lived through it: the same container answered, none was recreated.
      expect((await containersOf(t, id)).map((c) => c.id)).toEqual([before!.id]);
      expect(r.body.error).toContain("Resource temporarily unavailable");
      const current = Number(r.body.output.trim().split("\n").pop());
      expect(current).toBeLessThanOrEqual(48);
      // Whatever the foreground command forked is killed with its process group: the
      // sandbox recovers (bounded wait: the kernel may still be reaping the last forks).
      let lines: string[] = [];
      for (let attempt = 0; attempt < 20; attempt++) {
        const again = await sh(t, id, { command: `echo alive; ${catCgroup(CGROUP.pidsCurrent)}` });
        lines = String(again.body.output ?? "").split("\n");
        if (lines[0] === "alive" && Number(lines[1]) < 24) break;
        await Bun.sleep(250);
      }
      expect(lines[0]).toBe("alive");
      expect(Number(lines[1])).toBeLessThan(24);
      expect((await py(t, id, "'py ok'")).body.output.trim()).toBe("'py ok'");
    } finally {
      await dropSandbox(t, id);
    }
  }, 90_000);

  test("memory bomb past memory_mb is OOM-killed: a clear error, then the sandbox answers again", async () => {
    const id = await newSandbox(t, "bomb");
    try {
      expect((await py(t, id, "keep = 1")).status).toBe(200);
      const code = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))";
      const r = await contained(() => py(t, id, code, 30));
      if (r.status === 200) {
        // Ship saw its kernel SIGKILLed by the OOM killer and restarted it.
        expect(r.body.success).toBe(false);
        expect(r.body.error).toMatch(/SIGKILL|restarted/);
        expect(r.body.kernel_restarted).toBe(true);
      } else {
        expect(r.status).toBeGreaterThanOrEqual(500);
        expect(["ship_error", "session_not_ready", "timeout"]).toContain(r.body.error.code);
      }
      // The kernel (or the whole session) was restarted: the next call answers.
      let next = await py(t, id, "2+2");
      for (let i = 0; i < 5 && next.status !== 200; i++) {
        await Bun.sleep(1000);
        next = await py(t, id, "2+2");
      }
      expect(next.status).toBe(200);
      expect(next.body.output.trim()).toBe("4");
    } finally {
      await dropSandbox(t, id);
    }
  }, 120_000);

  test("filling /tmp hits the tmpfs size: ENOSPC for that command only", async () => {
    const id = await newSandbox(t, "bomb");
    try {
      const r = await contained(() =>
        sh(t, id, {
          command: "i=0; while dd if=/dev/zero of=/tmp/fill$i bs=1M count=4 2>&1; do i=$((i+1)); done; df -k /tmp | tail -1",
          timeout: 30,
        }),
      );
      expect(r.status).toBe(200);
      expect(r.body.output).toContain("No space left on device");
      const used = await sh(t, id, { command: "du -sk /tmp | cut -f1; rm -f /tmp/fill*; echo cleaned" });
      expect(Number(used.body.output.split("\n")[0])).toBeLessThanOrEqual(8 * 1024);
      expect(used.body.output).toContain("cleaned");
      expect((await py(t, id, "'ok'")).body.output.trim()).toBe("'ok'");
    } finally {
      await dropSandbox(t, id);
    }
  }, 90_000);
});
