/**
 * How many long-lived answers (event streams, followed outputs, watches,
 * terminals) each owner holds open in this process, bounded per owner: each
 * holds a socket, a Ship connection and a covered session for as long as the
 * client keeps it, so one tenant opening thousands must not starve the others.
 * A slot is taken before any work for the call and given back exactly once, when
 * its answer ends (or the call fails).
 */
import { BayError } from "../errors.ts";

/** A held slot; `release` may be called any number of times, it counts once. */
export interface OpenSlot {
  release(): void;
}

export class OpenStreamSlots {
  private readonly open = new Map<string, number>();

  /** @param max open answers per owner at once (absent: unbounded) */
  constructor(private readonly max?: number) {}

  /**
   * Takes a slot for `owner` (or another holder, described by `scope` in the
   * refusal, with its own `max`), or throws 429 quota_exceeded when all are in use.
   */
  take(owner: string, scope = "per owner", max = this.max): OpenSlot {
    const n = this.open.get(owner) ?? 0;
    if (max !== undefined && n >= max) {
      throw new BayError("quota_exceeded", `at most ${max} streams, watches and terminals may be open at once ${scope}`, {
        retryAfter: 1,
        details: { reason: "open_streams", limit: max },
      });
    }
    this.open.set(owner, n + 1);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        const left = (this.open.get(owner) ?? 1) - 1;
        if (left <= 0) this.open.delete(owner);
        else this.open.set(owner, left);
      },
    };
  }

  /** Takes one slot of each holder, or none (the refusal of the first that is full). */
  takeAll(holders: ReadonlyArray<{ key: string; scope: string; max?: number }>): OpenSlot {
    const held: OpenSlot[] = [];
    try {
      for (const h of holders) held.push(this.take(h.key, h.scope, h.max ?? this.max));
    } catch (e) {
      for (const slot of held) slot.release();
      throw e;
    }
    return {
      release: () => {
        for (const slot of held) slot.release();
      },
    };
  }

  /** Slots `owner` holds now. */
  held(owner: string): number {
    return this.open.get(owner) ?? 0;
  }
}
