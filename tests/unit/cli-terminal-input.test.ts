/**
 * The input half of `bay sandbox shell` (src/bay/cli/terminal-input.ts) with a
 * recording socket: piped input is read only as it is sent; typed input is read
 * all the time, so `Enter ~ .` is seen at once, and what the shell does not take
 * waits up to a bound, past which it is dropped and said so once (review s110).
 */
import { expect, test } from "bun:test";
import { InputWindow } from "../../src/bay/cli/input-window.ts";
import { TerminalInput } from "../../src/bay/cli/terminal-input.ts";
import { EscapeFilter } from "../../src/bay/cli/terminal-local.ts";

function socket() {
  const sent: Uint8Array[] = [];
  return {
    readyState: WebSocket.OPEN as number,
    bufferedAmount: 0,
    sent,
    send(data: Uint8Array) {
      sent.push(data);
    },
    close() {
      this.readyState = WebSocket.CLOSED;
    },
    bytes: () => sent.reduce((n, d) => n + d.byteLength, 0),
  };
}

const told = (window: number) => {
  const w = new InputWindow({ first: window, waitMs: 60_000 });
  w.told(window);
  return w;
};

test("piped input is read no further than what was sent: a shell that takes nothing holds the pipe", async () => {
  const ws = socket();
  let pulled = 0;
  async function* pipe() {
    for (let i = 0; i < 1000; i++) {
      pulled += 1000;
      yield new Uint8Array(1000);
    }
  }
  const input = new TerminalInput(
    ws,
    told(5000),
    null,
    () => {},
    () => {},
  );
  void input.run(pipe());
  await Bun.sleep(100);
  expect(ws.bytes()).toBe(5000);
  expect(pulled).toBeLessThanOrEqual(7000);
  ws.close();
});

test("typed input is read while the window is full; Enter ~ . is seen at once; past the bound, typing is dropped and said once", async () => {
  const ws = socket();
  const notes: string[] = [];
  let escaped = 0;
  const window = told(1000);
  const queue: Uint8Array[] = [];
  let wake = () => {};
  async function* typedIn() {
    for (;;) {
      while (queue.length) yield queue.shift()!;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  }
  const type = (text: string) => {
    queue.push(new TextEncoder().encode(text));
    wake();
  };
  const input = new TerminalInput(
    ws,
    window,
    new EscapeFilter(),
    () => void escaped++,
    (n) => notes.push(n),
    { maxTypedQueue: 4000 },
  );
  void input.run(typedIn());
  type("a".repeat(1000)); // fills the window
  for (let i = 0; i < 10; i++) type("b".repeat(1000)); // 4000 wait, 6000 are dropped
  await Bun.sleep(30);
  expect(ws.bytes()).toBe(1000);
  expect(notes).toHaveLength(1);
  expect(notes[0]).toContain("dropped");
  // The shell takes input: what waited goes, in order.
  window.acked(1000);
  input.flush();
  await Bun.sleep(5);
  expect(ws.bytes()).toBe(2000);
  type("\r~.");
  await Bun.sleep(30);
  expect(escaped).toBe(1);
});

test("the end of piped input is a Ctrl-D, once all input has gone", async () => {
  const ws = socket();
  const window = told(10);
  async function* pipe() {
    yield new TextEncoder().encode("echo hi\n");
    yield new TextEncoder().encode("exit\n");
  }
  const input = new TerminalInput(
    ws,
    window,
    null,
    () => {},
    () => {},
  );
  const running = input.run(pipe());
  await Bun.sleep(30);
  expect(ws.sent.map((d) => new TextDecoder().decode(d))).toEqual(["echo hi\n"]);
  window.acked(8);
  input.flush();
  await Bun.sleep(30);
  window.acked(5);
  input.flush();
  await running;
  expect(ws.sent.map((d) => new TextDecoder().decode(d))).toEqual(["echo hi\n", "exit\n", "\u0004"]);
  ws.close();
});

/** Typed input the test types, read as a terminal's would be. */
function keyboard() {
  const queue: Uint8Array[] = [];
  let wake = () => {};
  return {
    type(text: string | Uint8Array) {
      queue.push(typeof text === "string" ? new TextEncoder().encode(text) : text);
      wake();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        await new Promise<void>((r) => {
          wake = r;
        });
      }
    },
  };
}

