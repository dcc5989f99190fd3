/**
 * `bay sandbox shell` (src/bay/cli/terminal-attach.ts, terminal-local.ts) against a
 * fake Bay: output is read from Bay only as fast as the local output takes it; a Bay
 * that stops answering ends the session; `Enter ~ .` ends it whatever Bay does; and an
 * abnormal end resets the screen's modes (review s100 M1, M2).
 */
import { afterEach, expect, test } from "bun:test";
import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import type { CliIo } from "../../src/bay/cli/args.ts";
import { clientTarget } from "../../src/bay/cli/client.ts";
import { attachTerminal, type LocalTerminal } from "../../src/bay/cli/terminal-attach.ts";
import { EscapeFilter } from "../../src/bay/cli/terminal-local.ts";
import { answerByHand, serveTerminalBay } from "../support/fake-terminal-bay.ts";

const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

/** A Bay whose terminal runs `open` on each WebSocket (Bun answers pings itself). */
function fakeBay(open: (ws: import("bun").ServerWebSocket<unknown>) => void, drain?: (ws: import("bun").ServerWebSocket<unknown>) => void) {
  const server = serveTerminalBay(open, drain);
  stops.push(() => server.stop(true));
  return `http://127.0.0.1:${server.port}`;
}

/** A Bay that completes the terminal's handshake and then says nothing, not even a pong (a stopped process). */
function silentBay(): string {
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket, data) {
        const answer = answerByHand(data.toString("latin1"));
        if (answer && "upgrade" in answer) socket.write(answer.upgrade);
        else if (answer) socket.end(answer.close);
      },
    },
  });
  stops.push(() => server.stop(true));
  return `http://127.0.0.1:${server.port}`;
}

/** A Bay that completes the terminal's handshake and then reads nothing more (a stopped process, a link that stalled). */
async function deafBay(): Promise<string> {
  const server = createServer((socket) => {
    let head = "";
    socket.on("data", (data) => {
      head += data.toString("latin1");
      const answer = answerByHand(head);
      if (answer && "upgrade" in answer) {
        socket.write(answer.upgrade);
        socket.pause();
      } else if (answer) socket.end(answer.close);
    });
  }).listen(0, "127.0.0.1");
  stops.push(() => {
    server.close();
    server.unref();
  });
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Input fed by the test; it never ends unless told. */
function feed() {
  const queue: Uint8Array[] = [];
  let wake = () => {};
  let done = false;
  return {
    push(text: string) {
      queue.push(new TextEncoder().encode(text));
      wake();
    },
    end() {
      done = true;
      wake();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (done) return;
        await new Promise<void>((r) => {
          wake = r;
        });
      }
    },
  };
}

function fakeTerminal(input: AsyncIterable<Uint8Array>, interactive = false) {
  const state = { received: 0, pending: 0, raw: 0, restored: 0, resets: 0 };
  const term: LocalTerminal = {
    input,
    write: (bytes) => {
      state.received += bytes.byteLength;
    },
    pending: () => state.pending,
    size: () => undefined,
    onResize: () => () => {},
    raw: () => {
      state.raw++;
      return () => {
        state.restored++;
      };
    },
    onGone: () => () => {},
    interactive,
    reset: () => {
      state.resets++;
    },
  };
  return { term, state };
}

function io() {
  const err: string[] = [];
  const cli: CliIo = { out: () => {}, err: (l) => err.push(l), env: {} };
  return { cli, err };
}

const MiB = 1024 * 1024;

test("output the local side does not take stops reading from Bay (Bay sees backpressure); it all comes once taken", async () => {
  const total = 48 * MiB;
  const chunk = new Uint8Array(64 * 1024);
  let sent = 0;
  const sendMore = (ws: import("bun").ServerWebSocket<unknown>) => {
    while (sent < total) {
      const r = ws.send(chunk);
      if (r === 0) return;
      sent += chunk.byteLength;
      if (r === -1) return;
    }
    ws.close(1000, '{"exit_code":0,"signal":null}');
  };
  const url = fakeBay(sendMore, sendMore);
  const { term, state } = fakeTerminal(feed());
  state.pending = 2 * MiB; // stdout is a pipe nobody reads
  const out = io();
  const done = attachTerminal(clientTarget({}, url), "sb-1", term, out.cli);
  await Bun.sleep(1500);
  // Bounded by what was in flight when reading paused, not by what Bay would send.
  expect(state.received).toBeLessThan(12 * MiB);
  expect(sent).toBeLessThan(total);
  state.pending = 0;
  expect(await done).toBe(0);
  expect(state.received).toBe(total);
  expect(state.resets).toBe(0);
  expect(out.err).toEqual([]);
}, 20_000);

