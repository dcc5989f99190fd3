import { expect, test } from "bun:test";
import { zPythonExecResult, zShellExecResult } from "../../../src/protocol/ship/index.ts";
import { EventReader, type SseEvent, streamText } from "../../support/sse.ts";
import { eventually, type ShipClient } from "./caller.ts";

const tag = () => crypto.randomUUID().slice(0, 8);

/** A marker file the code under test waits for: the test creates it once it has seen the first event. */
const release = (client: ShipClient, file: string) => client.json("PUT", "/filesystem/files", { path: file, content: "" });

function expectOneResultLast(events: SseEvent[]): SseEvent {
  const last = events.at(-1)!;
  expect(last.event).toBe("result");
  expect(events.filter((e) => e.event === "result" || e.event === "error")).toHaveLength(1);
  return last;
}

/** Streamed execs (Accept: text/event-stream) on every Ship target. */
export function streamCases(client: () => ShipClient): void {
  test("stream python: the first chunk arrives while the code still runs; stderr apart, display as produced, result = the JSON body", async () => {
    const go = `go-py-${tag()}`;
    const res = await client().stream("/ipython/exec", {
      code:
        "import os, sys, time\nprint('first', flush=True)\nprint('warn', file=sys.stderr, flush=True)\n" +
        `while not os.path.exists(${JSON.stringify(go)}):\n    time.sleep(0.02)\n` +
        "print('second')\nfrom IPython.display import HTML, display\ndisplay(HTML('<i>x</i>'))\n40 + 2",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = new EventReader(res);
    // The code cannot end before the file exists, and the file is written only after this.
    const early = await events.until((e) => e.event === "stdout" && e.data.text.includes("first"));
    expect((await release(client(), go)).status).toBe(200);
    const all = [...early, ...(await events.rest())];
    const result = expectOneResultLast(all);
    expect(zPythonExecResult.safeParse(result.data).success).toBe(true);
    expect(result.data).toMatchObject({ success: true, error: null, output: "first\nwarn\nsecond\n42\n", kernel_restarted: false });
    expect(streamText(all, "stdout")).toBe("first\nsecond\n");
    expect(streamText(all, "stderr")).toBe("warn\n");
    const display = all.find((e) => e.event === "display");
    expect(display?.data.data["text/html"]).toBe("<i>x</i>");
    // The display event comes after 'second' and before the result, and the result's data holds it.
    const names = all.map((e) => (e.event === "stdout" || e.event === "stderr" ? `${e.event}:${e.data.text.trim()}` : e.event));
    expect(names.indexOf("display")).toBeGreaterThan(names.indexOf("stdout:second"));
    expect(result.data.data).toEqual([
      { type: "display_data", data: display!.data.data },
      { type: "execute_result", data: { "text/plain": "42" } },
    ]);
    expect(events.comments).toContain("stream open");
    await client().shell(`rm -f ${go}`);
  });

  test("stream shell: stdout and stderr chunks as they come, then the result", async () => {
    const go = `go-sh-${tag()}`;
    const res = await client().stream("/shell/exec", {
      command: `echo first; echo oops >&2; while [ ! -e ${go} ]; do sleep 0.05; done; echo second; exit 3`,
      timeout: 120,
    });
    expect(res.status).toBe(200);
    const events = new EventReader(res);
    const early = await events.until((e) => e.event === "stdout" && e.data.text.includes("first"));
    expect((await release(client(), go)).status).toBe(200);
    const all = [...early, ...(await events.rest())];
    const result = expectOneResultLast(all);
    expect(zShellExecResult.safeParse(result.data).success).toBe(true);
    expect(result.data).toEqual({
      success: false,
      output: "first\nsecond\n",
      error: "oops\n",
      exit_code: 3,
      truncated: false,
      process_id: null,
    });
    expect(streamText(all, "stdout")).toBe("first\nsecond\n");
    expect(streamText(all, "stderr")).toBe("oops\n");
    await client().shell(`rm -f ${go}`);
  });

  test("stream code/exec in JavaScript: console output while the cell awaits, then the result", async () => {
    const go = `go-js-${tag()}`;
    const res = await client().stream("/code/exec", {
      language: "javascript",
      code: `console.log('first')\nconsole.error('warn')\nwhile (!require('node:fs').existsSync(${JSON.stringify(go)})) await Bun.sleep(20)\nconsole.log('second')\n6 * 7`,
      timeout: 120,
    });
    expect(res.status).toBe(200);
    const events = new EventReader(res);
    const early = await events.until((e) => e.event === "stdout" && e.data.text.includes("first"));
    expect((await release(client(), go)).status).toBe(200);
    const all = [...early, ...(await events.rest())];
    const result = expectOneResultLast(all);
    expect(result.data).toMatchObject({ success: true, error: null, output: "first\nwarn\nsecond\n42\n" });
    expect(streamText(all, "stdout")).toBe("first\nsecond\n");
    expect(streamText(all, "stderr")).toBe("warn\n");
    await client().shell(`rm -f ${go}`);
  });

  test("stream: a timeout ends the stream with an error event carrying the output so far; the kernel keeps its state", async () => {
    await client().python("kept_in_stream = 'yes'");
    const res = await client().stream("/ipython/exec", {
      code: "import time\nprint('before', flush=True)\nwhile True:\n    time.sleep(0.05)",
      timeout: 1,
    });
    expect(res.status).toBe(200);
    const all = await new EventReader(res).rest();
    const last = all.at(-1)!;
    expect(last.event).toBe("error");
    expect(last.data.error.code).toBe("timeout");
    expect(last.data.error.details).toMatchObject({ timeout: 1, kernel_restarted: false });
    expect(last.data.error.details.output).toContain("before");
    expect((await client().python("kept_in_stream")).body.output.trim()).toBe("'yes'");
  });

  test("stream: a Python client that goes away interrupts the running code (KeyboardInterrupt), the kernel lives on", async () => {
    const abort = new AbortController();
    const res = await client().stream(
      "/ipython/exec",
      {
        code: "import time\ngone_interrupted = False\ntry:\n    print('started', flush=True)\n    time.sleep(600)\nexcept KeyboardInterrupt:\n    gone_interrupted = True\n    raise",
        timeout: 300,
      },
      abort.signal,
    );
    const events = new EventReader(res);
    await events.until((e) => e.event === "stdout" && e.data.text.includes("started"));
    abort.abort();
    await events.cancel();
    // Runs once the abandoned exec has ended: it would wait ten minutes if the code had not been interrupted.
    const after = await client().python("gone_interrupted", 60);
    expect(after.status).toBe(200);
    expect(after.body.output.trim()).toBe("True");
    expect(after.body.kernel_restarted).toBe(false);
  });

  test("stream: a shell client that goes away kills the command's process group", async () => {
    const marker = 600 + Math.floor(Math.random() * 300);
    const abort = new AbortController();
    const res = await client().stream("/shell/exec", { command: `echo started; sleep ${marker}.5`, timeout: 300 }, abort.signal);
    const events = new EventReader(res);
    await events.until((e) => e.event === "stdout" && e.data.text.includes("started"));
    const running = await client().shell(`pgrep -fc '[s]leep ${marker}.5' || true`);
    expect(running.body.output.trim()).toBe("1");
    abort.abort();
    await events.cancel();
    await eventually(async () => {
      const left = await client().shell(`pgrep -fc '[s]leep ${marker}.5' || true`);
      return left.body.output.trim() === "0" ? true : undefined;
    }, 30_000);
  });

  test("stream: a JS client that goes away interrupts an endless loop; the context keeps its state", async () => {
    await client().code({ language: "javascript", code: "const keptJs = 'still'" });
    const abort = new AbortController();
    const res = await client().stream(
      "/code/exec",
      { language: "javascript", code: "console.log('started')\nwhile (true) {}", timeout: 300 },
      abort.signal,
    );
    const events = new EventReader(res);
    await events.until((e) => e.event === "stdout" && e.data.text.includes("started"));
    abort.abort();
    await events.cancel();
    const after = await client().code({ language: "javascript", code: "keptJs", timeout: 60 });
    expect(after.status).toBe(200);
    expect(after.body.output).toBe('"still"\n');
    expect(after.body.kernel_restarted).toBe(false);
  });

  test("stream: what is wrong before the code starts keeps its status and JSON body", async () => {
    const bad = await client().stream("/ipython/exec", { timeout: 3 });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toContain("application/json");
    expect(((await bad.json()) as any).error.code).toBe("validation_error");
    const unknown = await client().stream("/code/exec", { code: "1", context_id: "ctx-nope" });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as any).error.code).toBe("not_found");
    const badCwd = await client().stream("/shell/exec", { command: "true", cwd: "../outside" });
    expect(badCwd.status).toBe(400);
    expect(((await badCwd.json()) as any).error.code).toBe("invalid_path");
  });

  test("stream: a background start answers JSON even when a stream is asked for", async () => {
    const res = await client().stream("/shell/exec", { command: "sleep 1", background: true });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    const body = (await res.json()) as any;
    expect(typeof body.process_id).toBe("string");
    await client().json("DELETE", `/shell/processes/${body.process_id}`);
  });
}
