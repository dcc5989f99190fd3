/**
 * The two halves of a rename, paired. The kernel queues a rename's MOVED_FROM and
 * MOVED_TO one after the other, but events of other directories (other writers) can
 * come between them, and a read can end between them: halves are paired by cookie
 * wherever they are in one read, and a MOVED_FROM at the end of a read waits for the
 * next one (near the end, when the read stopped short of the queue's end). A half left without its pair is a move out of (MOVED_FROM) or into
 * (MOVED_TO, an ordinary event then) the watched directories.
 */
import { IN, type RawEvent } from "./inotify.ts";

/** An unpaired MOVED_FROM this close to the end of a read cut short may see its MOVED_TO in the next one. */
export const PAIR_TAIL = 16;

export interface MoveVisitor {
  rename(from: RawEvent, to: RawEvent): void;
  movedOut(from: RawEvent): void;
  /** Any other event (a MOVED_TO without its MOVED_FROM included). */
  single(e: RawEvent): void;
}

/**
 * Hands `events` (one read), in order, to `visit`, each rename at the place of its
 * MOVED_FROM; `waiting`: the MOVED_FROMs the previous read left, handled first; `cut`:
 * the read stopped before the queue's end. Returns the MOVED_FROMs this read leaves waiting.
 */
export function pairMoves(waiting: readonly RawEvent[], events: readonly RawEvent[], cut: boolean, visit: MoveVisitor): RawEvent[] {
  // A read that emptied the queue ends between a rename's halves only when the
  // MOVED_TO was not queued yet: its MOVED_FROM is the last event.
  const tail = cut ? PAIR_TAIL : 1;
  const toAt = new Map<number, number>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.mask & IN.MOVED_TO && e.cookie !== 0 && !toAt.has(e.cookie)) toAt.set(e.cookie, i);
  }
  const paired = new Set<number>();
  const pairOf = (from: RawEvent, after: number): RawEvent | undefined => {
    const j = toAt.get(from.cookie);
    if (j === undefined || j <= after || paired.has(j)) return undefined;
    paired.add(j);
    return events[j];
  };
  for (const from of waiting) {
    const to = pairOf(from, -1);
    if (to) visit.rename(from, to);
    else visit.movedOut(from);
  }
  const left: RawEvent[] = [];
  for (let i = 0; i < events.length; i++) {
    if (paired.has(i)) continue;
    const e = events[i]!;
    if (!(e.mask & IN.MOVED_FROM)) {
      visit.single(e);
      continue;
    }
    const to = pairOf(e, i);
    if (to) visit.rename(e, to);
    else if (i >= events.length - tail) left.push(e);
    else visit.movedOut(e);
  }
  return left;
}