test("output that piles up past 16 MiB all the same ends the session with why; the screen is reset", async () => {
  const url = fakeBay((ws) => {
    ws.send(new Uint8Array(1024));
  });
  const { term, state } = fakeTerminal(feed());
  state.pending = 17 * MiB;
  const out = io();
  expect(await attachTerminal(clientTarget({}, url), "sb-1", term, out.cli)).toBe(1);
  expect(out.err.join("\n")).toContain("the output is not being read");
  expect(state.restored).toBe(state.raw);
  expect(state.resets).toBe(1);
}, 10_000);

test("a Bay that stops answering (no pong) ends the session with why; the terminal is restored and reset", async () => {
  const { term, state } = fakeTerminal(feed());
  const out = io();
  const started = Date.now();
  const code = await attachTerminal(clientTarget({}, silentBay()), "sb-1", term, out.cli, { pingMs: 100, silentMs: 600 });
  expect(code).toBe(1);
  expect(Date.now() - started).toBeLessThan(5_000);
  expect(out.err.join("\n")).toContain("Bay did not answer");
  expect(state.raw).toBe(1);
  expect(state.restored).toBe(1);
  expect(state.resets).toBe(1);
}, 10_000);

test("input piped in faster than Bay takes it is read no further than what waits to be sent allows; a Bay that stops reading ends the session", async () => {
  let pulled = 0;
  async function* flood() {
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    for (let i = 0; i < 4096; i++) {
      pulled += chunk.byteLength;
      yield chunk;
    }
  }
  const { term, state } = fakeTerminal(flood());
  const out = io();
  const code = await attachTerminal(clientTarget({}, await deafBay()), "sb-1", term, out.cli, { pingMs: 100, silentMs: 1500 });
  expect(code).toBe(1);
  expect(out.err.join("\n")).toContain("Bay did not answer");
  expect(state.restored).toBe(state.raw);
  // 256 MiB were on offer; the kernel's socket buffers and SEND_PAUSE_AT hold a few MiB.
  expect(pulled).toBeLessThan(32 * MiB);
}, 15_000);

test("a quiet Bay that answers pings keeps the session", async () => {
  const url = fakeBay((ws) => {
    setTimeout(() => ws.close(1000, '{"exit_code":7,"signal":null}'), 1200);
  });
  const { term } = fakeTerminal(feed());
  const out = io();
  expect(await attachTerminal(clientTarget({}, url), "sb-1", term, out.cli, { pingMs: 50, silentMs: 300 })).toBe(7);
  expect(out.err).toEqual([]);
}, 10_000);

test("Enter ~ . typed at a terminal ends the session at once, even with a Bay that says nothing", async () => {
  const input = feed();
  const { term, state } = fakeTerminal(input, true);
  const out = io();
  const done = attachTerminal(clientTarget({}, silentBay()), "sb-1", term, out.cli);
  await Bun.sleep(300);
  input.push("ls\r");
  input.push("~");
  input.push(".");
  const started = Date.now();
  expect(await done).toBe(1);
  expect(Date.now() - started).toBeLessThan(2_000);
  expect(out.err).toEqual(["bay: the terminal was closed (~.)"]);
  expect(state.restored).toBe(1);
  expect(state.resets).toBe(1);
}, 10_000);

