/**
 * A WebSocket client on a bare TCP socket, for hostile tests: it writes frames
 * byte by byte as it is told (oversized, lying about their length, unmasked)
 * and can vanish without a close frame, which no well-behaved client does.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";

export interface RawFrame {
  opcode: number;
  payload: Buffer;
}

export interface FrameOptions {
  /** Mask the payload, as a client must (default true). */
  mask?: boolean;
  /** The length written in the header, when it should lie. */
  declaredLength?: bigint;
}

/** One frame's bytes. */
export function frame(opcode: number, payload: Uint8Array, opts: FrameOptions = {}): Buffer {
  const mask = opts.mask ?? true;
  const len = opts.declaredLength ?? BigInt(payload.byteLength);
  const head: number[] = [0x80 | opcode];
  const m = mask ? 0x80 : 0;
  if (len < 126n) head.push(m | Number(len));
  else if (len < 65536n) head.push(m | 126, Number(len >> 8n) & 0xff, Number(len) & 0xff);
  else {
    head.push(m | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((len >> BigInt(8 * i)) & 0xffn));
  }
  const key = mask ? randomBytes(4) : Buffer.alloc(0);
  const body = Buffer.from(payload);
  if (mask) for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i % 4]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** Screen text kept (its tail): enough for markers, not a copy of everything a long stream sent. */
const SCREEN_TAIL = 64 * 1024;

export class RawWebSocket {
  /** The tail of the terminal output received (binary frames), decoded as text. */
  screen = "";
  /** Terminal output bytes received in all. */
  received = 0;
  readonly texts: string[] = [];
  /** The server's close frame, if one came. */
  closeFrame: { code: number; reason: string } | null = null;
  /** Resolves when the TCP connection ends (either side). */
  readonly ended: Promise<void>;
  private buf = Buffer.alloc(0);
  private readonly decoder = new TextDecoder();

  private constructor(
    readonly socket: Socket,
    rest: Buffer,
  ) {
    this.ended = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("error", () => {});
    if (rest.length) this.onData(rest);
  }

  /** Opens `path` on `host:port` with the handshake and headers given; rejects unless the answer is 101. */
  static open(port: number, path: string, headers: Record<string, string> = {}): Promise<RawWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      let head = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onData);
        const status = head.subarray(0, end).toString("latin1").split("\r\n")[0] ?? "";
        if (!/^HTTP\/1\.1 101 /.test(status)) {
          socket.destroy();
          reject(new Error(`handshake answered ${status}`));
          return;
        }
        resolve(new RawWebSocket(socket, head.subarray(end + 4)));
      };
      socket.on("data", onData);
      socket.once("error", reject);
      socket.once("connect", () => {
        const lines = [
          `GET ${path} HTTP/1.1`,
          `Host: 127.0.0.1:${port}`,
          "Upgrade: websocket",
          "Connection: Upgrade",
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
          "Sec-WebSocket-Version: 13",
          ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
        ];
        socket.write(`${lines.join("\r\n")}\r\n\r\n`);
      });
    });
  }

  /** Types text as a (masked) binary frame. */
  type(text: string): void {
    this.socket.write(frame(2, new TextEncoder().encode(text)));
  }

  /** A text frame (a control message). */
  text(value: string): void {
    this.socket.write(frame(1, new TextEncoder().encode(value)));
  }

  /** Writes raw bytes as they are. */
  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      if (!this.socket.write(bytes)) this.socket.once("drain", () => resolve());
      else resolve();
    });
  }

  /** Stops reading from the connection (its TCP window fills, as with a client that cannot keep up). */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /** Goes away without a close frame (what a crashed browser or a cut network looks like). */
  vanish(): void {
    this.socket.resetAndDestroy();
  }

  async waitFor(re: RegExp, ms = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this.screen.match(re);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`screen never matched ${re}; its tail: ${JSON.stringify(this.screen.slice(-300))}`);
      await Bun.sleep(20);
    }
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const f = this.parse();
      if (!f) return;
      if (f.opcode === 2) {
        this.received += f.payload.byteLength;
        this.screen += this.decoder.decode(f.payload, { stream: true });
        if (this.screen.length > 2 * SCREEN_TAIL) this.screen = this.screen.slice(-SCREEN_TAIL);
      } else if (f.opcode === 1) this.texts.push(f.payload.toString("utf8"));
      else if (f.opcode === 8) {
        this.closeFrame = {
          code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005,
          reason: f.payload.subarray(2).toString("utf8"),
        };
      }
    }
  }

  /** One whole server frame off the buffer (servers never mask), or null. */
  private parse(): RawFrame | null {
    const b = this.buf;
    if (b.length < 2) return null;
    let len = b[1]! & 0x7f;
    let at = 2;
    if (len === 126) {
      if (b.length < 4) return null;
      len = b.readUInt16BE(2);
      at = 4;
    } else if (len === 127) {
      if (b.length < 10) return null;
      len = Number(b.readBigUInt64BE(2));
      at = 10;
    }
    if (b.length < at + len) return null;
    const f = { opcode: b[0]! & 0x0f, payload: b.subarray(at, at + len) };
    this.buf = b.subarray(at + len);
    return f;
  }
}
