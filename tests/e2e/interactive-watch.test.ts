/**
 * File watch through Bay on real Docker: changes made through Bay's own file
 * routes and by commands in the sandbox arrive as events; a burst the reader
 * does not take is reported as dropped; paths are checked before any container
 * starts; another owner gets 404; a delete ends the stream with an error event.
 */
import { describe, expect, test } from "bun:test";
import { assertContractErrorBody } from "../support/error-contract.ts";
import type { TestBay } from "../support/harness.ts";
import { SseReader } from "../support/sse.ts";
import { containersOf, newSandbox, sh, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => {
  t = bay;
});

async function watch(id: string, query: string): Promise<SseReader> {
  const res = await t.call("GET", `/v1/sandboxes/${id}/filesystem/watch?${query}`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("text/event-stream");
  const sse = new SseReader(res);
  expect((await sse.until("ready")).data).toMatchObject({ path: expect.any(String) });
  return sse;
}

/**
 * The next `n` changes under `under` that are not `modified` (how many writes a
 * command makes is its own business), other events as `{event: data}`.
 */
async function changes(sse: SseReader, n: number, under: string): Promise<any[]> {
  const out: any[] = [];
  while (out.length < n) {
    const e = await sse.next();
    if (!e) throw new Error(`stream ended after ${JSON.stringify(out)}`);
    if (e.event !== "change") out.push({ [e.event]: e.data });
    else if (e.data.path.startsWith(under) && e.data.type !== "modified") out.push(e.data);
  }
  return out;
}

describe("file watch through Bay", () => {
  test("changes made through Bay and inside the sandbox arrive as they happen", async () => {
    await withSandbox(t, async (id) => {
      expect((await sh(t, id, { command: "mkdir -p proj" })).status).toBe(200);
      const sse = await watch(id, "path=proj&recursive=true");
      // The same directory watched without recursion, at the same time.
      const flat = await watch(id, "path=proj");
      await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "proj/notes.txt", content: "hello" } });
      expect(await changes(sse, 1, "proj/")).toEqual([{ type: "created", path: "proj/notes.txt", is_dir: false }]);
      await sh(t, id, { command: "mkdir proj/src" });
      // A new directory is watched when its creation is seen (before the client hears of it):
      // what happens in it before then is reported by the scan that follows, as created.
      expect(await changes(sse, 1, "proj/")).toEqual([{ type: "created", path: "proj/src", is_dir: true }]);
      await sh(t, id, { command: "mv proj/notes.txt proj/src/renamed.txt && rm proj/src/renamed.txt && touch proj/end" });
      expect(await changes(sse, 3, "proj/")).toEqual([
        { type: "renamed", path: "proj/src/renamed.txt", old_path: "proj/notes.txt", is_dir: false },
        { type: "deleted", path: "proj/src/renamed.txt", is_dir: false },
        { type: "created", path: "proj/end", is_dir: false },
      ]);
      // Without recursion, a move into a subdirectory is the file leaving; what happens inside it is not seen.
      expect(await changes(flat, 4, "proj/")).toEqual([
        { type: "created", path: "proj/notes.txt", is_dir: false },
        { type: "created", path: "proj/src", is_dir: true },
        { type: "deleted", path: "proj/notes.txt", is_dir: false },
        { type: "created", path: "proj/end", is_dir: false },
      ]);
      await sse.cancel();
      await flat.cancel();
    });
  });

  test("a recursive watch that meets a directory the sandbox's user may not read says so and goes on: the events after it arrive", async () => {
    await withSandbox(t, async (id) => {
      expect((await sh(t, id, { command: "mkdir -p proj" })).status).toBe(200);
      const sse = await watch(id, "path=proj&recursive=true");
      // One command: both changes come in one read of the kernel's queue, or in two.
      expect((await sh(t, id, { command: "mkdir -m 000 proj/locked && touch proj/after" })).status).toBe(200);
      // The reader is told, once, that changes inside the locked directory are not seen. A directory
      // that came in is walked at the end of the poll that read it: the notice follows that poll's changes.
      const seen = await changes(sse, 3, "proj/");
      expect(seen[0]).toEqual({ type: "created", path: "proj/locked", is_dir: true });
      expect(seen.slice(1)).toContainEqual({ dropped: { count: null, reason: "unwatchable" } });
      expect(seen.slice(1)).toContainEqual({ type: "created", path: "proj/after", is_dir: false });
      await sh(t, id, { command: "touch proj/later" });
      expect(await changes(sse, 1, "proj/")).toEqual([{ type: "created", path: "proj/later", is_dir: false }]);
      // Made readable, it is walked again: what it holds is reported as created, and what happens in it from then on is seen.
      expect((await sh(t, id, { command: "chmod 755 proj/locked && touch proj/locked/inside" })).status).toBe(200);
      expect(await changes(sse, 1, "proj/")).toEqual([{ type: "created", path: "proj/locked/inside", is_dir: false }]);
      await sh(t, id, { command: "touch proj/locked/then" });
      expect(await changes(sse, 1, "proj/")).toEqual([{ type: "created", path: "proj/locked/then", is_dir: false }]);
      await sse.cancel();
      // A directory that may be listed but not entered (444): what is below it cannot be watched, and the reader is told.
      expect((await sh(t, id, { command: "mkdir -p ro/top/sub && chmod 444 ro/top" })).status).toBe(200);
      const listed = await watch(id, "path=ro&recursive=true");
      await sh(t, id, { command: "touch ro/after" });
      expect(await changes(listed, 2, "ro/")).toEqual([
        { dropped: { count: null, reason: "unwatchable" } },
        { type: "created", path: "ro/after", is_dir: false },
      ]);
      // Once it may be entered (a change of the directory's own attributes), what is below it is watched.
      expect((await sh(t, id, { command: "chmod 755 ro/top && touch ro/top/sub/x" })).status).toBe(200);
      expect(await changes(listed, 1, "ro/")).toEqual([{ type: "created", path: "ro/top/sub/x", is_dir: false }]);
      await sh(t, id, { command: "touch ro/top/sub/y" });
      expect(await changes(listed, 1, "ro/")).toEqual([{ type: "created", path: "ro/top/sub/y", is_dir: false }]);
      await listed.cancel();
    });
  });

  test("a locked directory walked again: renamed while locked, swapped for a symlink out, or its attributes stormed, it leads nowhere outside and Ship keeps answering", async () => {
    await withSandbox(t, async (id) => {
      expect((await sh(t, id, { command: "mkdir -p w/h /tmp/outside && mkdir -m 000 w/h/a w/h/b w/h/c" })).status).toBe(200);
      const sse = await watch(id, "path=w&recursive=true");
      await sh(t, id, { command: "touch w/start" });
      expect(await changes(sse, 2, "w/")).toEqual([
        { dropped: { count: null, reason: "unwatchable" } },
        { type: "created", path: "w/start", is_dir: false },
      ]);
      // Renamed while locked, then opened: walked where it is now.
      await sh(t, id, { command: "mv w/h/a w/h/a2 && chmod 755 w/h/a2 && touch w/h/a2/in0" });
      expect(await changes(sse, 2, "w/")).toEqual([
        { type: "renamed", path: "w/h/a2", old_path: "w/h/a", is_dir: true },
        { type: "created", path: "w/h/a2/in0", is_dir: false },
      ]);
      // Swapped for a symlink to a directory outside, whose attributes then change, as do the link's: never walked.
      await sh(t, id, { command: "rmdir w/h/b && ln -s /tmp/outside w/h/b && chmod 700 /tmp/outside && touch -h w/h/b" });
      // Stormed while it stays locked, with an exec meanwhile: its retries are spaced out, and Ship answers.
      const [storm, py] = await Promise.all([
        sh(t, id, { command: "for i in $(seq 1 3000); do chmod 000 w/h/c; done", timeout: 120 }),
        t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "import time; time.sleep(0.5); 6*7" } }),
      ]);
      expect(storm.status).toBe(200);
      expect(py.status).toBe(200);
      expect((py.body as { output: string }).output).toContain("42");
      await sh(t, id, { command: "touch /tmp/outside/x w/h/a2/in1 w/end" });
      expect(await changes(sse, 4, "w/")).toEqual([
        { type: "deleted", path: "w/h/b", is_dir: true },
        { type: "created", path: "w/h/b", is_dir: false },
        { type: "created", path: "w/h/a2/in1", is_dir: false },
        { type: "created", path: "w/end", is_dir: false },
      ]);
      await sse.cancel();
    });
  });

  test("a burst the reader does not take is reported as dropped, and every change is either seen or counted", async () => {
    await withSandbox(t, async (id) => {
      await sh(t, id, { command: "mkdir -p burst" });
      const sse = await watch(id, "path=burst");
      // 20000 files against a queue of 1024, while this reader reads nothing until the command is done:
      // the runtime takes the kernel's events every 50 ms, far more than the queue holds.
      const N = 20_000;
      const r = await sh(t, id, { command: `cd burst && seq -f 'f%g' ${N} | xargs touch`, timeout: 120 });
      expect(r.status).toBe(200);
      let seen = 0;
      let counted = 0;
      const reasons = new Set<string>();
      let sentinel = false;
      let asked = false;
      while (!sentinel) {
        const e = await sse.next();
        if (!e) throw new Error("stream ended");
        if (e.event === "change" && e.data.path === "burst/sentinel") sentinel = true;
        else if (e.event === "change") {
          expect(e.data).toMatchObject({ type: "created", is_dir: false });
          seen++;
        } else if (e.event === "dropped") {
          reasons.add(e.data.reason);
          counted += e.data.count ?? 0;
          // The queue has been drained up to here: a change made now is kept, and ends the reading.
          if (!asked) {
            asked = true;
            await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "burst/sentinel", content: "" } });
          }
        }
      }
      expect(reasons.size).toBeGreaterThan(0);
      for (const reason of reasons) expect(["queue_full", "kernel_overflow"]).toContain(reason);
      // Dropped changes that were counted add up with the ones seen; only the kernel's overflow has no count.
      if (!reasons.has("kernel_overflow")) expect(seen + counted).toBe(N);
      else expect(seen + counted).toBeLessThan(N);
      await sse.cancel();
    });
  });

  test("bad input: escaping paths and odd bytes 400 before any container, a symlink out 400, a file 400, missing 404, another owner 404", async () => {
    const id = await newSandbox(t);
    try {
      const hostile = [
        "../etc",
        "/etc",
        "proj/../../etc",
        "~/x",
        "a%2F..%2F..",
        "%2e%2e",
        "a\\b",
        "a\u0000b",
        "\u001b[31mred",
        "x\u007f",
        "x".repeat(256),
        "a/".repeat(200),
        "é".repeat(2000),
      ];
      for (const path of hostile) {
        const r = await t.json("GET", `/v1/sandboxes/${id}/filesystem/watch?path=${encodeURIComponent(path)}&recursive=true`);
        expect([path.slice(0, 40), r.status, r.body.error?.code]).toEqual([path.slice(0, 40), 400, "invalid_path"]);
        assertContractErrorBody(r.status, r.body);
      }
      expect(await containersOf(t, id)).toEqual([]);
      // Bytes that are not UTF-8 in the query decode to U+FFFD: a plain (missing) name, not an escape.
      const notUtf8 = await t.json("GET", `/v1/sandboxes/${id}/filesystem/watch?path=x%FF%FE`);
      expect([notUtf8.status, notUtf8.body.error.code]).toEqual([404, "file_not_found"]);

      // A symlink that leads out of /workspace is refused by the runtime; one that stays inside is watched where it leads.
      expect((await sh(t, id, { command: "mkdir -p real && ln -s /etc out && ln -s real in" })).status).toBe(200);
      const out = await t.json("GET", `/v1/sandboxes/${id}/filesystem/watch?path=out`);
      expect([out.status, out.body.error.code]).toEqual([400, "invalid_path"]);
      assertContractErrorBody(out.status, out.body);
      const inside = await watch(id, "path=in");
      await sh(t, id, { command: "touch real/seen" });
      expect(await changes(inside, 1, "")).toEqual([{ type: "created", path: "real/seen", is_dir: false }]);
      await inside.cancel();
      const bob = await t.json("GET", `/v1/sandboxes/${id}/filesystem/watch`, { owner: "bob" });
      expect([bob.status, bob.body.error.code]).toEqual([404, "not_found"]);
      await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "f.txt", content: "" } });
      const file = await t.json("GET", `/v1/sandboxes/${id}/filesystem/watch?path=f.txt`);
      expect([file.status, file.body.error.code]).toEqual([400, "validation_error"]);
      const missing = await t.json("GET", `/v1/sandboxes/${id}/filesystem/watch?path=nope`);
      expect([missing.status, missing.body.error.code]).toEqual([404, "file_not_found"]);
      const bad = await t.json("GET", `/v1/sandboxes/${id}/filesystem/watch?recursive=maybe`);
      expect(bad.status).toBe(400);
      for (const r of [bob, file, missing, bad]) assertContractErrorBody(r.status, r.body);

      // A delete ends an open watch with an error event (not_found), not a cut body.
      const sse = await watch(id, "path=.");
      expect((await t.json("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
      const last = (await sse.rest()).at(-1)!;
      expect(last.event).toBe("error");
      expect(last.data.error).toMatchObject({ code: "not_found", details: { kind: "sandbox", id } });
      assertContractErrorBody(404, last.data);
    } finally {
      await t.call("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
    }
  });
});
