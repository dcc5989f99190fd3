/**
 * The terminal against clients that misbehave, through Bay on real Docker, with
 * a WebSocket written byte by byte: a client that vanishes without a close
 * frame, frames over the 1 MiB bound (sent, or only announced), unmasked frames,
 * and resize messages that are not. Each time the shell is hung up (its
 * programs end) or goes on unharmed, and Bay keeps serving.
 */
import { describe, expect, test } from "bun:test";
import { pollUntil, type TestBay } from "../support/harness.ts";
import { frame, RawWebSocket } from "../support/raw-websocket.ts";
import { sh, withSandbox } from "./support/e2e.ts";
import type { ServedBay } from "./support/serve.ts";
import { servedE2eBay } from "./support/suite.ts";

let t: TestBay;
let served: ServedBay;
servedE2eBay((bay, s) => {
  t = bay;
  served = s;
});

const port = () => Number(served.host.split(":")[1]);
const open = (id: string, query = "") => RawWebSocket.open(port(), `/v1/sandboxes/${id}/terminal${query}`, { "x-owner": "alice" });

/** Starts a foreground `sleep` in the terminal's shell; returns the shell's and the sleep's pids. */
async function busyShell(t: TestBay, id: string, ws: RawWebSocket): Promise<{ shell: number; child: number }> {
  ws.type('echo "pid=$$"; sleep 3600\n');
  const shell = Number((await ws.waitFor(/pid=(\d+)/, 60_000))[1]);
  const children = await pollUntil(
    async () => (await sh(t, id, { command: `cat /proc/${shell}/task/${shell}/children` })).body.output.trim(),
    (out: string) => out !== "",
    30_000,
    "the shell's sleep",
  );
  return { shell, child: Number(children.split(/\s+/)[0]) };
}

/** Waits until none of the pids runs any more in the sandbox. */
async function allGone(t: TestBay, id: string, pids: number[]): Promise<void> {
  const probe = pids.map((p) => `test -d /proc/${p} && echo alive-${p}`).join("; ");
  await pollUntil(
    async () => (await sh(t, id, { command: `${probe}; true` })).body.output.trim(),
    (out: string) => out === "",
    30_000,
    `processes ${pids.join(", ")} to end`,
  );
}

describe("terminal against hostile clients", () => {
  test("a client that vanishes without a close frame: the shell is hung up, its programs end, Bay serves the next", async () => {
    await withSandbox(t, async (id) => {
      const ws = await open(id);
      const pids = await busyShell(t, id, ws);
      ws.vanish();
      await allGone(t, id, [pids.shell, pids.child]);
      const next = await open(id);
      next.type("echo next-$((6*7))\n");
      await next.waitFor(/next-42/, 60_000);
      next.vanish();
    });
  });

  test("a frame over 1 MiB closes the connection (1009) and hangs the shell up; one that only announces its size is not waited for", async () => {
    await withSandbox(t, async (id) => {
      const big = await open(id);
      const pids = await busyShell(t, id, big);
      await big.write(frame(2, new Uint8Array(1024 * 1024 + 1)));
      await big.ended;
      expect(big.closeFrame?.code).toBe(1009);
      await allGone(t, id, [pids.shell, pids.child]);

      // A header that claims 2^40 bytes and sends none: refused on the header, nothing is held for it.
      const liar = await open(id);
      liar.type("echo liar-ready\n");
      await liar.waitFor(/liar-ready/, 60_000);
      await liar.write(frame(2, new Uint8Array(0), { declaredLength: 1n << 40n }));
      await liar.ended;
      expect(liar.closeFrame?.code).toBe(1009);

      // An unmasked client frame breaks the protocol: the connection is closed.
      const unmasked = await open(id);
      unmasked.type("echo unmasked-ready\n");
      await unmasked.waitFor(/unmasked-ready/, 60_000);
      await unmasked.write(frame(2, new TextEncoder().encode("echo should-not-run\n"), { mask: false }));
      await unmasked.ended;
      expect(unmasked.screen).not.toContain("should-not-run\r\n");
      expect(unmasked.closeFrame?.code ?? 1006).not.toBe(1000);
    });
  });

  test("resize messages that are not: each answered with an error message; the size stays, the shell goes on", async () => {
    await withSandbox(t, async (id) => {
      const ws = await open(id, "?cols=90&rows=33");
      ws.type("echo up\n");
      await ws.waitFor(/up\r\n/, 60_000);
      const bad = [
        '{"type":"resize","cols":0,"rows":24}',
        '{"type":"resize","cols":80,"rows":-1}',
        '{"type":"resize","cols":80.5,"rows":24}',
        '{"type":"resize","cols":"80","rows":"24"}',
        '{"type":"resize","cols":80}',
        '{"type":"resize","cols":1001,"rows":24}',
        '{"type":"resize","cols":1e308,"rows":1e308}',
        '{"type":"RESIZE","cols":80,"rows":24}',
        '{"type":"ack","bytes":1}',
        '{"type":"exit","exit_code":0}',
        "[]",
        "null",
        "",
        "\u0000\u00ff",
        `${"[".repeat(100_000)}${"]".repeat(100_000)}`,
        `{"type":"resize","cols":80,"rows":24,"pad":"${"x".repeat(900_000)}"}`.replace('"rows":24', '"rows":0'),
      ];
      for (const text of bad) ws.text(text);
      await pollUntil(
        () => ws.texts.length,
        (n) => n >= bad.length,
        30_000,
        "an answer to every bad message",
      );
      const answers = ws.texts.map((x) => JSON.parse(x));
      expect(answers.length).toBe(bad.length);
      for (const a of answers)
        expect(a).toMatchObject({ type: "error", error: { code: "validation_error", request_id: expect.any(String) } });
      const mark = ws.screen.length;
      ws.type("stty size\n");
      await ws.waitFor(/33 90\r\n/, 30_000);
      expect(ws.screen.slice(mark)).toContain("33 90");
      ws.text('{"type":"resize","cols":100,"rows":20}');
      ws.type("stty size\n");
      await ws.waitFor(/20 100\r\n/, 30_000);
      ws.vanish();
    });
  });
});
