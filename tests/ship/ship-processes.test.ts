/**
 * Ship's background processes with stdin, signals and an output ring, and following
 * their output (SSE); Ship in-process on the host (support/interactive.ts).
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pollUntil } from "../support/harness.ts";
import { RING, workspace, client, follow, background, processDone, useInteractiveShip } from "./support/interactive.ts";

/**
 * The other end of a process's stdin as it shows in /proc/<pid>/fd: a pipe is one
 * inode for both ends; Bun gives a socket pair, whose peer's inode `ss` lists.
 */
const otherEnd = (link: string): string => {
  const [, kind, inode] = /^(pipe|socket):\[(\d+)\]$/.exec(link) ?? [];
  expect(kind, `stdin is neither a pipe nor a socket: ${link}`).toBeDefined();
  if (kind === "pipe") return link;
  const row = Bun.spawnSync(["ss", "-xaH"])
    .stdout.toString()
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .find((cols) => cols[5] === inode);
  expect(row, `ss lists no socket ${inode}`).toBeDefined();
  return `socket:[${row![7]}]`;
};

/** A descriptor's target, or "" for one closed meanwhile. */
const readlinkSafe = (path: string): string => {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
};

useInteractiveShip();

describe("background processes with I/O", () => {
  test("stdin in, output out by offset, EOF, exit code kept", async () => {
    const id = await background('while IFS= read -r line; do echo "got:$line"; done; echo bye >&2; exit 4', { stdin: true });
    const w1 = await client.json("POST", `/shell/processes/${id}/stdin`, { data: "héllo\n" });
    expect(w1).toEqual({ status: 200, body: { process_id: id, written: 7, stdin_open: true } });
    const w2 = await client.json("POST", `/shell/processes/${id}/stdin`, {
      data: Buffer.from("two\n").toString("base64"),
      encoding: "base64",
      eof: true,
    });
    expect(w2.body).toEqual({ process_id: id, written: 4, stdin_open: false });
    const done = await processDone(id);
    expect(done).toMatchObject({
      status: "exited",
      exit_code: 4,
      signal: null,
      stdin_open: false,
      output: "got:héllo\ngot:two\n",
      error: "bye\n",
    });

    const page = await client.json("GET", `/shell/processes/${id}/output`);
    expect(page.body).toMatchObject({ offset: 0, skipped: 0, eof: true, status: "exited", exit_code: 4 });
    const text = page.body.chunks.map((c: any) => c.data).join("");
    expect(text).toBe("got:héllo\ngot:two\nbye\n");
    expect(page.body.next_offset).toBe(Buffer.byteLength(text));
    // From the middle, in base64: the bytes from there on.
    const mid = await client.json("GET", `/shell/processes/${id}/output?offset=5&encoding=base64`);
    expect(Buffer.concat(mid.body.chunks.map((c: any) => Buffer.from(c.data, "base64"))).toString()).toBe(
      Buffer.from(text).subarray(5).toString(),
    );
    // At the end: nothing, and eof.
    const end = await client.json("GET", `/shell/processes/${id}/output?offset=${page.body.next_offset}`);
    expect(end.body).toMatchObject({ chunks: [], eof: true, next_offset: page.body.next_offset });
    const past = await client.json("GET", `/shell/processes/${id}/output?offset=${page.body.next_offset + 1}`);
    expect([past.status, past.body.error.code]).toEqual([400, "validation_error"]);
  });

  test("odd bytes go in and come out unchanged (base64 both ways)", async () => {
    const id = await background("cat", { stdin: true });
    const bytes = new Uint8Array([0, 1, 2, 0xff, 0xfe, 0x80, 10, 0xe2, 0x82]);
    await client.json("POST", `/shell/processes/${id}/stdin`, {
      data: Buffer.from(bytes).toString("base64"),
      encoding: "base64",
      eof: true,
    });
    await processDone(id);
    const page = await client.json("GET", `/shell/processes/${id}/output?encoding=base64`);
    expect(new Uint8Array(Buffer.concat(page.body.chunks.map((c: any) => Buffer.from(c.data, "base64"))))).toEqual(bytes);
  });

  test("stdin refusals: no stdin, closed, oversized, bad base64, stdin without background", async () => {
    const noStdin = await background("sleep 30");
    const r1 = await client.json("POST", `/shell/processes/${noStdin}/stdin`, { data: "x" });
    expect([r1.status, r1.body.error.code, r1.body.error.details.reason]).toEqual([409, "conflict", "no_stdin"]);
    await client.json("DELETE", `/shell/processes/${noStdin}`);

    const id = await background("cat >/dev/null", { stdin: true });
    const big = await client.json("POST", `/shell/processes/${id}/stdin`, {
      data: Buffer.alloc(1024 * 1024 + 1, 1).toString("base64"),
      encoding: "base64",
    });
    expect([big.status, big.body.error.code]).toEqual([413, "payload_too_large"]);
    const bad = await client.json("POST", `/shell/processes/${id}/stdin`, { data: "not base64!", encoding: "base64" });
    expect([bad.status, bad.body.error.code]).toEqual([400, "validation_error"]);
    await client.json("POST", `/shell/processes/${id}/stdin`, { data: "", eof: true });
    const closed = await client.json("POST", `/shell/processes/${id}/stdin`, { data: "late" });
    expect([closed.status, closed.body.error.details.reason]).toEqual([409, "stdin_closed"]);

    const fg = await client.shell("cat", { stdin: true });
    expect([fg.status, fg.body.error.code]).toEqual([400, "validation_error"]);
    const unknown = await client.json("POST", "/shell/processes/proc-nope/stdin", { data: "x" });
    expect([unknown.status, unknown.body.error.code]).toEqual([404, "not_found"]);
  });

  test("a running process that closed its stdin: a write is refused as stdin_closed (the pipe's EPIPE is no 500), and so is the next; Ship closes its end", async () => {
    const id = await background("sleep 0.3; exec 0<&-; sleep 30", { stdin: true });
    const { pid } = (await client.json("GET", `/shell/processes/${id}`)).body;
    // The process's stdin pipe, while it still holds it (the shell runs as the process's leader).
    const shipEnd = otherEnd(readlinkSync(`/proc/${pid}/fd/0`));
    const shipHolds = () => readdirSync("/proc/self/fd").some((fd) => readlinkSafe(`/proc/self/fd/${fd}`) === shipEnd);
    expect(shipHolds()).toBe(true);
    // The shell closes its end at once; until then a write may still land in the pipe.
    let first = await client.json("POST", `/shell/processes/${id}/stdin`, { data: "x" });
    for (let i = 0; first.status === 200 && i < 100; i++) {
      await Bun.sleep(20);
      first = await client.json("POST", `/shell/processes/${id}/stdin`, { data: "x" });
    }
    expect([first.status, first.body.error.code, first.body.error.details.reason]).toEqual([409, "conflict", "stdin_closed"]);
    const next = await client.json("POST", `/shell/processes/${id}/stdin`, { data: "y" });
    expect([next.status, next.body.error.details.reason]).toEqual([409, "stdin_closed"]);
    const item = await client.json("GET", `/shell/processes/${id}`);
    expect(item.body).toMatchObject({ status: "running", stdin_open: false });
    // Ship's end of that pipe is closed while the process runs on (it leaked until the exit):
    // Bun closes a sink's descriptor on its event loop, a moment after end() (a busy machine: CI).
    for (let i = 0; shipHolds() && i < 100; i++) await Bun.sleep(20);
    expect(shipHolds()).toBe(false);
    await client.json("DELETE", `/shell/processes/${id}`);
  });

  test("a write that timed out, then the process closes its stdin: stdin is closed, and the next writes are 409 stdin_closed", async () => {
    const id = await background("sleep 2; exec 0<&-; sleep 30", { stdin: true });
    const fill = await client.json("POST", `/shell/processes/${id}/stdin`, {
      data: Buffer.alloc(1024 * 1024 - 16, 0x61).toString("base64"),
      encoding: "base64",
      timeout: 1,
    });
    expect(fill.status).toBe(504);
    await pollUntil(
      async () => (await client.json("GET", `/shell/processes/${id}`)).body.stdin_open,
      (open) => open === false,
      10_000,
      "stdin closed after the queued bytes met EPIPE",
    );
    const next = await client.json("POST", `/shell/processes/${id}/stdin`, { data: "x" });
    expect([next.status, next.body.error?.details?.reason]).toEqual([409, "stdin_closed"]);
    await client.json("DELETE", `/shell/processes/${id}`);
  }, 30_000);

  test("a process that does not read its stdin: the write times out, and the next is refused until it is read", async () => {
    const id = await background("while [ ! -e go-read ]; do sleep 0.05; done; wc -c", { stdin: true });
    // Fill the pipe (its size is the kernel's and Bun's business) until a write has to wait.
    const MiB = 1024 * 1024;
    let accepted = 0;
    let timedOut = 0;
    for (let i = 0; i < 4 && timedOut === 0; i++) {
      const r = await client.json("POST", `/shell/processes/${id}/stdin`, {
        data: Buffer.alloc(MiB, 0x61).toString("base64"),
        encoding: "base64",
        timeout: 1,
      });
      if (r.status === 200) accepted += MiB;
      else {
        expect([r.status, r.body.error.code]).toEqual([504, "timeout"]);
        timedOut = MiB;
      }
    }
    expect(timedOut).toBe(MiB);
    const busy = await client.json("POST", `/shell/processes/${id}/stdin`, { data: "b" });
    expect([busy.status, busy.body.error.details.reason]).toEqual([409, "stdin_busy"]);
    writeFileSync(join(workspace, "go-read"), "");
    // Once the process reads, the queued bytes drain and stdin takes writes again.
    await pollUntil(
      async () => (await client.json("POST", `/shell/processes/${id}/stdin`, { data: "", eof: true })).status,
      (s) => s === 200,
      20_000,
      "stdin free again",
    );
    const done = await processDone(id);
    // The write that timed out was not lost: it stayed queued and was read.
    expect(Number(done.output.trim())).toBe(accepted + timedOut);
    rmSync(join(workspace, "go-read"));
  });

  test("a process killed with a timed-out stdin write still queued: the failed write is nobody's error (no EPIPE escapes)", async () => {
    const escaped: unknown[] = [];
    const note = (reason: unknown) => escaped.push(reason);
    process.on("unhandledRejection", note);
    try {
      const id = await background("sleep 300", { stdin: true });
      let timedOut = false;
      for (let i = 0; i < 4 && !timedOut; i++) {
        const r = await client.json("POST", `/shell/processes/${id}/stdin`, {
          data: Buffer.alloc(1024 * 1024, 0x61).toString("base64"),
          encoding: "base64",
          timeout: 1,
        });
        timedOut = r.status === 504;
      }
      expect(timedOut).toBe(true);
      expect((await client.json("POST", `/shell/processes/${id}/signal`, { signal: "SIGKILL" })).status).toBe(200);
      expect((await processDone(id)).status).toBe("killed");
      await Bun.sleep(300);
      expect(escaped.map(String)).toEqual([]);
      // Its stdin is gone with it.
      const late = await client.json("POST", `/shell/processes/${id}/stdin`, { data: "x" });
      expect([late.status, late.body.error.code]).toEqual([409, "conflict"]);
    } finally {
      process.off("unhandledRejection", note);
    }
  });

  test("signals reach the process group; a finished process is returned unchanged", async () => {
    const id = await background("trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done");
    await pollUntil(
      async () => (await client.json("GET", `/shell/processes/${id}`)).body.output,
      (o) => o.includes("ready"),
      20_000,
    );
    const sent = await client.json("POST", `/shell/processes/${id}/signal`, { signal: "SIGTERM" });
    expect(sent.status).toBe(200);
    const done = await processDone(id);
    expect(done).toMatchObject({ status: "exited", exit_code: 7, signal: null });
    expect(done.output).toContain("got-term");
    const again = await client.json("POST", `/shell/processes/${id}/signal`, { signal: "SIGKILL" });
    expect(again.body).toMatchObject({ status: "exited", exit_code: 7 });

    const killed = await background("sleep 60");
    await client.json("POST", `/shell/processes/${killed}/signal`, { signal: "SIGKILL" });
    expect(await processDone(killed)).toMatchObject({ status: "killed", exit_code: null, signal: "SIGKILL" });
    const bad = await client.json("POST", `/shell/processes/${killed}/signal`, { signal: "SIGSEGV" });
    expect([bad.status, bad.body.error.code]).toEqual([400, "validation_error"]);
  });

  test("lifetime_ms kills the group (a child too) that long after the start; one that ends sooner stays exited; bounds refused", async () => {
    const started = Date.now();
    const id = await background("sleep 61.25 & echo ready; wait", { lifetime_ms: 400 });
    const done = await processDone(id);
    expect(done).toMatchObject({ status: "killed", signal: "SIGKILL" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The `sleep 61.25` it forked went with its group: no process of that command is left.
    const ps = await client.shell("pgrep -f '[s]leep 61.25' || echo none");
    expect(ps.body.output).toContain("none");

    const quick = await background("echo hi", { lifetime_ms: 300 });
    expect(await processDone(quick)).toMatchObject({ status: "exited", exit_code: 0 });
    await Bun.sleep(500);
    expect((await client.json("GET", `/shell/processes/${quick}`)).body).toMatchObject({ status: "exited", exit_code: 0 });

    for (const [body, path] of [
      [{ command: "true", lifetime_ms: 100 }, "lifetime_ms"],
      [{ command: "true", background: true, lifetime_ms: 0 }, "lifetime_ms"],
      [{ command: "true", background: true, lifetime_ms: 2 ** 31 }, "lifetime_ms"],
      [{ command: "true", background: true, lifetime_ms: 1.5 }, "lifetime_ms"],
    ] as const) {
      const r = await client.json("POST", "/shell/exec", body);
      expect([r.status, r.body.error.code, JSON.stringify(r.body.error.details)]).toEqual([
        400,
        "validation_error",
        expect.stringContaining(path),
      ]);
    }
  });

  test("the ring keeps the newest bytes; a reader that fell behind learns how many it missed", async () => {
    const id = await background("head -c 200000 /dev/zero | tr '\\0' x; echo; echo tail-end");
    await processDone(id);
    const page = await client.json("GET", `/shell/processes/${id}/output`);
    const total = 200_000 + 1 + "tail-end\n".length;
    expect(page.body.next_offset).toBe(total);
    expect(page.body.offset).toBe(total - RING);
    expect(page.body.skipped).toBe(total - RING);
    const text = page.body.chunks.map((c: any) => c.data).join("");
    expect(text.length).toBe(RING);
    expect(text.endsWith("x\ntail-end\n")).toBe(true);
    const detail = await client.json("GET", `/shell/processes/${id}`);
    expect(detail.body.truncated).toBe(true);

    // A follower from 0 is told first what it missed, then gets the rest.
    const sse = await follow(id, 0);
    const first = await sse.next();
    expect(first).toEqual({ event: "dropped", data: { offset: 0, next_offset: total - RING, bytes: total - RING } });
    const rest = await sse.rest();
    expect(rest.at(-1)).toEqual({ event: "exit", data: { status: "exited", exit_code: 0, signal: null, next_offset: total } });
    expect(rest.filter((e) => e.event === "output").reduce((n, e) => n + e.data.next_offset - e.data.offset, 0)).toBe(RING);
  });
});

describe("following output (SSE)", () => {
  test("events arrive while the process runs; a follower that leaves does not stop it; reattach reads on", async () => {
    const id = await background("echo first; while [ ! -e go-on ]; do sleep 0.05; done; echo second; echo err >&2; exit 3");
    const sse = await follow(id);
    const first = await sse.until("output");
    expect(first.data).toEqual({ stream: "stdout", offset: 0, next_offset: 6, data: "first\n" });
    // The process is still waiting: the event came while it ran.
    expect((await client.json("GET", `/shell/processes/${id}`)).body.status).toBe("running");
    await sse.cancel();
    writeFileSync(join(workspace, "go-on"), "");
    const done = await processDone(id);
    expect(done.exit_code).toBe(3);
    const again = await follow(id, first.data.next_offset);
    const events = await again.rest();
    expect(events.map((e) => [e.event, e.data.data ?? e.data.exit_code])).toEqual([
      ["output", "second\n"],
      ["output", "err\n"],
      ["exit", 3],
    ]);
    expect(events[1]!.data.stream).toBe("stderr");
    rmSync(join(workspace, "go-on"));
  });

  test("a follower that does not read falls behind the ring instead of making Ship buffer", async () => {
    // 20 MB against a 64 KiB ring: whoever reads late gets a `dropped` event.
    const id = await background(
      "echo start; while [ ! -e go-flood ]; do sleep 0.05; done; head -c 20000000 /dev/zero | tr '\\0' y; echo; echo fin",
    );
    const sse = await follow(id);
    expect((await sse.until("output")).data.data).toBe("start\n");
    writeFileSync(join(workspace, "go-flood"), "");
    await processDone(id);
    const events = await sse.rest();
    const dropped = events.filter((e) => e.event === "dropped");
    expect(dropped.length).toBeGreaterThan(0);
    const exit = events.at(-1)!;
    expect(exit.event).toBe("exit");
    expect(exit.data.next_offset).toBe(6 + 20_000_000 + 1 + 4);
    // Every byte is accounted for: received or reported dropped, in order.
    let at = 6;
    for (const e of events) {
      if (e.event === "exit") break;
      expect(e.data.offset).toBe(at);
      at = e.data.next_offset;
    }
    expect(at).toBe(exit.data.next_offset);
    rmSync(join(workspace, "go-flood"));
  });

  test("a character split between reads is sent whole", async () => {
    // "é" is two bytes, written one at a time with a pause between.
    const id = await background("printf '\\303'; sleep 0.3; printf '\\251\\n'");
    const sse = await follow(id);
    const events = await sse.rest();
    const text = events
      .filter((e) => e.event === "output")
      .map((e) => e.data.data)
      .join("");
    expect(text).toBe("é\n");
    await processDone(id);
  });
});
