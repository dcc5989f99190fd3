/** Reading a `text/event-stream` response in tests, event by event, as a client would. */

/** One event: its name and its JSON data. */
export interface SseEvent {
  event: string;
  data: any;
}

export class EventReader {
  /** Comment lines seen so far (heartbeats, the opening comment). */
  readonly comments: string[] = [];
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffered = "";
  private done = false;

  constructor(res: Response) {
    if (!res.body) throw new Error("the response has no body");
    this.reader = res.body.getReader();
  }

  /** The next event, or null once the stream ended. */
  async next(): Promise<SseEvent | null> {
    for (;;) {
      const block = await this.block();
      if (block === null) return null;
      const event = this.parse(block);
      if (event) return event;
    }
  }

  /** Reads on until a comment line `match` accepts; the events passed on the way are returned. */
  async untilComment(match: (comment: string) => boolean): Promise<SseEvent[]> {
    const seen: SseEvent[] = [];
    for (;;) {
      const before = this.comments.length;
      const block = await this.block();
      if (block === null) throw new Error("stream ended before the awaited comment");
      const event = this.parse(block);
      if (event) seen.push(event);
      if (this.comments.slice(before).some(match)) return seen;
    }
  }

  private async block(): Promise<string | null> {
    for (;;) {
      const end = this.buffered.indexOf("\n\n");
      if (end >= 0) {
        const block = this.buffered.slice(0, end);
        this.buffered = this.buffered.slice(end + 2);
        return block;
      }
      if (this.done) {
        if (this.buffered.trim()) throw new Error(`stream ended inside an event: ${JSON.stringify(this.buffered.slice(0, 200))}`);
        return null;
      }
      const { done, value } = await this.reader.read();
      if (done) this.done = true;
      else this.buffered += this.decoder.decode(value, { stream: true });
    }
  }

  /** Events up to and including the first one `match` accepts; throws if the stream ends first. */
  async until(match: (e: SseEvent) => boolean): Promise<SseEvent[]> {
    const seen: SseEvent[] = [];
    for (;;) {
      const e = await this.next();
      if (!e) throw new Error(`stream ended before the awaited event; saw ${JSON.stringify(seen).slice(0, 500)}`);
      seen.push(e);
      if (match(e)) return seen;
    }
  }

  /** Every remaining event, to the end of the stream. */
  async rest(): Promise<SseEvent[]> {
    const seen: SseEvent[] = [];
    for (let e = await this.next(); e; e = await this.next()) seen.push(e);
    return seen;
  }

  /** Goes away like a client closing the connection. */
  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }

  private parse(block: string): SseEvent | null {
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) this.comments.push(line.slice(1).trim());
      else if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (data.length === 0) return null;
    return { event, data: JSON.parse(data.join("\n")) };
  }
}

/** The text of the stdout (or stderr) events among `events`, joined. */
export const streamText = (events: SseEvent[], name: "stdout" | "stderr"): string =>
  events
    .filter((e) => e.event === name)
    .map((e) => e.data.text as string)
    .join("");

/** Events waited for by name (the interactive routes' streams): a thin layer over EventReader. */
export class SseReader {
  private readonly events: EventReader;

  constructor(res: Response) {
    this.events = new EventReader(res);
  }

  /** The next event, or null once the stream ended. */
  next(): Promise<SseEvent | null> {
    return this.events.next();
  }

  /** Reads on to the first event named `name` and returns it; fails if the stream ends first. */
  async until(name: string): Promise<SseEvent> {
    return (await this.events.until((e) => e.event === name)).at(-1)!;
  }

  rest(): Promise<SseEvent[]> {
    return this.events.rest();
  }

  cancel(): Promise<void> {
    return this.events.cancel();
  }
}