test("past the bound, typing is dropped until all that waited has gone: one cut, never a hole (review s111)", async () => {
  const ws = socket();
  const window = told(1000);
  const keys = keyboard();
  const input = new TerminalInput(
    ws,
    window,
    new EscapeFilter(),
    () => {},
    () => {},
    { maxTypedQueue: 3000 },
  );
  void input.run(keys);
  keys.type("0".repeat(1000)); // sent: the window is full
  for (const c of "12345") keys.type(c.repeat(1000)); // 1, 2, 3 wait; 4 and 5 are dropped
  await Bun.sleep(20);
  window.acked(1000);
  input.flush();
  keys.type("6".repeat(1000)); // room was made, but what waited has not all gone: dropped too
  await Bun.sleep(20);
  for (let i = 0; i < 3; i++) {
    window.acked(1000);
    input.flush();
  }
  await Bun.sleep(20);
  keys.type("7".repeat(10)); // all gone: taken again
  await Bun.sleep(20);
  const sent = new TextDecoder().decode(Buffer.concat(ws.sent));
  expect(sent.replace(/(.)\1*/g, "$1")).toBe("01237");
  ws.close();
});

test("small reads while input waits are kept and sent in pieces, not one frame each (review s111)", async () => {
  const ws = socket();
  const window = told(70_000);
  const keys = keyboard();
  const input = new TerminalInput(
    ws,
    window,
    new EscapeFilter(),
    () => {},
    () => {},
  );
  void input.run(keys);
  keys.type("x".repeat(70_000)); // sent; the window is full
  for (let i = 0; i < 100_000; i++) keys.type(new Uint8Array([0x79]));
  await Bun.sleep(50);
  expect(ws.sent.length).toBe(1);
  // The shell takes what comes: what waited (100,000 bytes) goes in a few frames.
  for (let i = 0; i < 10 && ws.bytes() < 170_000; i++) {
    window.acked(ws.bytes());
    input.flush();
    await Bun.sleep(10);
  }
  expect(ws.bytes()).toBe(170_000);
  expect(ws.sent.length).toBeLessThanOrEqual(5);
  ws.close();
});

test("what was typed before Enter ~ . in the same read goes even with the window full, when nothing else waits", async () => {
  const ws = socket();
  let escaped = 0;
  const window = told(5);
  const keys = keyboard();
  const input = new TerminalInput(
    ws,
    window,
    new EscapeFilter(),
    () => void escaped++,
    () => {},
  );
  void input.run(keys);
  keys.type("12345"); // the window is full
  await Bun.sleep(10);
  keys.type("ls\r~.");
  await Bun.sleep(10);
  expect(escaped).toBe(1);
  expect(new TextDecoder().decode(Buffer.concat(ws.sent))).toBe("12345ls\r");
});

test("pieces never grow past a told window smaller than a piece (review s112)", async () => {
  const ws = socket();
  const window = told(4096);
  const keys = keyboard();
  const input = new TerminalInput(
    ws,
    window,
    new EscapeFilter(),
    () => {},
    () => {},
  );
  void input.run(keys);
  keys.type("a".repeat(4096)); // the window is full
  for (let i = 0; i < 20_000; i++) keys.type(new Uint8Array([0x62]));
  await Bun.sleep(50);
  for (let i = 0; i < 20 && ws.bytes() < 24_096; i++) {
    window.acked(ws.bytes());
    input.flush();
    await Bun.sleep(10);
  }
  expect(ws.bytes()).toBe(24_096);
  expect(Math.max(...ws.sent.map((d) => d.byteLength))).toBeLessThanOrEqual(4096);
  ws.close();
});
