/**
 * Background processes with I/O through Bay on real Docker: start with stdin,
 * write, read from an offset, follow over SSE (first event while it runs),
 * reattach after a disconnect, signals, the ring for a reader that fell behind,
 * cleanup when compute stops, and the bad input: another owner, unknown ids,
 * offsets past the end, oversized and odd writes.
 */
import { describe, expect, test } from "bun:test";
import { pollUntil, type TestBay } from "../support/harness.ts";
import { SseReader } from "../support/sse.ts";
import { assertContractErrorBody } from "../support/error-contract.ts";
import { sh, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => {
  t = bay;
});

const base = (id: string, pid: string) => `/v1/sandboxes/${id}/shell/processes/${pid}`;
const start = async (id: string, command: string, stdin = false) => {
  const r = await sh(t, id, { command, background: true, ...(stdin ? { stdin: true } : {}) } as never);
  expect(r.status).toBe(200);
  return r.body.process_id as string;
};
const detail = async (id: string, pid: string) => (await t.json("GET", base(id, pid))).body;
const ended = (id: string, pid: string) =>
  pollUntil(
    () => detail(id, pid),
    (p) => p.status !== "running",
    60_000,
    `process ${pid} to end`,
  );
const follow = async (id: string, pid: string, offset = 0, owner = "alice") => {
  const res = await t.call("GET", `${base(id, pid)}/output?offset=${offset}`, { headers: { accept: "text/event-stream" }, owner });
  return res;
};

