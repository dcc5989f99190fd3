/**
 * An HTTP/1.1 GET on a bare socket whose reading a test stops and restarts. A
 * fetch client reads ahead of its reader into buffers of its own, so a test of
 * what a server does for a client that does not read needs a socket it controls:
 * while paused nothing is read from the kernel, which fills up and pushes back.
 * The body (dechunked) is a ReadableStream, read with backpressure too.
 */
import { connect, type Socket } from "node:net";

const CRLF = Buffer.from("\r\n");

export class RawHttpGet {
  /** Bytes read from the socket so far (head, framing and body). */
  received = 0;
  readonly body: ReadableStream<Uint8Array>;
  private ctrl!: ReadableStreamDefaultController<Uint8Array>;
  private held = false;
  private full = false;
  private pending = Buffer.alloc(0);
  /** Body bytes still due in the current chunk; -1 between chunks (a size line next). */
  private due = -1;
  private ended = false;

  private constructor(
    private readonly socket: Socket,
    readonly status: number,
    readonly headers: Record<string, string>,
    rest: Buffer,
  ) {
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.ctrl = c;
        },
        pull: () => {
          this.full = false;
          this.flow();
        },
        cancel: () => {
          socket.destroy();
        },
      },
      { highWaterMark: 1 },
    );
    if (headers["transfer-encoding"] !== "chunked") throw new Error(`expected a chunked body, got ${JSON.stringify(headers)}`);
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("close", () => this.end());
    socket.on("error", () => {});
    if (rest.length) this.onData(rest);
  }

  /** Sends the request and resolves once the status line and headers arrived. */
  static open(port: number, path: string, headers: Record<string, string> = {}): Promise<RawHttpGet> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      let head = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onData);
        const [statusLine = "", ...lines] = head.subarray(0, end).toString("latin1").split("\r\n");
        const fields: Record<string, string> = {};
        for (const l of lines) {
          const i = l.indexOf(":");
          fields[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        try {
          const raw = new RawHttpGet(socket, Number(statusLine.split(" ")[1]), fields, head.subarray(end + 4));
          raw.received = head.length;
          resolve(raw);
        } catch (e) {
          socket.destroy();
          reject(e);
        }
      };
      socket.on("data", onData);
      socket.once("error", reject);
      socket.once("connect", () => {
        const lines = Object.entries({ host: `127.0.0.1:${port}`, ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
        socket.write(`GET ${path} HTTP/1.1\r\n${lines.join("")}\r\n`);
      });
    });
  }

  /** Stops reading the socket (until `resume`). */
  pause(): void {
    this.held = true;
    this.flow();
  }

  resume(): void {
    this.held = false;
    this.flow();
  }

  private flow(): void {
    if (this.held || this.full) this.socket.pause();
    else this.socket.resume();
  }

  private onData(d: Buffer): void {
    if (this.ended) return;
    this.received += d.length;
    let buf = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    for (;;) {
      if (this.due < 0) {
        const nl = buf.indexOf(CRLF);
        if (nl < 0) break;
        const size = Number.parseInt(buf.subarray(0, nl).toString("latin1"), 16);
        buf = buf.subarray(nl + 2);
        if (size === 0) {
          this.end();
          return;
        }
        this.due = size;
      }
      if (this.due > 0) {
        if (buf.length === 0) break;
        const part = buf.subarray(0, this.due);
        this.due -= part.length;
        buf = buf.subarray(part.length);
        this.ctrl.enqueue(new Uint8Array(part));
      }
      // The CRLF after a chunk's data.
      if (buf.length < 2) break;
      buf = buf.subarray(2);
      this.due = -1;
    }
    this.pending = Buffer.from(buf);
    if ((this.ctrl.desiredSize ?? 1) <= 0) {
      this.full = true;
      this.flow();
    }
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.destroy();
    try {
      this.ctrl.close();
    } catch {
      // already cancelled
    }
  }
}
