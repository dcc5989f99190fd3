/**
 * envd's polling watchers (CreateWatcher, GetWatcherEvents, RemoveWatcher): what the
 * E2B Python SDK's synchronous `files.watch_dir` uses, since a sync client cannot hold
 * a stream open between its calls. A watcher is Bay's file watch (the same stream as
 * WatchDir) read in the background into a bounded list, which each poll takes.
 *
 * Bounds: a live watcher holds one of its owner's open-stream slots (like any watch);
 * an owner has at most `maxPerOwner` watchers, ended ones included, until they are
 * polled out or removed; a watcher keeps at most `maxEvents` unread events and
 * `maxBytes` characters of their paths (past either, or when Ship reports changes it dropped, it
 * stops, and its next poll says events were lost: DataLoss). One nobody polls for
 * `idleMs` is removed, and an ended one after `endedMs` (its sandbox may be gone, and
 * with it every call that could poll it). What one owner's watchers keep together is at
 * most `maxOwnerBytes`, a share of what all of them keep (`maxTotalBytes`), so that one
 * owner cannot take it all and stop everyone else's watchers (review s94 F1). A watcher answers only calls for its own sandbox
 * (another sandbox's token sees NotFound, as for an unknown id), lives in the Bay
 * process that created it, and ends with its watch (directory removed, sandbox
 * stopped or deleted): the poll after the last events says so.
 */
import { streamEndCode } from "./connect-errors.ts";
import { Code, ConnectError } from "@connectrpc/connect";
import type { SandboxWatch } from "../../domain/sandbox-watch.ts";
import { BayError } from "../../errors.ts";
import type { DataPlaneCall } from "./access.ts";
import { readEvents, type StreamEvent } from "./sse-events.ts";
import { changesLost } from "./watch-events.ts";

/** A change as GetWatcherEvents reports it (the name relative to the watched directory). */
export interface WatcherEvent {
  name: string;
  type: string;
}

export interface PollingWatchersOptions {
  watch: SandboxWatch;
  /** Watchers an owner may have, ended ones not yet taken included (default 64, Bay's open-stream limit). */
  maxPerOwner?: number;
  /** Unread events a watcher keeps; past that it stops (default 10,000). */
  maxEvents?: number;
  /** Characters of unread events' paths and types a watcher keeps; past that it stops (default 1 Mi: 1–2 MiB). */
  maxBytes?: number;
  /**
   * The same for all of this process's watchers together, whoever owns them (default 64 Mi:
   * 64–128 MiB); past that, the watcher whose event would go over stops.
   */
  maxTotalBytes?: number;
  /**
   * Characters each kept event is charged on top of its path and type (default 64): its object's
   * own heap (about 100 bytes), so that the budgets above bound memory for short names too (review s96 F1).
   */
  eventChars?: number;
  /** The same for one owner's watchers together (default a quarter of maxTotalBytes); past that, the owner's watcher whose event would go over stops. */
  maxOwnerBytes?: number;
  /** A watcher nobody polls for this long is removed (default 5 minutes). */
  idleMs?: number;
  /** An ended watcher is removed this long after it ended, polled or not (default 30 s). */
  endedMs?: number;
  /** How long CreateWatcher waits for the watch to be ready (default 30 s). */
  readyMs?: number;
}

interface Watcher {
  owner: string;
  sandboxId: string;
  events: WatcherEvent[];
  /** Characters of the unread events' paths (as the Ship sent them) and types. */
  bytes: number;
  /** Why it stopped (its watch ended, or too many events piled up), once it has. */
  ended: ConnectError | null;
  stop: () => void;
  idle: ReturnType<typeof setTimeout> | undefined;
  /** Removed: what it still reads is not kept (nor counted). */
  dropped?: boolean;
}

export class PollingWatchers {
  private readonly watchers = new Map<string, Watcher>();
  /** Creates under way per owner (their watch not ready yet). */
  private readonly starting = new Map<string, number>();
  private readonly maxPerOwner: number;
  private readonly maxEvents: number;
  private readonly maxBytes: number;
  private readonly maxTotalBytes: number;
  private readonly maxOwnerBytes: number;
  private readonly eventChars: number;
  /** Characters kept by every watcher here (the sum of their `bytes`). */
  private totalBytes = 0;
  /** The same per owner. */
  private readonly ownerBytes = new Map<string, number>();
  private readonly idleMs: number;
  private readonly endedMs: number;
  private readonly readyMs: number;

