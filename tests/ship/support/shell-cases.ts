import { expect, test } from "bun:test";
import { eventually, type ShipClient } from "./caller.ts";

/** Shell behaviours shared by every Ship target. Expects SHIP_MAX_BACKGROUND=3. */
export function shellCases(client: () => ShipClient): void {
  test("shell: stdout, stderr and exit code", async () => {
    const ok = await client().shell("echo out; echo err >&2");
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ success: true, output: "out\n", error: "err\n", exit_code: 0, truncated: false, process_id: null });
    const failed = await client().shell("exit 7");
    expect(failed.body).toMatchObject({ success: false, exit_code: 7 });
  });

  test("shell: a command longer than one exec argument may be (up to 1 MiB) runs, and leaves no script file", async () => {
    // 600 KiB of shell: a comment line padding it past Linux's 128 KiB per-argument cap.
    const command = `# ${"x".repeat(600 * 1024)}\necho "long command ran in $PWD"; echo "$0" | grep -c ship-cmd- || true`;
    const res = await client().shell(command);
    expect(res.status).toBe(200);
    expect(res.body.exit_code).toBe(0);
    expect(res.body.output).toContain("long command ran in");
    const left = await client().shell("ls /tmp | grep -c '^ship-cmd-' || true");
    expect(left.body.output.trim()).toBe("0");
    const tooLong = await client().shell(`# ${"y".repeat(1024 * 1024)}`);
    expect([tooLong.status, tooLong.body.error?.code]).toEqual([400, "validation_error"]);
  });

  test("shell: cwd and env", async () => {
    await client().shell("mkdir -p sub/dir");
    const res = await client().shell("pwd; echo $GREETING", { cwd: "sub/dir", env: { GREETING: "hi there" } });
    expect(res.body.output).toMatch(/\/sub\/dir\nhi there\n$/);
    const bad = await client().shell("pwd", { cwd: "../" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_path");
  });

  test("shell: children left behind by a finished command are killed", async () => {
    const res = await client().shell("sleep 300 & echo $! > left.pid; echo quick");
    expect(res.body).toMatchObject({ exit_code: 0, output: "quick\n" });
    const check = await client().shell('s=$(ps -o stat= -p "$(cat left.pid)"); [ -z "$s" ] || [[ "$s" == Z* ]]');
    expect(check.body.exit_code).toBe(0);
  });

  test("shell: timeout kills the whole process group", async () => {
    const res = await client().shell("sleep 300 & echo $! > bg.pid; echo started; sleep 300", { timeout: 1 });
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe("timeout");
    expect(res.body.error.details).toMatchObject({ timeout: 1, output: "started\n" });
    // The backgrounded sleep is gone (or a zombie waiting for init).
    const check = await client().shell('s=$(ps -o stat= -p "$(cat bg.pid)"); [ -z "$s" ] || [[ "$s" == Z* ]]');
    expect(check.body.exit_code).toBe(0);
  });

  test("shell: big output is truncated, drained, and Ship stays up", async () => {
    const res = await client().shell("head -c 20000000 /dev/zero | tr '\\0' a; echo tail >&2");
    expect(res.status).toBe(200);
    expect(res.body.truncated).toBe(true);
    expect(res.body.output.length).toBe(1024 * 1024);
    expect(res.body.error).toBe("tail\n");
    expect(res.body.exit_code).toBe(0);
    expect((await client().shell("echo alive")).body.output).toBe("alive\n");
  });

  test("shell: background process list, get, kill", async () => {
    const started = await client().shell("echo started; sleep 60", { background: true });
    expect(started.body).toMatchObject({ success: true, output: "", error: "", exit_code: null, truncated: false });
    const id: string = started.body.process_id;
    expect(id).toMatch(/^proc-/);
    const list = await client().json("GET", "/shell/processes");
    expect(list.body.items.find((p: any) => p.process_id === id)).toMatchObject({ status: "running", exit_code: null });
    await eventually(async () => {
      const one = await client().json("GET", `/shell/processes/${id}`);
      return one.body.output === "started\n" ? true : undefined;
    });
    const killed = await client().json("DELETE", `/shell/processes/${id}`);
    expect(killed.status).toBe(200);
    expect(killed.body).toMatchObject({ process_id: id, status: "killed" });
    expect(typeof killed.body.finished_at).toBe("string");
  });

  test("shell: a finished background process reports its exit code", async () => {
    const started = await client().shell("echo done; exit 3", { background: true });
    const id = started.body.process_id;
    const item = await eventually(async () => {
      const one = await client().json("GET", `/shell/processes/${id}`);
      return one.body.status === "exited" ? one.body : undefined;
    });
    expect(item).toMatchObject({ exit_code: 3, output: "done\n", error: "", truncated: false });
  });

  test("shell: what a background command leaves running is killed when it exits", async () => {
    const started = await client().shell("sleep 300 & echo $! > bg-left.pid; echo forked", { background: true });
    const id = started.body.process_id;
    await eventually(async () => {
      const one = await client().json("GET", `/shell/processes/${id}`);
      return one.body.status === "exited" ? true : undefined;
    });
    // The orphaned sleep is gone (or a zombie waiting for init), so it neither
    // outlives the cap nor escapes DELETE.
    await eventually(async () => {
      const check = await client().shell('s=$(ps -o stat= -p "$(cat bg-left.pid)"); [ -z "$s" ] || [[ "$s" == Z* ]]');
      return check.body.exit_code === 0 ? true : undefined;
    });
    await client().shell("rm -f bg-left.pid");
  });

  test("shell: NUL bytes and bad env names are validation_error", async () => {
    const bodies = [
      { command: "echo a\0b" },
      { command: "echo ok", env: { A: "x\0y" } },
      { command: "echo ok", env: { "A\0B": "x" } },
      { command: "echo ok", env: { "A=B": "x" } },
      { command: "echo ok", env: { "": "x" } },
    ];
    for (const body of bodies) {
      const res = await client().json("POST", "/shell/exec", body);
      expect([JSON.stringify(body), res.status, res.body.error?.code]).toEqual([JSON.stringify(body), 400, "validation_error"]);
    }
    const cwd = await client().shell("pwd", { cwd: "a\0b" });
    expect([cwd.status, cwd.body.error?.code]).toEqual([400, "invalid_path"]);
  });

  test("shell: background cap gives quota_exceeded; unknown id is not_found", async () => {
    const ids: string[] = [];
    try {
      for (;;) {
        const res = await client().shell("sleep 60", { background: true });
        if (res.status !== 200) {
          expect(res.status).toBe(429);
          expect(res.body.error.code).toBe("quota_exceeded");
          break;
        }
        ids.push(res.body.process_id);
        expect(ids.length).toBeLessThanOrEqual(3);
      }
    } finally {
      for (const id of ids) await client().json("DELETE", `/shell/processes/${id}`);
    }
    const missing = await client().json("GET", "/shell/processes/proc-nope");
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
  });

  test("shell: a fork bomb is contained by the timeout and the next call works", async () => {
    const res = await client().shell("forkbomb_marker() { sleep 0.5; forkbomb_marker & forkbomb_marker & }; forkbomb_marker", {
      timeout: 2,
    });
    expect([200, 504]).toContain(res.status);
    expect((await client().shell("echo ok")).body.output).toBe("ok\n");
    // Nothing of it survives the exec: its process group was killed.
    await Bun.sleep(1500);
    const left = await client().shell("ps -eo stat=,cmd= | grep -v '^Z' | grep -c '[f]orkbomb_marker' || true");
    expect(left.body.output.trim()).toBe("0");
  });
}