describe("background processes through Bay", () => {
  test("stdin, output by offset, SSE follow while it runs, reattach, exit code kept", async () => {
    await withSandbox(t, async (id) => {
      const pid = await start(id, 'echo ready; while IFS= read -r l; do echo "got:$l"; done; echo bye >&2; exit 5', true);
      const res = await follow(id, pid);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toStartWith("text/event-stream");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(res.headers.get("x-request-id")).toBeTruthy();
      const sse = new SseReader(res);
      // The first event arrives while the process still runs (it waits for stdin).
      const first = await sse.until("output");
      expect(first.data).toEqual({ stream: "stdout", offset: 0, next_offset: 6, data: "ready\n" });
      expect((await detail(id, pid)).status).toBe("running");
      const w = await t.json("POST", `${base(id, pid)}/stdin`, { body: { data: "one\n" } });
      expect(w.body).toEqual({ process_id: pid, written: 4, stdin_open: true });
      expect((await sse.until("output")).data.data).toBe("got:one\n");
      // The client goes away; the process does not.
      await sse.cancel();
      await t.json("POST", `${base(id, pid)}/stdin`, { body: { data: "two\n", eof: true } });
      const done = await ended(id, pid);
      expect(done).toMatchObject({ status: "exited", exit_code: 5, signal: null, stdin_open: false });
      // Reattach from where the first reader stopped: the rest, nothing twice.
      const again = new SseReader(await follow(id, pid, 14));
      const events = await again.rest();
      expect(events.map((e) => [e.event, e.data.data ?? e.data.exit_code])).toEqual([
        ["output", "got:two\n"],
        ["output", "bye\n"],
        ["exit", 5],
      ]);
      const page = await t.json("GET", `${base(id, pid)}/output?offset=0`);
      expect(page.body.chunks.map((c: any) => c.data).join("")).toBe("ready\ngot:one\ngot:two\nbye\n");
      expect(page.body).toMatchObject({ eof: true, skipped: 0, status: "exited", exit_code: 5 });
    });
  });

  test("signals, and odd bytes in and out", async () => {
    await withSandbox(t, async (id) => {
      const pid = await start(id, "trap 'echo term; exit 9' TERM; echo up; while :; do sleep 0.05; done");
      await pollUntil(
        () => detail(id, pid),
        (p) => p.output.includes("up"),
        30_000,
      );
      expect((await t.json("POST", `${base(id, pid)}/signal`, { body: { signal: "SIGTERM" } })).status).toBe(200);
      expect(await ended(id, pid)).toMatchObject({ status: "exited", exit_code: 9 });

      const cat = await start(id, "cat", true);
      const bytes = Buffer.from([0, 0xff, 0xfe, 10, 0xc3]);
      await t.json("POST", `${base(id, cat)}/stdin`, { body: { data: bytes.toString("base64"), encoding: "base64", eof: true } });
      await ended(id, cat);
      const page = await t.json("GET", `${base(id, cat)}/output?encoding=base64`);
      expect(Buffer.concat(page.body.chunks.map((c: any) => Buffer.from(c.data, "base64")))).toEqual(bytes);
    });
  });

  test("a reader that fell behind the 1 MiB ring is told how many bytes it missed", async () => {
    await withSandbox(t, async (id) => {
      const pid = await start(id, "head -c 3000000 /dev/zero | tr '\\0' z; echo; echo last");
      await ended(id, pid);
      const page = await t.json("GET", `${base(id, pid)}/output?offset=0`);
      const total = 3_000_000 + 1 + 5;
      expect(page.body).toMatchObject({ offset: total - 1024 * 1024, skipped: total - 1024 * 1024, next_offset: total, eof: true });
      const sse = new SseReader(await follow(id, pid, 0));
      expect(await sse.next()).toEqual({
        event: "dropped",
        data: { offset: 0, next_offset: total - 1024 * 1024, bytes: total - 1024 * 1024 },
      });
      expect((await sse.rest()).at(-1)?.event).toBe("exit");
    });
  });

  test("bad input: another owner 404, unknown 404, offset past the end 400, oversized 413, no stdin 409, bad base64 400", async () => {
    await withSandbox(t, async (id) => {
      const pid = await start(id, "sleep 120");
      const bob = await follow(id, pid, 0, "bob");
      expect(bob.status).toBe(404);
      expect((await t.json("POST", `${base(id, pid)}/stdin`, { body: { data: "x" }, owner: "bob" })).status).toBe(404);
      expect((await t.json("POST", `${base(id, pid)}/signal`, { body: { signal: "SIGKILL" }, owner: "bob" })).status).toBe(404);
      const unknown = await t.json("GET", `${base(id, "proc-nope")}/output`);
      expect([unknown.status, unknown.body.error.code, unknown.body.error.details]).toEqual([
        404,
        "not_found",
        { process_id: "proc-nope" },
      ]);
      const past = await t.json("GET", `${base(id, pid)}/output?offset=99`);
      expect([past.status, past.body.error.code]).toEqual([400, "validation_error"]);
      const negative = await t.json("GET", `${base(id, pid)}/output?offset=-1`);
      expect(negative.status).toBe(400);
      const noStdin = await t.json("POST", `${base(id, pid)}/stdin`, { body: { data: "x" } });
      expect([noStdin.status, noStdin.body.error.details.reason]).toEqual([409, "no_stdin"]);
      const cat = await start(id, "cat >/dev/null", true);
      const big = await t.json("POST", `${base(id, cat)}/stdin`, {
        body: { data: Buffer.alloc(1024 * 1024 + 1).toString("base64"), encoding: "base64" },
      });
      // Over Bay's JSON body limit or the runtime's 1 MiB of data: 413 either way.
      expect([big.status, big.body.error.code]).toEqual([413, "payload_too_large"]);
      const bad = await t.json("POST", `${base(id, cat)}/stdin`, { body: { data: "@@@", encoding: "base64" } });
      expect([bad.status, bad.body.error.code]).toEqual([400, "validation_error"]);
      const extra = await t.json("POST", `${base(id, cat)}/stdin`, { body: { data: "x", nope: 1 } });
      expect(extra.status).toBe(400);
      for (const r of [unknown, past, noStdin, big, bad]) assertContractErrorBody(r.status, r.body);
    });
  });

  test("list and kill: a follower sees the kill as its last event; another sandbox of the same owner knows nothing of the id", async () => {
    await withSandbox(t, async (id) => {
      const pid = await start(id, "echo started; exec sleep 300");
      const sse = new SseReader(await follow(id, pid));
      expect((await sse.until("output")).data.data).toBe("started\n");
      const list = await t.json("GET", `/v1/sandboxes/${id}/shell/processes`);
      expect(list.body.items).toContainEqual(
        expect.objectContaining({ process_id: pid, status: "running", stdin_open: false, signal: null }),
      );
      const killed = await t.json("DELETE", base(id, pid));
      expect(killed.body).toMatchObject({ process_id: pid, status: "killed", exit_code: null, signal: "SIGKILL" });
      const rest = await sse.rest();
      expect(rest.at(-1)).toEqual({ event: "exit", data: { status: "killed", exit_code: null, signal: "SIGKILL", next_offset: 8 } });
      await withSandbox(t, async (other) => {
        for (const r of [
          await t.json("GET", `${base(other, pid)}/output`),
          await t.json("POST", `${base(other, pid)}/stdin`, { body: { data: "x" } }),
          await t.json("POST", `${base(other, pid)}/signal`, { body: { signal: "SIGTERM" } }),
        ]) {
          expect([r.status, r.body.error.code, r.body.error.details]).toEqual([404, "not_found", { process_id: pid }]);
        }
      });
    });
  });

  test("processes end with their compute: after a stop, the old ids are gone", async () => {
    await withSandbox(t, async (id) => {
      const pid = await start(id, "sleep 300");
      const sse = new SseReader(await follow(id, pid));
      expect((await t.json("POST", `/v1/sandboxes/${id}/stop`)).status).toBe(200);
      // The open follow ends with an error event, not a cut body.
      const events = await sse.rest();
      const last = events.at(-1)!;
      expect(last.event).toBe("error");
      expect(last.data.error).toMatchObject({ code: "conflict", details: { reason: "session_ended", sandbox_id: id } });
      assertContractErrorBody(409, last.data);
      const list = await t.json("GET", `/v1/sandboxes/${id}/shell/processes`);
      expect(list.body.items).toEqual([]);
      expect((await t.json("GET", base(id, pid))).status).toBe(404);
    });
  });
});
