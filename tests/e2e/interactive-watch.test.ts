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

/** Changes until `n` of them (other than for paths the sandbox writes itself, such as .ipython) were seen. */
async function changes(sse: SseReader, n: number, under: string): Promise<any[]> {
  const out: any[] = [];
  while (out.length < n) {
    const e = await sse.next();
    if (!e) throw new Error(`stream ended after ${JSON.stringify(out)}`);
    if (e.event !== "change") out.push({ [e.event]: e.data });
    else if (e.data.path.startsWith(under)) out.push(e.data);
  }
  return out;
}

describe("file watch through Bay", () => {
  test("changes made through Bay and inside the sandbox arrive as they happen", async () => {
    await withSandbox(t, async (id) => {
      expect((await sh(t, id, { command: "mkdir -p proj" })).status).toBe(200);
      const sse = await watch(id, "path=proj&recursive=true");
      await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "proj/notes.txt", content: "hello" } });
      const got = await changes(sse, 1, "proj/");
      expect(got[0]).toEqual({ type: "created", path: "proj/notes.txt", is_dir: false });
      await sh(t, id, { command: "mkdir proj/src && mv proj/notes.txt proj/src/renamed.txt && rm proj/src/renamed.txt" });
      const more = await changes(sse, 3, "proj/");
      expect(more.filter((c) => c.type !== "modified")).toEqual([
        { type: "created", path: "proj/src", is_dir: true },
        { type: "renamed", path: "proj/src/renamed.txt", old_path: "proj/notes.txt", is_dir: false },
        { type: "deleted", path: "proj/src/renamed.txt", is_dir: false },
      ]);
      await sse.cancel();
    });
  });

  test("a burst the reader does not take is reported as dropped", async () => {
    await withSandbox(t, async (id) => {
      await sh(t, id, { command: "mkdir -p burst" });
      const sse = await watch(id, "path=burst");
      // 3000 files against a queue of 1024, while this reader reads nothing until the command is done.
      const r = await sh(t, id, { command: "cd burst && for i in $(seq 3000); do : > f$i; done", timeout: 120 });
      expect(r.status).toBe(200);
      let seen = 0;
      let dropped = 0;
      let reason = "";
      while (seen + dropped < 6000) {
        const e = await sse.next();
        if (!e) throw new Error("stream ended");
        if (e.event === "change") seen++;
        if (e.event === "dropped") {
          dropped += e.data.count ?? 6000;
          reason ||= e.data.reason;
        }
      }
      expect(dropped).toBeGreaterThan(0);
      expect(["queue_full", "kernel_overflow"]).toContain(reason);
      await sse.cancel();
    });
  });

  test("bad input: escaping paths 400 before any container, a file 400, missing 404, another owner 404", async () => {
    const id = await newSandbox(t);
    try {
      for (const path of ["../etc", "/etc", "a%2F..%2F..", "a\\b"]) {
        const r = await t.json("GET", `/v1/sandboxes/${id}/filesystem/watch?path=${encodeURIComponent(path)}`);
        expect([path, r.status, r.body.error.code]).toEqual([path, 400, "invalid_path"]);
      }
      expect(await containersOf(t, id)).toEqual([]);
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