  constructor(private readonly o: PollingWatchersOptions) {
    this.maxPerOwner = o.maxPerOwner ?? 64;
    this.maxEvents = o.maxEvents ?? 10_000;
    this.maxBytes = o.maxBytes ?? 1024 * 1024;
    this.maxTotalBytes = o.maxTotalBytes ?? 64 * 1024 * 1024;
    this.maxOwnerBytes = o.maxOwnerBytes ?? Math.floor(this.maxTotalBytes / 4);
    this.eventChars = o.eventChars ?? 64;
    this.idleMs = o.idleMs ?? 5 * 60_000;
    this.endedMs = o.endedMs ?? 30_000;
    this.readyMs = o.readyMs ?? 30_000;
  }

  /** Watchers open in this process now. */
  get size(): number {
    return this.watchers.size;
  }

  /** Characters of unread events kept by all of them. */
  get keptBytes(): number {
    return this.totalBytes;
  }

  /** Starts a watch of `dir` and answers its id once the watch is ready (no change after that is missed). */
  async create(call: DataPlaneCall, dir: string, recursive: boolean, toName: (path: string) => string): Promise<string> {
    // Counted with the creates still waiting for their watch, so that concurrent ones cannot all pass.
    let held = this.starting.get(call.owner) ?? 0;
    for (const w of this.watchers.values()) if (w.owner === call.owner) held++;
    if (held >= this.maxPerOwner) {
      throw new BayError(
        "quota_exceeded",
        `at most ${this.maxPerOwner} watchers at once per owner: remove one (RemoveWatcher), or poll out one that ended`,
        { details: { limit: this.maxPerOwner } },
      );
    }
    this.starting.set(call.owner, (this.starting.get(call.owner) ?? 0) + 1);
    try {
      return await this.start(call, dir, recursive, toName);
    } finally {
      const left = (this.starting.get(call.owner) ?? 1) - 1;
      if (left > 0) this.starting.set(call.owner, left);
      else this.starting.delete(call.owner);
    }
  }

  private async start(call: DataPlaneCall, dir: string, recursive: boolean, toName: (path: string) => string): Promise<string> {
    // The watch outlives this call: its own signal, aborted when the watcher goes.
    const life = new AbortController();
    const res = await this.o.watch.watch({ ...call, signal: life.signal }, dir, recursive);
    if (!res.body) throw new BayError("ship_error", "the sandbox runtime answered no watch stream");
    // Read through a reader of its own, so that stopping ends a read that is waiting (the body itself is locked).
    const source = res.body.getReader();
    const stop = () => {
      life.abort();
      void source.cancel().catch(() => {});
    };
    const events = readEvents(
      new ReadableStream<Uint8Array>({
        async pull(ctrl) {
          try {
            const r = await source.read();
            if (r.done) ctrl.close();
            else ctrl.enqueue(r.value);
          } catch (e) {
            ctrl.error(e);
          }
        },
        cancel: (reason) => source.cancel(reason),
      }),
    )[Symbol.asyncIterator]();
    try {
      await this.untilReady(events, call.signal);
    } catch (e) {
      stop();
      throw e;
    }
    const id = crypto.randomUUID();
    const w: Watcher = { owner: call.owner, sandboxId: call.sandboxId, events: [], bytes: 0, ended: null, stop, idle: undefined };
    this.watchers.set(id, w);
    this.touch(id, w);
    void this.pump(w, events, toName).then(() => this.ended(id, w));
    return id;
  }

  /** The events since the last poll; once the watcher ended and nothing is left, its reason (and it is gone). */
  take(call: DataPlaneCall, id: string): WatcherEvent[] {
    const w = this.own(call, id);
    if (w.events.length === 0 && w.ended) {
      this.drop(id, w);
      throw w.ended;
    }
    const out = w.events;
    w.events = [];
    this.release(w);
    if (!w.ended) this.touch(id, w);
    return out;
  }

  remove(call: DataPlaneCall, id: string): void {
    this.drop(id, this.own(call, id));
  }

  private own(call: DataPlaneCall, id: string): Watcher {
    const w = this.watchers.get(id);
    // Another sandbox's watcher is as unknown as one that never was.
    if (!w || w.sandboxId !== call.sandboxId) throw new ConnectError(`watcher ${id.slice(0, 64)} not found`, Code.NotFound);
    return w;
  }

