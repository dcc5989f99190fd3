/**
 * Bay's half of a terminal, with both sockets replaced by recorders: output is
 * acknowledged to Ship only as the client's socket takes it (so a slow client
 * stops Ship's PTY instead of filling Bay), control messages are checked, and
 * every way the terminal ends reaches the client with why. The real sockets are
 * exercised end to end in tests/e2e/interactive-terminal.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { INPUT_WINDOW, SHIP_INPUT_HIGH_WATER, TerminalBridge, type TerminalPeer } from "../../src/bay/domain/terminal-bridge.ts";
import { BayError } from "../../src/bay/errors.ts";

class FakeShip {
  readyState: number = WebSocket.OPEN;
  /** What a real client WebSocket reports as queued for the connection (a stalled Ship takes nothing). */
  bufferedAmount = 0;
  stalled = false;
  binaryType = "blob";
  readonly sent: Array<string | Uint8Array> = [];
  closedWith: [number, string] | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  send(data: string | Uint8Array) {
    this.sent.push(data);
    if (this.stalled) this.bufferedAmount += typeof data === "string" ? data.length : data.byteLength;
  }
  close(code: number, reason: string) {
    this.closedWith = [code, reason];
    this.readyState = WebSocket.CLOSED;
  }
  /** Ship sends terminal output. */
  output(n: number) {
    this.onmessage?.({ data: new Uint8Array(n).buffer });
  }
  control(value: unknown) {
    this.onmessage?.({ data: JSON.stringify(value) });
  }
  acks(): number[] {
    return this.sent.filter((d): d is string => typeof d === "string" && d.includes('"ack"')).map((d) => JSON.parse(d).bytes);
  }
}

class FakePeer implements TerminalPeer {
  buffered = 0;
  readonly frames: Array<string | Uint8Array> = [];
  closedWith: [number, string] | null = null;
  send(data: string | Uint8Array) {
    this.frames.push(data);
  }
  close(code: number, reason: string) {
    this.closedWith = [code, reason];
  }
  bufferedAmount() {
    return this.buffered;
  }
  controls(): any[] {
    return this.frames.filter((f): f is string => typeof f === "string").map((f) => JSON.parse(f));
  }
}

const tick = () => new Promise<void>((r) => queueMicrotask(r));

function bridge() {
  const ship = new FakeShip();
  const peer = new FakePeer();
  const b = new TerminalBridge(ship as unknown as WebSocket, "req-1");
  b.attach(peer);
  return { ship, peer, b };
}

