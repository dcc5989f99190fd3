/**
 * Ship's interactive work in-process on the host, served by a real Bun.serve
 * (WebSockets need one): background processes with stdin, signals and an output
 * ring; the terminal over WebSocket (PTY, resize, flow control); file watch.
 * Login shells read the user's profile, so HOME points at an empty directory
 * (a slow profile on the host would only slow the tests down).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NONCE_HEADER, newNonce, shipBearer, shipProof } from "../../src/protocol/ship/index.ts";
import { createShipApp, type ShipApp } from "../../src/ship/app.ts";
import { pollUntil } from "../support/harness.ts";
import { SseReader } from "../support/sse.ts";
import { handshakeStatus, TerminalClient } from "../support/terminal-client.ts";
import { ShipClient, testCredentials, withSecret } from "./support/caller.ts";

const RING = 64 * 1024;
const credentials = testCredentials();
let workspace = "";
let home = "";
let savedHome: string | undefined;
let ship: ShipApp;
let server: ReturnType<typeof Bun.serve>;
let base = "";
let client: ShipClient;

beforeAll(() => {
  workspace = realpathSync(mkdtempSync(join(tmpdir(), "ship-interactive-ws-")));
  home = mkdtempSync(join(tmpdir(), "ship-interactive-home-"));
  savedHome = process.env.HOME;
  process.env.HOME = home;
  ship = createShipApp({
    workspace,
    credentials,
    startKernel: false,
    maxOutputBytes: RING,
    maxTerminals: 3,
    terminalAttachSeconds: 2,
    maxWatches: 3,
    watchQueue: 8,
  });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: ship.app.fetch, websocket: ship.websocket, idleTimeout: 0 });
  base = `127.0.0.1:${server.port}`;
  client = new ShipClient((path, init) => fetch(`http://${base}${path}`, init), credentials.secret);
});

afterAll(async () => {
  ship?.close();
  await server?.stop(true);
  process.env.HOME = savedHome;
  rmSync(workspace, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${credentials.secret}` };
const call = (path: string, init: RequestInit = {}) => withSecret((p, i) => fetch(`http://${base}${p}`, i), credentials.secret)(path, init);
const follow = async (id: string, offset = 0, extra = "") => {
  const res = await call(`/shell/processes/${id}/output?offset=${offset}${extra}`, { headers: { accept: "text/event-stream" } });
  expect(res.headers.get("content-type")).toStartWith("text/event-stream");
  return new SseReader(res);
};
const background = async (command: string, extra: Record<string, unknown> = {}) => {
  const res = await client.shell(command, { background: true, ...extra });
  expect(res.status).toBe(200);
  return res.body.process_id as string;
};
const processDone = (id: string) =>
  pollUntil(
    async () => (await client.json("GET", `/shell/processes/${id}`)).body,
    (p) => p.status !== "running",
    20_000,
    `process ${id} to end`,
  );

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

describe("terminal", () => {
  const newTerminal = async (size: { cols?: number; rows?: number } = {}) => {
    const res = await client.json("POST", "/terminals", size);
    expect(res.status).toBe(201);
    return res.body.terminal_id as string;
  };
  const attach = (id: string, ack = true) => TerminalClient.open(`ws://${base}/terminals/${id}`, { headers: auth, ack });

  test("a login shell on a PTY: TERM, cwd, resize, interactive python, Ctrl-C, exit status in the close frame", async () => {
    const term = await attach(await newTerminal({ cols: 100, rows: 30 }));
    term.type('echo "[$TERM|$PWD|$(stty size)]"\n');
    expect((await term.waitFor(/\[(\S+)\|(\S+)\|(\d+ \d+)\]/))!.slice(1)).toEqual(["xterm-256color", workspace, "30 100"]);
    term.control({ type: "resize", cols: 132, rows: 43 });
    let mark = term.screen.length;
    term.type("stty size\n");
    await term.waitFor(/43 132/, 20_000, mark);
    term.type("python3 -q\n");
    await term.waitFor(/>>> /);
    mark = term.screen.length;
    term.type("6*7\n");
    await term.waitFor(/42\r\n>>> /, 20_000, mark);
    mark = term.screen.length;
    term.type("import time; print('nap' + 'ping', flush=True); time.sleep(60)\n");
    await term.waitFor(/[\r\n]napping\r\n/, 20_000, mark);
    term.type("\x03");
    await term.waitFor(/KeyboardInterrupt/);
    term.type("exit()\n");
    term.type("exit 3\n");
    const closed = await term.closed;
    expect(closed).toEqual({ code: 1000, reason: JSON.stringify({ exit_code: 3, signal: null }) });
    expect(term.controls).toContainEqual({ type: "exit", exit_code: 3, signal: null });
  });

  test("a terminal starts in the cwd it names, with the variables it names over Ship's defaults", async () => {
    mkdirSync(join(workspace, "term-sub", "deep"), { recursive: true });
    const res = await client.json("POST", "/terminals", {
      cwd: "term-sub/deep",
      env: { BAY_TERM_VAR: 'it\'s "odd" $x', TERM: "xterm" },
    });
    expect(res.status).toBe(201);
    const term = await attach(res.body.terminal_id);
    // The quotes split the marker, so the echoed command line never matches.
    term.type('echo "EN""V[$PWD|$BAY_TERM_VAR|$TERM]"\n');
    expect((await term.waitFor(/ENV\[([^|\n]+)\|([^|\n]*)\|(\S+)\]/))!.slice(1)).toEqual([
      join(workspace, "term-sub", "deep"),
      `it's "odd" $x`,
      "xterm",
    ]);
    term.type("exit\n");
    await term.closed;
    const refused: Array<[Record<string, unknown>, number]> = [
      [{ cwd: "../outside" }, 400],
      [{ cwd: "no-such-dir" }, 404],
      [{ env: { "A=B": "x" } }, 400],
      [{ env: { A: "x\u0000" } }, 400],
    ];
    for (const [body, status] of refused) {
      const bad = await client.json("POST", "/terminals", body);
      expect([bad.status, body]).toEqual([status, body]);
    }
  });

  test("refusals: no secret 401, unknown 404, attached twice 409, not an upgrade 400, bad control message answered", async () => {
    const id = await newTerminal();
    expect(await handshakeStatus(`ws://${base}/terminals/${id}`)).toBe(401);
    expect(await handshakeStatus(`ws://${base}/terminals/term-nope`, auth)).toBe(404);
    const plain = await client.json("GET", `/terminals/${id}`);
    expect([plain.status, plain.body.error.code]).toEqual([400, "validation_error"]);
    const term = await attach(id);
    expect(await handshakeStatus(`ws://${base}/terminals/${id}`, auth)).toBe(409);
    term.ws.send("not json");
    term.control({ type: "resize", cols: 0, rows: 5 });
    await pollUntil(
      () => term.controls.filter((c) => c.type === "error").length,
      (n) => n === 2,
      10_000,
    );
    expect(term.controls[0].error.code).toBe("validation_error");
    // The terminal goes on.
    term.type("echo still-here\n");
    await term.waitFor(/still-here\r\n/);
    term.close();
  });

  test("an attach with Bay's nonce gets Ship's proof as its first frame (and the derived bearer key opens it)", async () => {
    const nonce = newNonce();
    const term = await TerminalClient.open(`ws://${base}/terminals/${await newTerminal()}`, {
      headers: { authorization: `Bearer ${shipBearer(credentials.secret)}`, [NONCE_HEADER]: nonce },
    });
    await term.waitForControl("proof");
    expect(term.controls[0]).toEqual({ type: "proof", proof: shipProof(credentials.secret, nonce) });
    term.type("echo proved\n");
    await term.waitFor(/proved\r\n/);
    term.close();
    // Without a nonce there is nothing to prove: no proof frame.
    const plain = await attach(await newTerminal());
    plain.type("echo plain\n");
    await plain.waitFor(/plain\r\n/);
    expect(plain.controls.filter((c) => c.type === "proof")).toEqual([]);
    plain.close();
  });

  test("a terminal nobody attaches to is hung up; a closed client hangs up its shell", async () => {
    const id = await newTerminal();
    await pollUntil(
      () => handshakeStatus(`ws://${base}/terminals/${id}`, auth),
      (s) => s === 404,
      20_000,
      "unattached terminal gone",
    );

    const term = await attach(await newTerminal());
    term.type("echo $$\n");
    const pid = Number((await term.waitFor(/^(\d+)\r$/m))[1]);
    term.close();
    await pollUntil(
      () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      },
      (alive) => !alive,
      20_000,
      "shell gone after the client left",
    );
  });

  test("at most SHIP_MAX_TERMINALS at once", async () => {
    const open = [await attach(await newTerminal()), await attach(await newTerminal()), await attach(await newTerminal())];
    const fourth = await client.json("POST", "/terminals", {});
    expect([fourth.status, fourth.body.error.code]).toEqual([429, "quota_exceeded"]);
    for (const t of open) t.close();
    await pollUntil(
      async () => (await client.json("POST", "/terminals", {})).status,
      (s) => s === 201,
      20_000,
    );
  });

  test("a client that does not acknowledge stops the PTY's output: the writer waits, nothing piles up", async () => {
    const term = await attach(await newTerminal(), false);
    term.type("head -c 5000000 /dev/zero | tr '\\0' a; echo; echo END-MARK\n");
    // The writer ends up blocked on the terminal (the kernel's own wait), not done.
    const writer = await pollUntil(
      () => {
        const ps = Bun.spawnSync(["pgrep", "-x", "tr"]).stdout.toString().trim().split("\n").filter(Boolean);
        for (const pid of ps) {
          try {
            if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("a") && readFileSync(`/proc/${pid}/wchan`, "utf8") === "wait_woken")
              return pid;
          } catch {
            // gone
          }
        }
        return null;
      },
      (pid) => pid !== null,
      20_000,
      "the writer blocked on the stopped terminal",
    );
    expect(writer).not.toBeNull();
    // Ship sent at most its window (1 MiB) plus what was already on the way.
    expect(term.received).toBeLessThan(1024 * 1024 + 256 * 1024);
    expect(term.screen).not.toMatch(/^END-MARK/m);
    // Acknowledging lets it go on to the end.
    const ackLoop = setInterval(() => term.control({ type: "ack", bytes: 1024 * 1024 }), 5);
    await term.waitFor(/^END-MARK/m, 60_000);
    clearInterval(ackLoop);
    expect(term.received).toBeGreaterThan(5_000_000);
    term.close();
  });

  test("input the shell does not read is bounded: past 1 MiB it is refused with an error message", async () => {
    const term = await attach(await newTerminal());
    term.type("stty -icanon; sleep 600\n");
    await term.waitFor(/sleep 600/);
    const chunk = new Uint8Array(400 * 1024).fill(0x61);
    for (let i = 0; i < 4; i++) term.ws.send(chunk);
    const err = await term.waitForControl("error");
    expect(err.error).toMatchObject({ code: "payload_too_large", details: { limit_bytes: 1024 * 1024 } });
    // A frame over 1 MiB closes the connection (1009: message too big).
    term.ws.send(new Uint8Array(1024 * 1024 + 1));
    expect((await term.closed).code).toBe(1009);
  });
});

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
