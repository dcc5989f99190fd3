/**
 * A terminal client for tests: a real WebSocket (Bun's, which may send headers),
 * the screen as text, control messages apart, and the close frame.
 */

export interface TerminalClientOptions {
  headers?: Record<string, string>;
  /** Send `{"type":"ack"}` for every output frame (what Ship's protocol asks of Bay). */
  ack?: boolean;
}

export class TerminalClient {
  screen = "";
  /** Output bytes received. */
  received = 0;
  readonly controls: any[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly decoder = new TextDecoder();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.onclose = (e) => resolve({ code: e.code, reason: e.reason });
    });
  }

  /** Connects; rejects with the handshake's failure (Bun names the HTTP status in it). */
  static async open(url: string, opts: TerminalClientOptions = {}): Promise<TerminalClient> {
    const ws = new WebSocket(url, (opts.headers ? { headers: opts.headers } : undefined) as unknown as string[]);
    ws.binaryType = "arraybuffer";
    const client = new TerminalClient(ws);
    ws.onmessage = (e) => {
      if (typeof e.data === "string") {
        client.controls.push(JSON.parse(e.data));
        return;
      }
      const bytes = new Uint8Array(e.data as ArrayBuffer);
      client.received += bytes.byteLength;
      client.screen += client.decoder.decode(bytes, { stream: true });
      if (opts.ack) ws.send(JSON.stringify({ type: "ack", bytes: bytes.byteLength }));
    };
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (e) => reject(new Error((e as ErrorEvent).message ?? "websocket error"));
    });
    return client;
  }

  /** Types text (sent as a binary frame, as a terminal sends keystrokes). */
  type(text: string): void {
    this.ws.send(new TextEncoder().encode(text));
  }

  control(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** Waits until the screen (from `from` on) matches, or fails showing its tail. */
  async waitFor(re: RegExp, ms = 20_000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    // Only what arrived since the last look is searched (with an overlap for a match across the seam).
    let start = from;
    for (;;) {
      const m = this.screen.slice(start).match(re);
      if (m) return m;
      start = Math.max(from, this.screen.length - 1024);
      if (Date.now() > deadline) throw new Error(`screen never matched ${re}; its tail: ${JSON.stringify(this.screen.slice(-400))}`);
      await Bun.sleep(20);
    }
  }

  /** Waits for a control message of this type. */
  async waitForControl(type: string, ms = 20_000): Promise<any> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.controls.find((c) => c.type === type);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no "${type}" control message; got ${JSON.stringify(this.controls)}`);
      await Bun.sleep(20);
    }
  }

  close(): void {
    this.ws.close();
  }
}

/** The status a refused WebSocket handshake answered with (from Bun's error message). */
export async function handshakeStatus(url: string, headers?: Record<string, string>): Promise<number> {
  try {
    const c = await TerminalClient.open(url, headers ? { headers } : {});
    c.close();
    return 101;
  } catch (e) {
    const m = /status code:? (\d{3})/i.exec((e as Error).message);
    if (!m) throw e;
    return Number(m[1]);
  }
}
