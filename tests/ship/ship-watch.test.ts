/**
 * Ship's file watch; Ship in-process on the host (support/interactive.ts).
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pollUntil } from "../support/harness.ts";
import { SseReader } from "../support/sse.ts";
import { workspace, base, call, useInteractiveShip } from "./support/interactive.ts";

useInteractiveShip();

describe("file watch", () => {
  const watch = async (query: string) => {
    const res = await call(`/filesystem/watch?${query}`);
    if (res.status !== 200) return { res, sse: null };
    const sse = new SseReader(res);
    expect((await sse.next())?.event).toBe("ready");
    return { res, sse };
  };
  const changes = async (sse: SseReader, n: number) => {
    const out: any[] = [];
    while (out.length < n) {
      const e = await sse.next();
      if (!e) throw new Error(`stream ended after ${JSON.stringify(out)}`);
      out.push(e.event === "change" ? e.data : { [e.event]: e.data });
    }
    return out;
  };

  test("created, modified, renamed, deleted; directories flagged; recursive covers new subdirectories", async () => {
    mkdirSync(join(workspace, "w1"));
    const { sse } = await watch("path=w1&recursive=true");
    writeFileSync(join(workspace, "w1/a.txt"), "1");
    mkdirSync(join(workspace, "w1/sub"));
    expect(await changes(sse!, 3)).toEqual([
      { type: "created", path: "w1/a.txt", is_dir: false },
      { type: "modified", path: "w1/a.txt", is_dir: false },
      { type: "created", path: "w1/sub", is_dir: true },
    ]);
    // The new subdirectory is watched too (once its `created` was seen).
    writeFileSync(join(workspace, "w1/sub/b.txt"), "");
    renameSync(join(workspace, "w1/a.txt"), join(workspace, "w1/sub/c.txt"));
    rmSync(join(workspace, "w1/sub/b.txt"));
    expect(await changes(sse!, 4)).toEqual([
      { type: "created", path: "w1/sub/b.txt", is_dir: false },
      // Opening with O_TRUNC counts as a modification, even of an empty file.
      { type: "modified", path: "w1/sub/b.txt", is_dir: false },
      { type: "renamed", path: "w1/sub/c.txt", old_path: "w1/a.txt", is_dir: false },
      { type: "deleted", path: "w1/sub/b.txt", is_dir: false },
    ]);
    // Moved out of the watched tree: deleted; the tree itself removed: the stream ends with an error.
    renameSync(join(workspace, "w1/sub/c.txt"), join(workspace, "outside.txt"));
    expect(await changes(sse!, 1)).toEqual([{ type: "deleted", path: "w1/sub/c.txt", is_dir: false }]);
    rmSync(join(workspace, "w1"), { recursive: true });
    const events = await sse!.rest();
    expect(events.at(-1)).toMatchObject({ event: "error", data: { error: { code: "file_not_found" } } });
    rmSync(join(workspace, "outside.txt"));
  });

  test("not recursive: only the directory's own entries", async () => {
    mkdirSync(join(workspace, "w2/deep"), { recursive: true });
    const { sse } = await watch("path=w2");
    writeFileSync(join(workspace, "w2/deep/ignored.txt"), "");
    writeFileSync(join(workspace, "w2/seen.txt"), "");
    const [first] = await changes(sse!, 1);
    expect(first).toEqual({ type: "created", path: "w2/seen.txt", is_dir: false });
    await sse!.cancel();
    rmSync(join(workspace, "w2"), { recursive: true });
  });

  test("a burst beyond the queue is reported as dropped, not kept", async () => {
    mkdirSync(join(workspace, "w3"));
    const { sse } = await watch("path=w3");
    // The queue holds 8 changes here; the reader reads nothing while 200 files appear
    // (synchronously: the watcher takes them all in its next poll).
    for (let i = 0; i < 200; i++) writeFileSync(join(workspace, `w3/f${i}`), "");
    let seen = 0;
    let counted = 0;
    const reasons: string[] = [];
    for (;;) {
      const e = await sse!.next();
      if (!e) throw new Error("stream ended");
      if (e.event === "change" && e.data.path === "w3/sentinel") break;
      if (e.event === "change" && e.data.type === "created") seen++;
      if (e.event === "dropped") {
        reasons.push(e.data.reason);
        counted += e.data.count;
        // Drained up to here: a change made now is kept, and ends the reading.
        if (reasons.length === 1) writeFileSync(join(workspace, "w3/sentinel"), "");
      }
    }
    expect(reasons).toEqual(["queue_full"]);
    expect(counted).toBeGreaterThan(0);
    // Every creation was either seen or counted (modifications, if any, are counted too, so at least 200).
    expect(seen + counted).toBeGreaterThanOrEqual(200);
    await sse!.cancel();
    rmSync(join(workspace, "w3"), { recursive: true });
  });

  test("paths are checked like every file route; at most SHIP_MAX_WATCHES at once", async () => {
    const escaping = await call("/filesystem/watch?path=../");
    expect([escaping.status, ((await escaping.json()) as any).error.code]).toEqual([400, "invalid_path"]);
    writeFileSync(join(workspace, "plain.txt"), "");
    const file = await call("/filesystem/watch?path=plain.txt");
    expect([file.status, ((await file.json()) as any).error.code]).toEqual([400, "validation_error"]);
    const missing = await call("/filesystem/watch?path=nope");
    expect([missing.status, ((await missing.json()) as any).error.code]).toEqual([404, "file_not_found"]);
    const unauth = await fetch(`http://${base}/filesystem/watch`);
    expect(unauth.status).toBe(401);
    const open = [await watch("path=."), await watch("path=."), await watch("path=.")];
    const fourth = await call("/filesystem/watch?path=.");
    expect(fourth.status).toBe(429);
    await fourth.body?.cancel();
    for (const w of open) await w.sse!.cancel();
    await pollUntil(
      async () => {
        const r = await call("/filesystem/watch?path=.");
        await r.body?.cancel();
        return r.status;
      },
      (s) => s === 200,
      10_000,
    );
    rmSync(join(workspace, "plain.txt"));
  });
});