test("Enter ~ . on a slow terminal that Bay floods ends the session at once; what was not written yet is dropped (review s104 M1)", async () => {
  // bay, and Bay, each in its own process, on a real pseudo-terminal read at 200 kB/s: Bun hands over the frames
  // of a busy socket without polling stdin in between, which an in-process fake does not show.
  const bay = Bun.spawn(["bun", join(import.meta.dir, "../support/flood-terminal-bay.ts")], { stdout: "pipe" });
  stops.push(() => bay.kill());
  const port = new TextDecoder().decode((await new Response(bay.stdout).body!.getReader().read()).value).trim();
  const cli = join(import.meta.dir, "../../src/bay/cli.ts");
  const tty = Bun.spawn(["python3", join(import.meta.dir, "../support/slow-tty.py"), cli, "200000", "2"], {
    env: { ...process.env, BAY_URL: `http://127.0.0.1:${port}`, BAY_TOKEN: "t" },
    stdout: "pipe",
  });
  const result = JSON.parse(await new Response(tty.stdout).text()) as { ended_after_s: number; bytes_after: number; code: number };
  expect(result.code).toBe(1);
  // What was already in the terminal's own buffers, and one piece (16 KiB) being written; then nothing more.
  expect(result.ended_after_s).toBeLessThan(2);
  expect(result.bytes_after).toBeLessThan(256 * 1024);
}, 30_000);

test("typed input the shell does not take waits in bay, and Enter ~ . after a large paste still ends the session at once (reviews s108, s110)", async () => {
  // A Bay that tells a window and never acknowledges (a shell that does not read).
  let asked = "";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, srv) {
      const url = new URL(req.url);
      if (url.pathname.endsWith("/terminal")) {
        asked = url.search;
        return srv.upgrade(req, { data: undefined }) ? undefined : new Response("no", { status: 400 });
      }
      return Response.json({ id: "sb-1", status: "running" });
    },
    websocket: { open: (ws) => void ws.send(JSON.stringify({ type: "input_acks", window: 10 })), message() {} },
  });
  stops.push(() => server.stop(true));
  const input = feed();
  const { term } = fakeTerminal(input, true);
  const out = io();
  const done = attachTerminal(clientTarget({}, `http://127.0.0.1:${server.port}`), "sb-1", term, out.cli);
  await Bun.sleep(300);
  input.push("x".repeat(100_000));
  input.push("y".repeat(100_000));
  await Bun.sleep(100);
  input.push("\r~.");
  const started = Date.now();
  expect(await done).toBe(1);
  expect(Date.now() - started).toBeLessThan(2_000);
  expect(out.err).toEqual(["bay: the terminal was closed (~.)"]);
  expect(asked).toContain("input_acks=true");
}, 10_000);

test("a paste larger than the shell's limit on unread input arrives whole: sent within the window as the shell takes it (review s110)", async () => {
  let received = 0;
  let acked = 0;
  let most = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, srv) {
      if (new URL(req.url).pathname.endsWith("/terminal"))
        return srv.upgrade(req, { data: undefined }) ? undefined : new Response("no", { status: 400 });
      return Response.json({ id: "sb-1", status: "running" });
    },
    websocket: {
      open: (ws) => void ws.send(JSON.stringify({ type: "input_acks", window: 64 * 1024 })),
      // A shell that takes input slowly: acknowledged 5 ms after it arrives.
      message(ws, data) {
        if (typeof data === "string") return;
        received += data.byteLength;
        most = Math.max(most, received - acked);
        setTimeout(() => {
          acked += data.byteLength;
          ws.send(JSON.stringify({ type: "input_ack", bytes: data.byteLength }));
        }, 5);
      },
    },
  });
  stops.push(() => server.stop(true));
  const input = feed();
  const { term } = fakeTerminal(input, true);
  const out = io();
  const done = attachTerminal(clientTarget({}, `http://127.0.0.1:${server.port}`), "sb-1", term, out.cli);
  await Bun.sleep(200);
  for (let i = 0; i < 48; i++) input.push("z".repeat(64 * 1024)); // 3 MiB at once
  const deadline = Date.now() + 8_000;
  while (received < 48 * 64 * 1024 && Date.now() < deadline) await Bun.sleep(20);
  expect(received).toBe(48 * 64 * 1024);
  expect(most).toBeLessThanOrEqual(2 * 64 * 1024);
  input.push("\r~.");
  expect(await done).toBe(1);
}, 15_000);

test("Bay's close after its last output: the output still to be written to a slow terminal is written first", async () => {
  const url = fakeBay((ws) => {
    for (let i = 0; i < 32; i++) ws.send(new Uint8Array(64 * 1024).fill(0x62));
    ws.close(1000, '{"exit_code":0,"signal":null}');
  });
  const { term, state } = fakeTerminal(feed());
  const slow = new Int32Array(new SharedArrayBuffer(4));
  const write = term.write;
  term.write = (bytes) => {
    Atomics.wait(slow, 0, 0, bytes.byteLength / 20_000);
    write(bytes);
  };
  const out = io();
  expect(await attachTerminal(clientTarget({}, url), "sb-1", term, out.cli)).toBe(0);
  expect(state.received).toBe(32 * 64 * 1024);
}, 15_000);

