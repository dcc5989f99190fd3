/**
 * Long-lived answers of capability calls: event streams, downloads and
 * WebSocket channels. While one is open its session stays covered (the idle
 * deadline is pushed forward, so no replica's reaper reclaims it); when it ends
 * the cover goes. When the session ends under it (a stop, an idle reclaim, an
 * expiry, a delete, or the runtime dying), an event stream ends with an `error`
 * event in the error model and a channel is told why, instead of a body that
 * just stops.
 *
 * The end is learned three ways: this process ended the session (at once), the
 * connection to the Ship broke (a container removed by another replica), or the
 * periodic cover renewal finds that the sandbox moved on (a connection that died
 * silently).
 */
import { BayError, notFound } from "../errors.ts";
import { relayed } from "../relayed-bytes.ts";
import { expiredError } from "./lifecycle.ts";

/** A long-lived answer that is not an HTTP body: a WebSocket bridge. */
export interface OpenChannel {
  /** Settles once the channel is closed, by either side. */
  readonly closed: Promise<unknown>;
  /** Ends the channel because its sandbox's runtime went away (or its cover check failed). */
  end(error: BayError): void;
  /** Registers who is told when the channel's upstream broke on its own, to explain why. */
  onUpstreamLost?(fn: () => void): void;
}

/** After a channel's upstream broke, how long it waits for the router to say why before it ends anyway. */
export const LOST_GRACE_MS = 5_000;

/**
 * A channel's upstream broke by itself: `explain` (the router, registered with
 * onUpstreamLost) learns it and ends the channel with the reason; if nobody does
 * within the grace, it ends as a lost connection.
 */
export function channelLost(channel: OpenChannel, explain: (() => void) | null): void {
  explain?.();
  const timer = setTimeout(
    () =>
      channel.end(new BayError("ship_error", "the connection to the sandbox runtime was lost", { details: { reason: "connection_lost" } })),
    LOST_GRACE_MS,
  );
  timer.unref?.();
  void channel.closed.finally(() => clearTimeout(timer));
}

export const isOpenChannel = (x: unknown): x is OpenChannel =>
  typeof x === "object" &&
  x !== null &&
  "closed" in x &&
  (x as OpenChannel).closed instanceof Promise &&
  typeof (x as OpenChannel).end === "function";

/** What the streams need from the rest of Bay. */
export interface StreamHooks {
  /** Pushes the sandbox's idle deadline to now + idle timeout. */
  extend(): Promise<void>;
  /** Whether the sandbox still runs this stream's session. */
  stillCurrent(): Promise<boolean>;
  /** Why the stream ended: the error its client gets. */
  whyEnded(): Promise<BayError>;
  /** Runs once when the stream is over (releases the call's cover). */
  done(): void;
}

/** Listeners per sandbox, called when this process ends one of its sessions. */
export class SessionEndSignals {
  private readonly bySandbox = new Map<string, Set<() => void>>();

  /** Registers `fn` for `sandboxId`; the returned function unregisters it. */
  on(sandboxId: string, fn: () => void): () => void {
    const set = this.bySandbox.get(sandboxId) ?? new Set();
    set.add(fn);
    this.bySandbox.set(sandboxId, set);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.bySandbox.delete(sandboxId);
    };
  }

  /** The sandbox's session ended (or its containers were removed). */
  fire(sandboxId: string): void {
    for (const fn of [...(this.bySandbox.get(sandboxId) ?? [])]) fn();
  }
}

const encoder = new TextEncoder();

