/**
 * Terminal keystroke round trip: one byte typed into a terminal running
 * `stty raw -echo; cat` (so a program, not the line discipline, echoes it) until
 * it comes back, through Bay's WebSocket (client → Bay → Ship → PTY and back)
 * versus Ship's own terminal WebSocket attached directly. Interleaved.
 */
import { shipDirect } from "../tests/e2e/support/e2e.ts";
import { createSandbox, deleteSandbox, type BenchContext } from "./context.ts";
import { median, ms, p95, ratio, type Row } from "./stats.ts";

/** A terminal WebSocket that echoes what it is sent; `roundTrip` times one byte there and back. */
class EchoTerminal {
  private waiting: { byte: string; resolve: () => void } | null = null;
  private seen = "";

  private constructor(
    private readonly ws: WebSocket,
    private readonly ack: boolean,
  ) {
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => {
      if (typeof e.data === "string") return;
      const bytes = new Uint8Array(e.data as ArrayBuffer);
      // Ship's protocol asks its peer to acknowledge output; Bay does it for its clients.
      if (this.ack) ws.send(JSON.stringify({ type: "ack", bytes: bytes.byteLength }));
      this.seen += new TextDecoder().decode(bytes);
      const w = this.waiting;
      if (w && this.seen.includes(w.byte)) {
        this.waiting = null;
        this.seen = "";
        w.resolve();
      }
    };
  }

  static async open(url: string, headers: Record<string, string>, ack: boolean): Promise<EchoTerminal> {
    const ws = new WebSocket(url, { headers } as unknown as string[]);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`could not open ${url}`));
    });
    const term = new EchoTerminal(ws, ack);
    // The typed line shows RE""ADY; only the output of echo reads READY.
    ws.send(new TextEncoder().encode('stty raw -echo; echo RE""ADY; exec cat\n'));
    await term.expect("READY");
    return term;
  }

  private expect(text: string, timeoutMs = 60_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`terminal never showed ${text}`)), timeoutMs);
      this.waiting = {
        byte: text,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      if (this.seen.includes(text)) {
        this.waiting = null;
        this.seen = "";
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /** Milliseconds from sending `byte` to seeing it echoed. */
  async roundTrip(byte: string): Promise<number> {
    const t0 = performance.now();
    const back = this.expect(byte, 10_000);
    this.ws.send(new TextEncoder().encode(byte));
    await back;
    return performance.now() - t0;
  }

  close(): void {
    this.ws.close();
  }
}

export async function terminalRoundTrip(ctx: BenchContext, runs: number): Promise<Row[]> {
  const { id } = await createSandbox(ctx);
  try {
    const viaBay = await EchoTerminal.open(`${ctx.bay.url.replace("http:", "ws:")}/v1/sandboxes/${id}/terminal`, ctx.auth, false);
    const ship = await shipDirect(ctx.bay, id);
    const created = await fetch(`${ship.endpoint}/terminals`, {
      method: "POST",
      headers: { ...ship.headers, "content-type": "application/json" },
      body: JSON.stringify({ cols: 80, rows: 24 }),
    });
    const { terminal_id } = (await created.json()) as { terminal_id: string };
    const direct = await EchoTerminal.open(`${ship.endpoint.replace("http:", "ws:")}/terminals/${terminal_id}`, ship.headers, true);
    try {
      const letters = "abcdefghijklmnopqrstuvwxyz";
      for (let i = 0; i < 20; i++) {
        await viaBay.roundTrip(letters[i % 26]!);
        await direct.roundTrip(letters[i % 26]!);
      }
      const bay: number[] = [];
      const dir: number[] = [];
      for (let i = 0; i < runs; i++) {
        const byte = letters[i % 26]!;
        if (i % 2 === 0) {
          bay.push(await viaBay.roundTrip(byte));
          dir.push(await direct.roundTrip(byte));
        } else {
          dir.push(await direct.roundTrip(byte));
          bay.push(await viaBay.roundTrip(byte));
        }
      }
      const name = "terminal keystroke round trip";
      return [
        { bench: name, measure: "p50", runs, bay: ms(median(bay)), direct: ms(median(dir)), ratio: ratio(median(bay), median(dir)) },
        { bench: name, measure: "p95", runs, bay: ms(p95(bay)), direct: ms(p95(dir)), ratio: ratio(p95(bay), p95(dir)) },
      ];
    } finally {
      viaBay.close();
      direct.close();
    }
  } finally {
    await deleteSandbox(ctx, id);
  }
}
