/**
 * The messages of a Connect stream body (each enveloped: a flags byte, a 4-byte big-endian
 * length, the message), read as the body comes, cut anywhere: each message's bytes go to
 * a judge of its own, which is told when its message ends. The one reader of request
 * envelopes in Bay (envd's shaped bodies, JSON and protobuf); the writer is connect-es's
 * `encodeEnvelope`.
 */

/** A judge of one message's bytes, fed in pieces, told when the message ends; throws to refuse it. */
export interface MessageJudge {
  feed(b: Uint8Array): void;
  end(): void;
}

/** connect-es's compressed-message flag: such a message is no text or protobuf to judge (Connect refuses it: no compression is accepted). */
export const COMPRESSED = 0x01;

export class EnvelopedMessages {
  private readonly header = new Uint8Array(5);
  private headerSeen = 0;
  private left = 0;
  private message: MessageJudge | null = null;

  /** `judge(flags, length)`: a fresh judge for each message, whatever its flags (see COMPRESSED). */
  constructor(private readonly judge: (flags: number, length: number) => MessageJudge) {}

  /** Throws what a message's judge throws, before the rest of `b` is read. */
  feed(b: Uint8Array): void {
    let i = 0;
    while (i < b.length) {
      if (this.left === 0) {
        const take = Math.min(5 - this.headerSeen, b.length - i);
        this.header.set(b.subarray(i, i + take), this.headerSeen);
        this.headerSeen += take;
        i += take;
        if (this.headerSeen < 5) return;
        this.headerSeen = 0;
        const flags = this.header[0]!;
        this.left = new DataView(this.header.buffer).getUint32(1);
        this.message = this.judge(flags, this.left);
        if (this.left === 0) this.message.end();
        continue;
      }
      const take = Math.min(this.left, b.length - i);
      this.message?.feed(b.subarray(i, i + take));
      this.left -= take;
      i += take;
      if (this.left === 0) this.message?.end();
    }
  }
}
