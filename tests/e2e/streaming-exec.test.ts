/**
 * Streamed execs through Bay on real Docker with the real Ship image
 * (`Accept: text/event-stream` on python/exec, shell/exec and code/exec): events pass
 * through as they happen, the last one is the JSON body or an error in Bay's error
 * model, a client that goes away interrupts the code, and a runtime that dies
 * mid-stream ends the stream with a ship_error event instead of a truncated body.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { zErrorBody, zPythonExecResult, zShellExecResult } from "../../src/bay/api/generated/index.ts";
import type { TestBay } from "../support/harness.ts";
import { EventReader, type SseEvent, streamText } from "../support/sse.ts";
import { containersOf, docker, profiles, py, SHIP_IMAGE, sh, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";
import { pollUntil } from "../support/harness.ts";
import { within } from "../support/within.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay), {
  config: {
    profiles: profiles(
      { id: "python-default", image: SHIP_IMAGE },
      // An output cap above what the buffers on the way hold: below it, only backpressure can stop the kernel.
      { id: "big-output", image: SHIP_IMAGE, env: { SHIP_MAX_OUTPUT_BYTES: String(128 * 1024 * 1024) } },
    ),
  },
});

/** Bay served over a real socket: a client that closes its connection is what Bay sees going away. */
let server: ReturnType<typeof Bun.serve> | undefined;
beforeAll(() => {
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req, srv) => t.bay.app.fetch(req, srv), idleTimeout: 30 });
});
afterAll(() => server?.stop(true));

const tag = () => crypto.randomUUID().slice(0, 8);

function stream(id: string, route: string, body: unknown, owner = "alice"): Promise<Response> {
  return t.call("POST", `/v1/sandboxes/${id}/${route}`, { body, owner, headers: { accept: "text/event-stream" } });
}