  /** Waits for the watch's `ready`; a caller gone meanwhile gets no watcher (nobody would learn its id to remove it). */
  private async untilReady(events: AsyncIterator<StreamEvent>, caller: AbortSignal | undefined): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onGone: (() => void) | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BayError("ship_error", "the sandbox's file watch did not start")), this.readyMs);
      onGone = () =>
        reject(new BayError("timeout", "the client went away before its watcher started", { details: { reason: "client_gone" } }));
      if (caller?.aborted) onGone();
      else caller?.addEventListener("abort", onGone, { once: true });
    });
    try {
      for (;;) {
        const pending = events.next();
        // Left waiting when `late` wins: its end (the watch stopped under it) is nobody's error.
        pending.catch(() => {});
        const next = await Promise.race([pending, late]);
        if (next.done) throw new BayError("ship_error", "the sandbox's file watch ended before it started");
        if (next.value.event === "ready") return;
        if (next.value.event === "error") throw watchError(next.value);
      }
    } finally {
      clearTimeout(timer);
      if (onGone) caller?.removeEventListener("abort", onGone);
    }
  }

  private async pump(w: Watcher, events: AsyncIterator<StreamEvent>, toName: (path: string) => string): Promise<void> {
    try {
      for (;;) {
        const next = await events.next();
        if (next.done) break;
        const e = next.value;
        if (e.event === "error") {
          w.ended = watchError(e);
          break;
        }
        if (changesLost(e)) {
          // Ship could not keep up: changes were lost, and a poll must say so.
          w.ended = new ConnectError(
            "the sandbox dropped file changes it could not keep up with: the watcher stopped; create a new one",
            Code.DataLoss,
          );
          break;
        }
        if (e.event !== "change") continue;
        const c = e.data as { type?: unknown; path?: unknown };
        if (typeof c.type !== "string" || typeof c.path !== "string") continue;
        const name = toName(c.path);
        // What is kept is counted: a name is a slice of the path the Ship sent, and holds all of it
        // (a short name in a deep directory costs its whole path); the type too, however long a Ship sends it,
        // and the event's own object.
        const size = c.path.length + c.type.length + this.eventChars;
        if (w.events.length >= this.maxEvents || w.bytes + size > this.maxBytes) {
          w.ended = new ConnectError(
            `more than ${this.maxEvents} events or ${this.maxBytes} characters of paths were not read: the watcher stopped (events after that were lost); create a new one`,
            Code.DataLoss,
          );
          break;
        }
        if (w.dropped) break;
        const owners = this.ownerBytes.get(w.owner) ?? 0;
        if (owners + size > this.maxOwnerBytes) {
          w.ended = new ConnectError(
            "this owner's watchers hold as many unread events as Bay keeps for one owner: this watcher stopped (events after that were lost); poll more often, or remove watchers",
            Code.DataLoss,
          );
          break;
        }
        if (this.totalBytes + size > this.maxTotalBytes) {
          w.ended = new ConnectError(
            "Bay holds as many unread watcher events as it keeps for all watchers: this watcher stopped (events after that were lost); poll more often, or create a new one",
            Code.DataLoss,
          );
          break;
        }
        w.events.push({ name, type: c.type });
        w.bytes += size;
        this.totalBytes += size;
        this.ownerBytes.set(w.owner, owners + size);
      }
    } catch (e) {
      w.ended = new ConnectError(e instanceof Error ? e.message : "the watch ended", Code.Unavailable);
    }
    w.ended ??= new ConnectError("the watch ended (its directory or its sandbox is gone)", Code.Unavailable);
    w.stop();
  }

  /** An ended watcher is kept for its last poll, but not for long: its sandbox may be gone, and with it every call that could poll it. */
  private ended(id: string, w: Watcher): void {
    if (this.watchers.get(id) !== w) return;
    clearTimeout(w.idle);
    w.idle = setTimeout(() => this.drop(id, w), this.endedMs);
    w.idle.unref?.();
  }

  private touch(id: string, w: Watcher): void {
    clearTimeout(w.idle);
    w.idle = setTimeout(() => this.drop(id, w), this.idleMs);
    w.idle.unref?.();
  }

  private drop(id: string, w: Watcher): void {
    clearTimeout(w.idle);
    if (this.watchers.get(id) === w) this.watchers.delete(id);
    // What it kept is let go with it.
    w.dropped = true;
    this.release(w);
    w.events = [];
    w.stop();
  }

  /** What `w` kept is no longer counted (taken by a poll, or let go with it). */
  private release(w: Watcher): void {
    this.totalBytes -= w.bytes;
    const left = (this.ownerBytes.get(w.owner) ?? 0) - w.bytes;
    if (left > 0) this.ownerBytes.set(w.owner, left);
    else this.ownerBytes.delete(w.owner);
    w.bytes = 0;
  }
}

function watchError(e: StreamEvent): ConnectError {
  const err = (e.data as { error?: { message?: string; code?: unknown } } | null)?.error;
  return new ConnectError(err?.message ?? "the watch ended", streamEndCode(err?.code));
}
