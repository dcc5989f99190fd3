/**
 * What the operating system refuses because of what the sandbox's own code did (a file
 * a running program holds, a directory removed or locked under a call, a full disk) is
 * answered as that path's refusal, never as Ship failing (500, which Bay relays as 502
 * "sandbox runtime failed"). Ship in-process on the host, as root (support/interactive.ts).
 */
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ShipError } from "../../src/ship/errors.ts";
import { pathError, startError } from "../../src/ship/paths.ts";
import { watchStartError } from "../../src/ship/routes/watch.ts";
import { InotifyError } from "../../src/ship/watch/inotify.ts";
import { background, client, useInteractiveShip, workspace } from "./support/interactive.ts";

useInteractiveShip();

const errno = (code: string) => Object.assign(new Error(code), { code });

describe("refusals the sandbox's own code causes", () => {
  test("writing over a program that is running answers 409 conflict (ETXTBSY), and the program runs on", async () => {
    copyFileSync("/bin/sleep", join(workspace, "mysleep"));
    const id = await background("exec ./mysleep 30");
    await Bun.sleep(300);
    const res = await client.json("PUT", "/filesystem/files", { path: "mysleep", content: "x" });
    expect([res.status, res.body.error.code, res.body.error.details]).toEqual([409, "conflict", { path: "mysleep", reason: "busy" }]);
    expect((await client.json("GET", `/shell/processes/${id}`)).body.status).toBe("running");
    await client.json("DELETE", `/shell/processes/${id}`);
  });

  test("a cwd removed while an exec starts in it: 200 or 404 file_not_found, never a 500", async () => {
    const statuses = new Set<string>();
    for (let i = 0; i < 150; i++) {
      mkdirSync(join(workspace, "racedir"), { recursive: true });
      const remover = Bun.spawn(["rmdir", join(workspace, "racedir")]);
      const res = await client.shell("true", { cwd: "racedir" });
      await remover.exited;
      statuses.add(res.status === 200 ? "200" : `${res.status} ${res.body.error.code}`);
    }
    expect([...statuses].filter((s) => s !== "200" && s !== "404 file_not_found")).toEqual([]);
  }, 60_000);

  test("deleting a tree with something inside the runtime's user may not remove: 400 invalid_path, what is left put back and said so", async () => {
    mkdirSync(join(workspace, "go/pkg/mod/m@v1"), { recursive: true });
    writeFileSync(join(workspace, "go/pkg/mod/m@v1/go.mod"), "module m\n");
    writeFileSync(join(workspace, "go/notes.txt"), "deletable\n");
    // Immutable: rm fails even for root (as a read-only directory makes it fail for the runtime's uid).
    const lock = Bun.spawnSync(["chattr", "+i", join(workspace, "go/pkg/mod/m@v1")]);
    expect(lock.exitCode, `chattr +i failed (the test needs a filesystem with immutable files): ${lock.stderr}`).toBe(0);
    try {
      const res = await client.json("DELETE", "/filesystem/files?path=go");
      expect([res.status, res.body.error.code, res.body.error.details]).toEqual([
        400,
        "invalid_path",
        { path: "go", reason: "permission denied", remaining_at: "go" },
      ]);
      expect(res.body.error.message).toContain("what is left of it is back in place");
      expect(JSON.stringify(res.body)).not.toContain(".ship-delete-");
      expect((await client.json("GET", "/filesystem/files?path=go/pkg/mod/m@v1/go.mod")).body.content).toBe("module m\n");
      // rm removed what it could: the answer's "part of it" is true.
      expect((await client.json("GET", "/filesystem/files?path=go/notes.txt")).status).toBe(404);
    } finally {
      Bun.spawnSync(["chattr", "-i", join(workspace, "go/pkg/mod/m@v1")]);
      rmSync(join(workspace, "go"), { recursive: true, force: true });
    }
  });

  test("a failed tree delete whose name the sandbox took again meanwhile: remaining_at names where the rest is, and it is readable there", async () => {
    const seen = new Set<string>();
    for (let round = 0; round < 20 && !seen.has("elsewhere"); round++) {
      mkdirSync(join(workspace, "tree/locked"), { recursive: true });
      writeFileSync(join(workspace, "tree/locked/kept.txt"), "kept\n");
      expect(Bun.spawnSync(["chattr", "+i", join(workspace, "tree/locked")]).exitCode).toBe(0);
      // Code in the sandbox recreating the name as fast as it can while the delete runs.
      const racer = Bun.spawn(["sh", "-c", `while :; do mkdir -p '${join(workspace, "tree/new")}' 2>/dev/null; done`]);
      let remainingAt = "";
      try {
        await Bun.sleep(20);
        const res = await client.json("DELETE", "/filesystem/files?path=tree");
        expect([res.status, res.body.error.code, res.body.error.details.path]).toEqual([400, "invalid_path", "tree"]);
        remainingAt = res.body.error.details.remaining_at;
        if (remainingAt === "tree") {
          seen.add("put back");
        } else {
          seen.add("elsewhere");
          expect(remainingAt).toMatch(/^\.ship-delete-[0-9a-f]{12}$/);
          expect(res.body.error.message).toContain(`what is left of it is in ${remainingAt}`);
        }
        expect((await client.json("GET", `/filesystem/files?path=${remainingAt}/locked/kept.txt`)).body.content).toBe("kept\n");
      } finally {
        racer.kill();
        await racer.exited;
        for (const dir of ["tree", remainingAt].filter(Boolean)) {
          Bun.spawnSync(["chattr", "-i", join(workspace, dir, "locked")]);
          rmSync(join(workspace, dir), { recursive: true, force: true });
        }
        rmSync(join(workspace, "tree"), { recursive: true, force: true });
      }
    }
    expect(seen.has("elsewhere")).toBe(true);
  }, 60_000);

  test("a tree delete whose rm cannot start (the sandbox filled its process limit): 409 conflict, the tree put back, nothing left staged", async () => {
    mkdirSync(join(workspace, "t/sub"), { recursive: true });
    writeFileSync(join(workspace, "t/sub/data.txt"), "precious\n");
    const saved = process.env.PATH;
    process.env.PATH = "/nonexistent"; // Ship spawns rm with its own environment: here it cannot find it
    try {
      const res = await client.json("DELETE", "/filesystem/files?path=t");
      expect([res.status, res.body.error.code, res.body.error.details]).toEqual([409, "conflict", { path: "t", remaining_at: "t" }]);
    } finally {
      process.env.PATH = saved;
    }
    expect((await client.json("GET", "/filesystem/files?path=t/sub/data.txt")).body.content).toBe("precious\n");
    expect(readdirSync(workspace).filter((n) => n.startsWith(".ship-delete-"))).toEqual([]);
    rmSync(join(workspace, "t"), { recursive: true });
  });

  test("a failed tree delete whose directory the sandbox moved meanwhile: remaining_at follows it, and is absent once it left the workspace", async () => {
    const outside = mkdtempSync("/tmp/ship-outside-");
    // Waits for the staging directory, then moves the tree's parent.
    const racer = (action: string) =>
      Bun.spawn(["sh", "-c", `while :; do for d in '${workspace}'/.ship-delete-*; do [ -e "$d" ] && { ${action}; exit 0; }; done; done`]);
    const cases = [
      { dir: "a", action: `mv '${workspace}/a' '${workspace}/a2'; mkdir '${workspace}/a'`, at: "a2/tree", kept: join(workspace, "a2") },
      { dir: "b", action: `mv '${workspace}/b' '${outside}/b'`, at: undefined, kept: join(outside, "b") },
    ];
    try {
      for (const c of cases) {
        mkdirSync(join(workspace, c.dir, "tree/locked"), { recursive: true });
        writeFileSync(join(workspace, c.dir, "tree/locked/kept.txt"), "kept\n");
        expect(Bun.spawnSync(["chattr", "+i", join(workspace, c.dir, "tree/locked")]).exitCode).toBe(0);
        const r = racer(c.action);
        await Bun.sleep(50);
        const res = await client.json("DELETE", `/filesystem/files?path=${c.dir}/tree`);
        await r.exited;
        expect([res.status, res.body.error.code, res.body.error.details.remaining_at]).toEqual([400, "invalid_path", c.at]);
        expect(readFileSync(join(c.kept, "tree/locked/kept.txt"), "utf8")).toBe("kept\n");
        Bun.spawnSync(["chattr", "-i", join(c.kept, "tree/locked")]);
      }
    } finally {
      for (const dir of [join(workspace, "a2"), join(outside, "b")]) Bun.spawnSync(["chattr", "-i", join(dir, "tree/locked")]);
      for (const dir of ["a", "a2", "b"]) rmSync(join(workspace, dir), { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  }, 30_000);

  test("a context whose cwd code in the sandbox removed: its restart answers 404 file_not_found for that path at once, and it recovers once the directory is back", async () => {
    mkdirSync(join(workspace, "ctxdir"));
    const created = await client.json("POST", "/contexts", { language: "python", cwd: "ctxdir" });
    expect(created.status).toBe(201);
    const id = created.body.id;
    try {
      rmSync(join(workspace, "ctxdir"), { recursive: true });
      const gone = await client.json("POST", `/contexts/${id}/restart`);
      expect([gone.status, gone.body.error.code, gone.body.error.details]).toEqual([404, "file_not_found", { path: "ctxdir" }]);
      const exec = await client.json("POST", "/code/exec", { context_id: id, code: "1+1" });
      expect([exec.status, exec.body.error?.code]).toEqual([404, "file_not_found"]);
      mkdirSync(join(workspace, "ctxdir"));
      const back = await client.json("POST", `/contexts/${id}/restart`);
      expect(back.status).toBe(200);
      expect((await client.json("POST", "/code/exec", { context_id: id, code: "1+1" })).body.output).toContain("2");
    } finally {
      await client.json("DELETE", `/contexts/${id}`);
    }
  }, 30_000);

  test("a process or terminal that cannot start in its cwd: the cwd's refusal; the same errno from anything else (a program missing from PATH) stays Ship's error", () => {
    const gone = startError(errno("ENOENT"), { absolute: join(workspace, "no-such-dir"), relative: "d" }, "command") as ShipError;
    expect([gone.code, gone.details]).toEqual(["file_not_found", { path: "d" }]);
    // The directory is there: the ENOENT was the program's.
    const program = startError(errno("ENOENT"), { absolute: workspace, relative: "." }, "command") as ShipError;
    expect([program.code, program.message]).toEqual(["internal_error", "could not start a command: ENOENT"]);
    const limit = startError(errno("EAGAIN"), { absolute: workspace, relative: "." }, "command") as ShipError;
    expect([limit.code, limit.message]).toEqual(["internal_error", "could not start a command: EAGAIN"]);
  });

  test("an exec whose env empties PATH: Ship's error for the missing program, not the cwd's", async () => {
    const res = await client.shell("true", { env: { PATH: "/nonexistent" } });
    expect([res.status, res.body.error?.code]).not.toEqual([404, "file_not_found"]);
  });

  test("a watch inotify refuses: the path's refusal when it went or may not be read, quota_exceeded at the kernel's limits", () => {
    const gone = watchStartError(new InotifyError("inotify_add_watch", 2), "w", 8) as ShipError;
    expect([gone.code, gone.details]).toEqual(["file_not_found", { path: "w" }]);
    const locked = watchStartError(new InotifyError("inotify_add_watch", 13), "w", 8) as ShipError;
    expect([locked.code, locked.details]).toEqual(["invalid_path", { path: "w", reason: "permission denied" }]);
    for (const errno of [28, 24]) {
      const full = watchStartError(new InotifyError("inotify_add_watch", errno), "w", 8) as ShipError;
      expect([full.code, full.details]).toEqual(["quota_exceeded", { limit: 8 }]);
    }
    const other = new Error("x");
    expect(watchStartError(other, "w", 8)).toBe(other);
  });

  test("a full disk is payload_too_large and a busy file a conflict, naming the path", () => {
    for (const code of ["ENOSPC", "EDQUOT"]) {
      const e = pathError(errno(code), "a/b") as ShipError;
      expect([e.code, e.details]).toEqual(["payload_too_large", { path: "a/b", reason: "no_space" }]);
    }
    for (const code of ["ETXTBSY", "EBUSY"]) {
      const e = pathError(errno(code), "x") as ShipError;
      expect([e.code, e.details]).toEqual(["conflict", { path: "x", reason: "busy" }]);
    }
  });
});