test("Bay's close waits for the local output to take what was written (a pipe): the end of the output is never cut (review s109)", async () => {
  const url = fakeBay((ws) => {
    for (let i = 0; i < 8; i++) ws.send(new Uint8Array(64 * 1024).fill(0x63));
    ws.close(1000, '{"exit_code":0,"signal":null}');
  });
  const { term, state } = fakeTerminal(feed());
  // A pipe: writes return at once and are taken later.
  term.write = (bytes) => {
    state.pending += bytes.byteLength;
    setTimeout(() => {
      state.pending -= bytes.byteLength;
      state.received += bytes.byteLength;
    }, 200);
  };
  const out = io();
  expect(await attachTerminal(clientTarget({}, url), "sb-1", term, out.cli)).toBe(0);
  expect(state.pending).toBe(0);
  expect(state.received).toBe(8 * 64 * 1024);
}, 10_000);

test("Enter ~ . while the last output is still being written after Bay's close ends the session at once (review s109)", async () => {
  const url = fakeBay((ws) => {
    for (let i = 0; i < 32; i++) ws.send(new Uint8Array(64 * 1024).fill(0x64));
    ws.close(1000, '{"exit_code":0,"signal":null}');
  });
  const input = feed();
  const { term, state } = fakeTerminal(input, true);
  const slow = new Int32Array(new SharedArrayBuffer(4));
  const write = term.write;
  term.write = (bytes) => {
    Atomics.wait(slow, 0, 0, bytes.byteLength / 200); // 200 kB/s: 2 MiB would take 10 s
    write(bytes);
  };
  const out = io();
  const done = attachTerminal(clientTarget({}, url), "sb-1", term, out.cli);
  await Bun.sleep(1_000);
  input.push("\r~.");
  const started = Date.now();
  expect(await done).toBe(1);
  expect(Date.now() - started).toBeLessThan(2_000);
  expect(state.received).toBeLessThan(32 * 64 * 1024);
  expect(out.err).toEqual(["bay: the terminal was closed (~.)"]);
}, 15_000);

test("the shell's exit ends the session even if Bay's close is never reported (a Bun client that lost it: review s109)", async () => {
  const url = fakeBay((ws) => {
    ws.send(new TextEncoder().encode("bye\r\n"));
    ws.send(JSON.stringify({ type: "exit", exit_code: 7, signal: null }));
  });
  const { term, state } = fakeTerminal(feed());
  const out = io();
  expect(await attachTerminal(clientTarget({}, url), "sb-1", term, out.cli, { exitCloseGraceMs: 300 })).toBe(7);
  expect(state.received).toBe(5);
  expect(out.err).toEqual([]);
}, 10_000);

test("the escape: only after Enter or at the start; ~~ sends one ~; ~ before anything else is sent", () => {
  // What is sent, or null once the escape was typed (then `sent` holds what came before it).
  let sent = "";
  const text = (f: EscapeFilter, s: string) => {
    sent = new TextDecoder().decode(f.filter(new TextEncoder().encode(s)));
    return f.escaped ? null : sent;
  };
  expect(text(new EscapeFilter(), "~.")).toBeNull();
  // Typed before the escape in the same read, it still reaches the shell (review s104 L5).
  const g = new EscapeFilter();
  expect(text(g, "ls\r~.")).toBeNull();
  expect(sent).toBe("ls\r");
  expect(text(g, "more")).toBeNull();
  expect(sent).toBe("");
  expect(text(new EscapeFilter(), "echo a~.b\r")).toBe("echo a~.b\r");
  let f = new EscapeFilter();
  expect(text(f, "x\r~")).toBe("x\r");
  expect(text(f, "~")).toBe("~");
  expect(text(f, "~x")).toBe("~x");
  f = new EscapeFilter();
  expect(text(f, "\r~y\n")).toBe("\r~y\n");
  expect(text(f, "~")).toBe("");
  expect(text(f, ".")).toBeNull();
});