/** An `error` event carrying the error model's body. */
export function errorEvent(err: BayError, requestId: string): Uint8Array {
  const body = { error: { code: err.code, message: err.message, request_id: requestId, details: err.details } };
  return encoder.encode(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
}

/**
 * The error a stream's client gets when its session ended under it, from the
 * sandbox as it is now: deleted (404), expired (409), or stopped on purpose
 * (conflict, session_ended); `lost` when the runtime went away by itself.
 */
export function endedError(sandbox: { deletedAt: number | null; status: string } | null, sandboxId: string, lost: boolean): BayError {
  if (!sandbox || sandbox.deletedAt !== null) return notFound("sandbox", sandboxId);
  if (sandbox.status === "expired") return expiredError(sandboxId);
  if (lost) {
    return new BayError("ship_error", "the connection to the sandbox runtime was lost", { details: { reason: "connection_lost" } });
  }
  return new BayError("conflict", "the sandbox's runtime was stopped (stop, idle reclaim or restart) while this stream was open", {
    details: { sandbox_id: sandboxId, reason: "session_ended" },
  });
}

/** How often the cover is renewed (and the session's currency checked). */
export const renewInterval = (idleMs: number): number => Math.max(1_000, Math.min(idleMs / 2, 60_000));

/** Keeps the cover alive on a timer; `onLost` runs when the sandbox no longer runs this session. */
function renewing(hooks: StreamHooks, idleMs: number, onLost: () => void): () => void {
  const timer = setInterval(() => {
    void hooks.extend().catch(() => {});
    void hooks
      .stillCurrent()
      .then((current) => {
        if (!current) onLost();
      })
      .catch(() => {});
  }, renewInterval(idleMs));
  timer.unref?.();
  return () => clearInterval(timer);
}

/**
 * Wraps a streamed answer. Its body is pulled through as the client reads (no
 * buffering: a slow client slows the Ship's stream). An event stream whose
 * session ends, or whose upstream breaks, gets a last `error` event; other
 * bodies (downloads) end with an error, as a truncated transfer must.
 */
export function coverStream(
  res: Response,
  hooks: StreamHooks,
  idleMs: number,
  signals: SessionEndSignals,
  sandboxId: string,
  requestId: string,
  /** Whether the body is Bay's event stream (default: by its type), which gets Bay's last `error` event. */
  events = (res.headers.get("content-type") ?? "").startsWith("text/event-stream"),
): Response {
  const upstream = res.body!.getReader();
  let finished = false;
  let ending: Promise<void> | null = null;
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  const release = () => {
    if (finished) return;
    finished = true;
    stopRenew();
    unsubscribe();
    hooks.done();
  };
  /** Ends an event stream with its error event (once). */
  const endWithError = (): Promise<void> => {
    ending ??= (async () => {
      const err = await hooks.whyEnded().catch(() => new BayError("internal_error", "internal error"));
      if (!finished) {
        try {
          ctrl.enqueue(errorEvent(err, requestId));
          ctrl.close();
        } catch {
          // The client already went away.
        }
      }
      release();
      void upstream.cancel().catch(() => {});
    })();
    return ending;
  };
  /** A non-event body cut by its session's end: it must fail, not look complete. */
  let cut = false;
  const onEnded = () => {
    if (events) void endWithError();
    else if (!finished) {
      cut = true;
      void upstream.cancel().catch(() => {});
    }
  };
  const stopRenew = renewing(hooks, idleMs, onEnded);
  const unsubscribe = signals.on(sandboxId, onEnded);
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      ctrl = c;
    },
    async pull(c) {
      if (ending) return ending;
      try {
        const { done, value } = await upstream.read();
        if (ending) return ending;
        if (cut) throw new Error("the session ended during the transfer");
        if (done) {
          release();
          c.close();
          return;
        }
        c.enqueue(value);
        relayed(value.byteLength);
      } catch (e) {
        if (events) return endWithError();
        release();
        c.error(e);
      }
    },
    async cancel(reason) {
      release();
      await upstream.cancel(reason).catch(() => {});
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/**
 * What the server tells about one request whose answer it streams on itself:
 * whether that answer is over (sent whole, or its client went away), and a way
 * to break the upstream body mid-transfer.
 */
export interface SentBody {
  over(): boolean;
  cut(): void;
}

/** How often an answer handed to the server is checked for being over: its cover is released at most this late. */
export const SENT_POLL_MS = 100;

/**
 * Covers a download whose body the server streams on as it is: Bun pipes the
 * Ship's response to the client without a chunk passing through JavaScript
 * (coverStream's pull-through kept tens of MiB of chunk garbage alive during a
 * large transfer). The same bookkeeping is done from outside: the cover is
 * renewed and released once `sent.over()` (polled); a session that ends under
 * it cuts the Ship's body, so the client's transfer fails instead of ending
 * short as if complete.
 */
export function coverSentBody(
  res: Response,
  hooks: StreamHooks,
  idleMs: number,
  signals: SessionEndSignals,
  sandboxId: string,
  sent: SentBody,
): Response {
  let finished = false;
  const release = () => {
    if (finished) return;
    finished = true;
    clearInterval(poll);
    stopRenew();
    unsubscribe();
    hooks.done();
  };
  const onEnded = () => {
    if (!finished) sent.cut();
  };
  const stopRenew = renewing(hooks, idleMs, onEnded);
  const unsubscribe = signals.on(sandboxId, onEnded);
  const poll = setInterval(() => {
    if (sent.over()) release();
  }, SENT_POLL_MS);
  poll.unref?.();
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** Covers a channel until it closes; ends it when its session ends. */
export function holdChannel(channel: OpenChannel, hooks: StreamHooks, idleMs: number, signals: SessionEndSignals, sandboxId: string): void {
  let over = false;
  const onEnded = () => {
    if (over) return;
    void hooks
      .whyEnded()
      .catch(() => new BayError("internal_error", "internal error"))
      .then((err) => channel.end(err));
  };
  const stopRenew = renewing(hooks, idleMs, onEnded);
  const unsubscribe = signals.on(sandboxId, onEnded);
  channel.onUpstreamLost?.(onEnded);
  void channel.closed.finally(() => {
    over = true;
    stopRenew();
    unsubscribe();
    hooks.done();
  });
}
