/**
 * Cooperative fairness for streams relayed in JavaScript. A relay whose source already
 * holds data (a Ship's output read faster than its client takes it) goes from chunk to
 * chunk in promise continuations alone, which run before any I/O or timer: sixty such
 * streams kept a Bay from reading any request for seconds (/health took 4.8 s). A relay
 * calls `fairTurn()` before each read and awaits what it returns: once the event loop's
 * current turn has run for TURN_MS, every relay waits for the next turn, so requests,
 * timers and the other streams are served in between. Measured (60 envd Start streams
 * of `yes`, 2 cores): other requests waited at most 0.25–0.33 s instead of 1.2–9 s; one
 * stream relays as fast as before, but 8 to 60 at once relay 2.6–4 times less together.
 */

/** How long continuations may run before relays give the event loop its turn. */
const TURN_MS = 4;

let turnStarted = performance.now();
let nextTurn: Promise<void> | null = null;

/** Undefined while the current turn is young; else a promise of the next turn (one for all callers). */
export function fairTurn(): Promise<void> | undefined {
  if (nextTurn) return nextTurn;
  if (performance.now() - turnStarted < TURN_MS) return undefined;
  nextTurn = new Promise<void>((resolve) =>
    setImmediate(() => {
      nextTurn = null;
      turnStarted = performance.now();
      resolve();
    }),
  );
  return nextTurn;
}
