/**
 * The directories one recursive watch waits to walk: each once however many times it
 * came in (a storm of moves in and out), kept as its holding directory's watch and its
 * name there, so a move of a directory above it while it waits takes it along. They are
 * walked at the end of a poll within the poll's budget, the rest at the next (dir-watcher.ts
 * walks them); past `max` waiting none is kept, and the watch tells its reader. What a
 * walk cut short at the budget has not walked waits too, as one walk per directory it
 * was in, its subdirectories' names left (however many: a listing's worth).
 */

/** A directory waiting to be walked: its name in the watch `wd`'s directory. */
export interface Walk {
  wd: number;
  name: string;
  /** Walked only when the watch does not hold that directory already (every ask was a move inside). */
  unlessHeld: boolean;
  /** Polls it waited for the hub to learn where its holding directory went. */
  behind?: number;
  /** The rest of a walk cut short (`name` is ""): these subdirectories of the watch `wd`'s directory, last first, each walked unless walked after the listing numbered `since` (the watch's count). */
  rest?: string[];
  since?: number;
}

/**
 * What became of a walk: done (walked, or nothing to walk); its holding directory is not
 * where the hub says yet; or (a walk's rest) some of it walked, the others wait their turn.
 */
export type WalkOutcome = "done" | "behind" | "more";

/** Polls a walk waits for the hub to catch up with a move above it (a read cut short, a move half read) before it counts as lost. */
export const MAX_BEHIND_POLLS = 20;

export class WaitingWalks {
  private readonly walks = new Map<string, Walk>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.walks.size;
  }

  /**
   * `name` in the watch `wd`'s directory waits to be walked; "unless held" only when each
   * ask for it was. False when that went past the bound: then none is kept but the walks
   * that only set a held directory's watches right after a move (an exchange of two
   * directories needs them, and they would report nothing), unless those fill it too.
   */
  add(at: { wd: number; name: string }, unlessHeld: boolean): boolean {
    const key = `${at.wd}/${at.name}`;
    const waiting = this.walks.get(key);
    if (!waiting && this.walks.size >= this.max) {
      const kept = [...this.walks].filter(([, w]) => w.unlessHeld);
      this.walks.clear();
      if (kept.length < this.max / 2) for (const [k, w] of kept) this.walks.set(k, w);
      return false;
    }
    // Asked for again, it keeps how long it has waited: asking again and again cannot keep it waiting for ever.
    const walk: Walk = { wd: at.wd, name: at.name, unlessHeld: (waiting?.unlessHeld ?? true) && unlessHeld };
    if (waiting?.behind !== undefined) walk.behind = waiting.behind;
    this.walks.set(key, walk);
    return true;
  }

  /**
   * Hands each waiting walk to `walk` until `deadline` (performance.now()), one past it
   * when `first`. One whose holding directory is not where the hub says yet waits for the
   * next poll, MAX_BEHIND_POLLS at most, then counts as lost (`lost`). True when none is left.
   */
  run(deadline: number, first: boolean, walk: (w: Walk) => WalkOutcome, lost: () => void): boolean {
    const again: Array<[string, Walk]> = [];
    try {
      for (const [key, w] of this.walks) {
        if (!first && performance.now() >= deadline) return false;
        first = false;
        this.walks.delete(key);
        let outcome: WalkOutcome;
        try {
          outcome = walk(w);
        } catch (e) {
          // What is left of a rest still waits (the piece that threw is not among it).
          if (w.rest && w.rest.length > 0) again.push([key, w]);
          throw e;
        }
        if (outcome === "done") continue;
        if (outcome === "more") {
          // Its turn again after the others (a rest of thousands does not hold up the watch's other walks).
          again.push([key, w]);
          continue;
        }
        const behind = (w.behind ?? 0) + 1;
        if (behind < MAX_BEHIND_POLLS) again.push([key, { ...w, behind }]);
        else lost();
      }
      return again.length === 0;
    } finally {
      // One asked for again while it was out (a rest from a newer listing) is the newer one.
      for (const [key, w] of again) if (!this.walks.has(key)) this.walks.set(key, w);
    }
  }

  /**
   * The subdirectories `names` of the watch `wd`'s directory wait to be walked (the rest of
   * a walk cut short, listed as the watch's listing `since`): one walk, however many. Its names are what a listing of
   * that directory left unwalked, so a rest of it waiting already is superseded, not added to
   * (a directory moved in and out again and again does not pile up its names).
   */
  addRest(wd: number, names: string[], since: number): boolean {
    const key = `${wd}/`;
    const waiting = this.walks.get(key);
    if (waiting?.rest) {
      waiting.rest = names;
      waiting.since = since;
      return true;
    }
    if (!this.add({ wd, name: "" }, true)) return false;
    Object.assign(this.walks.get(key)!, { rest: names, since });
    return true;
  }

  clear(): void {
    this.walks.clear();
  }
}