describe("TerminalBridge", () => {
  test("output the client's socket took is acknowledged, once per turn; output it holds is acknowledged when it drains", async () => {
    const { ship, peer, b } = bridge();
    ship.output(100);
    ship.output(50);
    await tick();
    expect(ship.acks()).toEqual([150]);
    expect(peer.frames.filter((f) => typeof f !== "string").length).toBe(2);

    // The client reads slowly: what it holds is not acknowledged, so Ship's window fills and its PTY stops.
    peer.buffered = 512 * 1024;
    ship.output(1000);
    ship.output(2000);
    await tick();
    expect(ship.acks()).toEqual([150]);
    b.drained(); // still above the mark: nothing yet
    await tick();
    expect(ship.acks()).toEqual([150]);
    peer.buffered = 0;
    b.drained();
    await tick();
    expect(ship.acks()).toEqual([150, 3000]);
  });

  test("a resize goes to Ship as is; anything else is refused to the client in the error model and never reaches Ship", () => {
    const { ship, peer, b } = bridge();
    b.fromClient('{"type":"resize","cols":120,"rows":40,"extra":"dropped"}');
    expect(ship.sent).toEqual([JSON.stringify({ type: "resize", cols: 120, rows: 40 })]);
    for (const bad of ['{"type":"ack","bytes":99999999}', '{"type":"resize","cols":0,"rows":5}', "not json", "[]"]) b.fromClient(bad);
    expect(ship.sent.length).toBe(1);
    const errors = peer.controls();
    expect(errors.length).toBe(4);
    for (const e of errors) expect(e).toMatchObject({ type: "error", error: { code: "validation_error", request_id: "req-1" } });
    b.fromClient(new Uint8Array([3]));
    expect(ship.sent.at(-1)).toEqual(new Uint8Array([3]));
  });

  test("a text frame longer than any control message is refused without being parsed (review s90 M3)", () => {
    const { ship, peer, b } = bridge();
    const parse = JSON.parse;
    let parsed = 0;
    JSON.parse = ((text: string, reviver?: Parameters<typeof parse>[1]) => {
      parsed++;
      return parse(text, reviver);
    }) as typeof JSON.parse;
    try {
      // A resize padded past the limit is still refused: the length alone decides.
      b.fromClient(`{"type":"resize","cols":80,"rows":24,"pad":"${" ".repeat(1024)}"}`);
      b.fromClient("[".repeat(512 * 1024) + "]".repeat(512 * 1024));
    } finally {
      JSON.parse = parse;
    }
    expect(parsed).toBe(0);
    expect(ship.sent).toEqual([]);
    expect(peer.controls().map((e) => e.error.code)).toEqual(["validation_error", "validation_error"]);
  });

  test("input the Ship's connection has not taken stops at the mark: refused once, in the error model; taken again once it drains", () => {
    const { ship, peer, b } = bridge();
    ship.stalled = true;
    b.fromClient(new Uint8Array(SHIP_INPUT_HIGH_WATER - 10));
    b.fromClient(new Uint8Array(10));
    expect(ship.sent.length).toBe(2);
    for (let i = 0; i < 100; i++) b.fromClient(new Uint8Array(1));
    expect(ship.sent.length).toBe(2);
    const refused = peer.controls();
    expect(refused.length).toBe(1);
    expect(refused[0]).toMatchObject({ type: "error", error: { code: "payload_too_large", request_id: "req-1" } });
    // The Ship took it all: input flows again.
    ship.bufferedAmount = 0;
    b.fromClient(new Uint8Array([3]));
    expect(ship.sent.at(-1)).toEqual(new Uint8Array([3]));
    // A second stall is told again; resizes are input too and stop at the same mark.
    ship.bufferedAmount = SHIP_INPUT_HIGH_WATER;
    const sent = ship.sent.length;
    b.fromClient(new Uint8Array(1));
    for (let i = 0; i < 100; i++) b.fromClient('{"type":"resize","cols":100,"rows":30}');
    expect(ship.sent.length).toBe(sent);
    expect(peer.controls().length).toBe(2);
  });

  test("error replies are not queued for a client that does not read them", () => {
    const { peer, b } = bridge();
    peer.buffered = 10 * 1024 * 1024;
    for (let i = 0; i < 100; i++) b.fromClient("not json");
    expect(peer.frames.length).toBe(0);
    peer.buffered = 0;
    b.fromClient("not json");
    expect(peer.controls().length).toBe(1);
  });

  test("an error for a client behind on reading is held, the latest one only, and sent once it drains (review s110)", () => {
    const { ship, peer, b } = bridge();
    peer.buffered = 10 * 1024 * 1024;
    ship.control({ type: "error", error: { code: "payload_too_large", message: "once", details: {} } });
    for (let i = 0; i < 100; i++) b.fromClient("not json");
    expect(peer.frames.length).toBe(0);
    peer.buffered = 0;
    b.drained();
    expect(peer.controls()).toHaveLength(1);
    expect(peer.controls()[0].error.code).toBe("validation_error");
    b.drained();
    expect(peer.controls()).toHaveLength(1);
    // The Ship's one refusal of an episode, held alone, is not lost.
    peer.buffered = 10 * 1024 * 1024;
    ship.control({ type: "error", error: { code: "payload_too_large", message: "once", details: {} } });
    peer.buffered = 0;
    b.drained();
    expect(peer.controls().at(-1)).toMatchObject({ error: { code: "payload_too_large", request_id: "req-1" } });
    // Held when the shell exits: it goes before the exit (review s111).
    peer.buffered = 10 * 1024 * 1024;
    ship.control({ type: "error", error: { code: "payload_too_large", message: "last", details: {} } });
    ship.control({ type: "exit", exit_code: 0, signal: null });
    expect(
      peer
        .controls()
        .slice(-2)
        .map((m) => m.type),
    ).toEqual(["error", "exit"]);
  });

  test("an error held for a client behind on reading goes before the close when the Ship ends without an exit message (review s112)", () => {
    const { ship, peer } = bridge();
    peer.buffered = 10 * 1024 * 1024;
    ship.control({ type: "error", error: { code: "payload_too_large", message: "held", details: {} } });
    expect(peer.controls()).toEqual([]);
    ship.onclose?.({ code: 1000, reason: "" });
    expect(peer.controls().map((m) => m.error?.message)).toEqual(["held"]);
    expect(peer.closedWith?.[0]).toBe(1000);
  });

  test("the shell's exit reaches the client: the exit message, then 1000 with the status", async () => {
    const { ship, peer, b } = bridge();
    ship.control({ type: "exit", exit_code: 3, signal: null });
    ship.onclose?.({ code: 1000, reason: JSON.stringify({ exit_code: 3, signal: null }) });
    await b.closed;
    expect(peer.controls()).toEqual([{ type: "exit", exit_code: 3, signal: null }]);
    expect(peer.closedWith).toEqual([1000, JSON.stringify({ exit_code: 3, signal: null })]);
  });

  test("Ship's own error messages carry Bay's request id; unknown ones are not passed on", () => {
    const { ship, peer } = bridge();
    ship.control({ type: "error", error: { code: "payload_too_large", message: "m", details: { limit_bytes: 1 } } });
    ship.control({ type: "something-new" });
    expect(peer.controls()).toEqual([
      { type: "error", error: { code: "payload_too_large", message: "m", details: { limit_bytes: 1 }, request_id: "req-1" } },
    ]);
  });

  test("Ship's error messages are not queued for a client that does not read them (review s108: 54 MB per client)", () => {
    const { ship, peer } = bridge();
    peer.buffered = 1024 * 1024;
    for (let i = 0; i < 1000; i++) ship.control({ type: "error", error: { code: "payload_too_large", message: "m", details: {} } });
    expect(peer.controls()).toEqual([]);
    peer.buffered = 0;
    ship.control({ type: "error", error: { code: "payload_too_large", message: "m", details: {} } });
    expect(peer.controls()).toHaveLength(1);
  });

  test("ended by its session: the client gets the error and 1011 with the code; Ship's socket is closed", async () => {
    const { ship, peer, b } = bridge();
    b.end(new BayError("conflict", "stopped", { details: { sandbox_id: "s", reason: "session_ended" } }));
    await b.closed;
    expect(peer.controls()[0]).toMatchObject({ type: "error", error: { code: "conflict", details: { reason: "session_ended" } } });
    expect(peer.closedWith).toEqual([1011, JSON.stringify({ code: "conflict" })]);
    expect(ship.closedWith?.[0]).toBe(1000);
  });

  test("Ship's socket breaking without an exit asks the router why; a client that goes away closes Ship's socket", async () => {
    const { ship, b } = bridge();
    let asked = 0;
    b.onUpstreamLost(() => asked++);
    ship.onclose?.({ code: 1006, reason: "" });
    expect(asked).toBe(1);

    const other = bridge();
    other.b.clientClosed();
    await other.b.closed;
    expect(other.ship.closedWith?.[0]).toBe(1000);
    // Whatever Ship still sends goes nowhere.
    other.ship.output(10);
    expect(other.peer.frames.filter((f) => typeof f !== "string").length).toBe(0);
    b.clientClosed();
  });

  test("a client that attaches after the terminal ended is closed with the same reason", async () => {
    const ship = new FakeShip();
    const b = new TerminalBridge(ship as unknown as WebSocket, "req-2");
    b.end(new BayError("not_found", "gone", { details: { kind: "sandbox", id: "s" } }));
    const late = new FakePeer();
    b.attach(late);
    expect(late.closedWith).toEqual([1011, JSON.stringify({ code: "not_found" })]);
  });

  describe("input acknowledgements (input_acks)", () => {
    function counting(asked: boolean, shipCounts = true) {
      const ship = new FakeShip();
      const peer = new FakePeer();
      const b = new TerminalBridge(ship as unknown as WebSocket, "req-3");
      if (asked) b.countInput();
      if (shipCounts) ship.control({ type: "input_acks" }); // Ship's first message, before the client attached
      b.attach(peer);
      return { ship, peer, b };
    }
    const inputControls = (peer: FakePeer) => peer.controls().filter((m) => String(m.type).startsWith("input_ack"));

    test("a client that asked is told the window, then what the shell took, once per turn, summed while it does not read", async () => {
      const { ship, peer, b } = counting(true);
      expect(inputControls(peer)).toEqual([{ type: "input_acks", window: INPUT_WINDOW }]);
      ship.control({ type: "input_ack", bytes: 10 });
      ship.control({ type: "input_ack", bytes: 5 });
      await tick();
      expect(inputControls(peer).slice(1)).toEqual([{ type: "input_ack", bytes: 15 }]);
      peer.buffered = 1024 * 1024; // not reading
      ship.control({ type: "input_ack", bytes: 7 });
      await tick();
      ship.control({ type: "input_ack", bytes: 3 });
      await tick();
      expect(inputControls(peer)).toHaveLength(2);
      peer.buffered = 0;
      b.drained();
      await tick();
      expect(inputControls(peer).slice(2)).toEqual([{ type: "input_ack", bytes: 10 }]);
      // What is not a count is not passed on.
      for (const bytes of [-1, 0, 1.5, "9", null, Number.MAX_SAFE_INTEGER + 2]) ship.control({ type: "input_ack", bytes });
      await tick();
      expect(inputControls(peer)).toHaveLength(3);
    });

    test("input Bay refuses (the Ship's connection stalled) is acknowledged as taken, so a counting client's window does not shrink for good", async () => {
      const { ship, peer, b } = counting(true);
      ship.stalled = true;
      ship.bufferedAmount = SHIP_INPUT_HIGH_WATER;
      b.fromClient(new Uint8Array(1000));
      await tick();
      expect(inputControls(peer).at(-1)).toEqual({ type: "input_ack", bytes: 1000 });
      expect(peer.controls().some((m) => m.type === "error" && m.error.code === "payload_too_large")).toBe(true);
    });

    test("a client that did not ask, or a Ship that does not count, gets none of it; the window comes when the Ship's word does", async () => {
      const quiet = counting(false);
      quiet.ship.control({ type: "input_ack", bytes: 10 });
      await tick();
      expect(inputControls(quiet.peer)).toEqual([]);
      const old = counting(true, false);
      old.ship.control({ type: "input_ack", bytes: 10 });
      await tick();
      expect(inputControls(old.peer)).toEqual([]);
      old.ship.control({ type: "input_acks" });
      old.ship.control({ type: "input_ack", bytes: 4 });
      await tick();
      expect(inputControls(old.peer)).toEqual([
        { type: "input_acks", window: INPUT_WINDOW },
        { type: "input_ack", bytes: 4 },
      ]);
    });
  });
});