/** The same request over HTTP to the served Bay, abortable like a client that hangs up. */
function streamOverHttp(id: string, route: string, body: unknown, signal: AbortSignal): Promise<Response> {
  return fetch(`http://127.0.0.1:${server!.port}/v1/sandboxes/${id}/${route}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", accept: "text/event-stream", "x-owner": "alice" },
    signal,
  });
}

const release = (id: string, file: string) => t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: file, content: "" } });

function lastIsResult(events: SseEvent[]): SseEvent {
  const last = events.at(-1)!;
  expect(last.event).toBe("result");
  expect(events.filter((e) => e.event === "result" || e.event === "error")).toHaveLength(1);
  return last;
}

describe("streamed execs through Bay", () => {
  test("python: the first chunk arrives while the code runs (even on a cold sandbox); the result equals the JSON body", async () => {
    await withSandbox(t, async (id) => {
      const go = `go-${tag()}`;
      const code =
        "import os, sys, time\nprint('first', flush=True)\nprint('warn', file=sys.stderr, flush=True)\n" +
        `while not os.path.exists(${JSON.stringify(go)}):\n    time.sleep(0.02)\n` +
        "print('second')\nfrom IPython.display import HTML, display\ndisplay(HTML('<b>t</b>'))\n6 * 7";
      // Cold: this one request starts the container, then streams.
      const res = await stream(id, "python/exec", { code, timeout: 120 });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/event-stream");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      const requestId = res.headers.get("x-request-id");
      expect(requestId).toBeTruthy();
      const events = new EventReader(res);
      const early = await events.until((e) => e.event === "stdout" && e.data.text.includes("first"));
      expect((await release(id, go)).status).toBe(200);
      const all = [...early, ...(await events.rest())];
      const result = lastIsResult(all);
      expect(zPythonExecResult.safeParse(result.data).success).toBe(true);
      expect(result.data).toMatchObject({ success: true, output: "first\nwarn\nsecond\n42\n", error: null });
      expect(streamText(all, "stdout")).toBe("first\nsecond\n");
      expect(streamText(all, "stderr")).toBe("warn\n");
      expect(all.find((e) => e.event === "display")?.data.data["text/html"]).toBe("<b>t</b>");

      // The same code without streaming answers the same body (but for the execution count).
      const plain = await py(t, id, code.replace(`while not os.path.exists(${JSON.stringify(go)}):\n    time.sleep(0.02)\n`, ""));
      expect({ ...plain.body, execution_count: 0 }).toEqual({ ...result.data, execution_count: 0 });
    });
  });

  test("shell and code/exec stream too; a heartbeat comment passes through while the code waits", async () => {
    await withSandbox(t, async (id) => {
      const go = `go-${tag()}`;
      const res = await stream(id, "shell/exec", {
        command: `echo one; echo two >&2; while [ ! -e ${go} ]; do sleep 0.1; done; echo three`,
        timeout: 120,
      });
      expect(res.status).toBe(200);
      const events = new EventReader(res);
      const early = await events.until((e) => e.event === "stdout" && e.data.text.includes("one"));
      // Ship sends a comment every 10 s: one reaches the client through Bay while the command waits.
      const waiting = await events.untilComment((c) => c === "ping");
      expect((await release(id, go)).status).toBe(200);
      const all = [...early, ...waiting, ...(await events.rest())];
      const result = lastIsResult(all);
      expect(zShellExecResult.safeParse(result.data).success).toBe(true);
      expect(result.data).toEqual({
        success: true,
        output: "one\nthree\n",
        error: "two\n",
        exit_code: 0,
        truncated: false,
        process_id: null,
      });

      const js = await stream(id, "code/exec", { language: "javascript", code: "console.log('a')\nconsole.error('b')\n40 + 2" });
      const jsEvents = await new EventReader(js).rest();
      expect(lastIsResult(jsEvents).data).toMatchObject({ success: true, output: "a\nb\n42\n" });
      expect(streamText(jsEvents, "stderr")).toBe("b\n");
    });
  });

  test("a timeout ends the stream with an error event in Bay's error model (request id, typed details)", async () => {
    await withSandbox(t, async (id) => {
      const res = await stream(id, "python/exec", { code: "import time\nprint('before', flush=True)\ntime.sleep(60)", timeout: 1 });
      expect(res.status).toBe(200);
      const all = await new EventReader(res).rest();
      const last = all.at(-1)!;
      expect(last.event).toBe("error");
      const parsed = zErrorBody.safeParse(last.data);
      expect(parsed.success).toBe(true);
      expect(last.data.error).toMatchObject({ code: "timeout", request_id: res.headers.get("x-request-id") });
      expect(last.data.error.details).toMatchObject({ timeout: 1, kernel_restarted: false });
      expect(last.data.error.details.output).toContain("before");
    });
  });

  test("a client that hangs up interrupts the code: Python gets KeyboardInterrupt, the shell command's group is killed", async () => {
    await withSandbox(t, async (id) => {
      expect((await py(t, id, "1")).status).toBe(200);
      const abort = new AbortController();
      const res = await streamOverHttp(
        id,
        "python/exec",
        {
          code: "import time\nhung_up = False\ntry:\n    print('started', flush=True)\n    time.sleep(600)\nexcept KeyboardInterrupt:\n    hung_up = True\n    raise",
          timeout: 300,
        },
        abort.signal,
      );
      const events = new EventReader(res);
      await events.until((e) => e.event === "stdout" && e.data.text.includes("started"));
      abort.abort();
      // Queued behind the abandoned exec: it would wait ten minutes had the code not been interrupted.
      const after = await py(t, id, "hung_up", 60);
      expect(after.status).toBe(200);
      expect(after.body.output.trim()).toBe("True");

      const marker = `${700 + Math.floor(Math.random() * 200)}.25`;
      const shellAbort = new AbortController();
      const shell = await streamOverHttp(id, "shell/exec", { command: `echo started; sleep ${marker}`, timeout: 300 }, shellAbort.signal);
      const shellEvents = new EventReader(shell);
      await shellEvents.until((e) => e.event === "stdout" && e.data.text.includes("started"));
      shellAbort.abort();
      await pollUntil(
        async () => (await sh(t, id, { command: `pgrep -fc '[s]leep ${marker}' || true` })).body.output.trim(),
        (n) => n === "0",
        30_000,
        "the command's sleep to be killed",
      );
    });
  });

  test("the runtime dying mid-stream ends the stream with a ship_error event, not a cut body", async () => {
    await withSandbox(t, async (id) => {
      const res = await stream(id, "python/exec", { code: "import time\nprint('started', flush=True)\ntime.sleep(120)", timeout: 300 });
      const events = new EventReader(res);
      await events.until((e) => e.event === "stdout" && e.data.text.includes("started"));
      const [container] = await containersOf(t, id);
      expect(container).toBeDefined();
      await docker.getContainer(container!.id).kill();
      const rest = await events.rest();
      const last = rest.at(-1)!;
      expect(last.event).toBe("error");
      expect(zErrorBody.safeParse(last.data).success).toBe(true);
      expect(last.data.error.code).toBe("ship_error");
      expect(last.data.error.request_id).toBe(res.headers.get("x-request-id"));
      expect(["connection_lost", "unreachable"]).toContain(last.data.error.details.reason);
      // The next call notices the dead runtime and starts a fresh one.
      const next = await py(t, id, "1 + 1", 60);
      expect(next.status).toBe(200);
      expect(next.body.output).toBe("2\n");
    });
  });

  test("a client that stops reading stops the kernel: nothing piles up in Ship or Bay, and it resumes", async () => {
    await withSandbox(
      t,
      async (id) => {
        await py(t, id, "1");
        const shipRssMiB = async () =>
          Number((await sh(t, id, { command: "ps -o rss= -p $(pgrep -o -x ship)" })).body.output.trim()) / 1024;
        const progress = async () => Number((await sh(t, id, { command: "cat progress 2>/dev/null || echo 0" })).body.output.trim());
        const before = await shipRssMiB();
        const res = await stream(id, "python/exec", {
          // The count is replaced atomically: a reader never sees the file empty mid-write.
          code: "import os\nn = 0\nwhile True:\n    print('x' * 1000)\n    n += 1\n    if n % 1000 == 0:\n        open('progress.tmp', 'w').write(str(n))\n        os.replace('progress.tmp', 'progress')",
          timeout: 300,
        });
        const events = new EventReader(res);
        // Each stage is bounded and says where it stood: a hang fails with its state, not as a test timeout.
        const state = async () =>
          `kernel at ${await progress()} lines; this process (Bay) RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`;
        await within(
          30_000,
          "the first stdout event",
          events.until((e) => e.event === "stdout"),
        );
        // The client reads nothing more. Without backpressure the loop would run on past the 128 MiB cap (and never stall).
        let stalledAt = -1;
        const deadline = Date.now() + 60_000;
        for (let last = await progress(); ; ) {
          await Bun.sleep(1000);
          const now = await progress();
          if (now === last && now > 0) {
            stalledAt = now;
            break;
          }
          if (Date.now() > deadline) throw new Error(`the kernel never stalled (${await state()})`);
          last = now;
        }
        const grown = (await shipRssMiB()) - before;
        console.log(`[backpressure] kernel stalled after ~${stalledAt} KiB of output; Ship's RSS grew ${grown.toFixed(1)} MiB`);
        // Every buffer on the way together: driver queue, pipe, Ship's stream, one event in Bay's relay, and the
        // sockets Ship → docker-proxy → Bay, whose receive buffers the kernel may autotune up to tcp_rmem's
        // maximum (32 MiB here) each: that, not Ship or Bay, is most of it. Ship itself holds next to nothing.
        expect(stalledAt).toBeLessThan(96 * 1024);
        expect(grown).toBeLessThan(32);
        // Reading again lets it go on: more comes than was waiting on the way.
        let read = 0;
        const resumed = events.until((e) => (read += e.event === "stdout" ? e.data.text.length : 0) > (stalledAt + 2048) * 1001);
        await within(60_000, "reading again", resumed).catch(async (e) => {
          throw new Error(`${(e as Error).message}: read ${read} bytes after the stall at ${stalledAt} lines (${await state()})`);
        });
        expect(await progress()).toBeGreaterThan(stalledAt);
        await events.cancel();
        // The cancelled stream interrupts the loop; the next cell runs in the same kernel.
        const after = await within(75_000, "the cell after the cancel", py(t, id, "n > 0", 60)).catch(async (e) => {
          throw new Error(`${(e as Error).message} (${await state()})`);
        });
        expect(after.body).toMatchObject({ output: "True\n", kernel_restarted: false });
      },
      "big-output",
    );
  }, 300_000);

  test("what fails before the run keeps its status and JSON error: bad body, another owner's sandbox, unknown context", async () => {
    await withSandbox(t, async (id) => {
      const bad = await stream(id, "python/exec", { code: "" });
      expect(bad.status).toBe(400);
      expect(bad.headers.get("content-type")).toContain("application/json");
      const stranger = await stream(id, "python/exec", { code: "1" }, "mallory");
      expect(stranger.status).toBe(404);
      expect(((await stranger.json()) as any).error.code).toBe("not_found");
      const noContext = await stream(id, "code/exec", { code: "1", context_id: "ctx-nowhere" });
      expect(noContext.status).toBe(404);
      expect(noContext.headers.get("content-type")).toContain("application/json");
      expect(((await noContext.json()) as any).error.details).toEqual({ kind: "context", id: "ctx-nowhere" });
    });
  });
});
