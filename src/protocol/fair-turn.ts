/**
 * Cooperative fairness for streams relayed in JavaScript. A relay whose source already
 * holds data (a Ship's output read faster than its client takes it) goes from chunk to
 * chunk in promise continuations alone, which run before any I/O or timer: sixty such
 * streams kept a Bay from reading any request for seconds (/health took 4.8 s). A relay
 * calls `fairTurn()` before each read and awaits what it returns: once the event loop's
 * current turn has run for TURN_MS, every relay waits for the next turn, so requests,
 * timers and the other streams are served in between. Why continuations alone never let
 * the loop poll: Bun's fetch reads a Ship's socket again as soon as its last chunk was taken,
 * and Bun's tick runs tasks until none is left, so chunk after chunk arrives while the relays
 * run (review s105). Measured (Start streams of `yes`, 2 loaded cores): other requests waited
 * at most 0.2–1.9 s instead of 2–9.8 s; one stream relays as fast as before, 16 busy streams
 * relay 1.6–3 times less together.
 */

/** How long continuations may run before relays give the event loop its turn. */
const TURN_MS = 4;

let turnStarted = 0;
let nextTurn: Promise<void> | null = null;

/**
 * Undefined while the current turn is young; else a promise of the next turn (one for all callers).
 * A turn starts at the first call after the last one ended (not when a wait ended: a relay woken by
 * I/O after the loop slept would find that time long past and wait at every read). That first call
 * arms the turn's end, a setImmediate nobody waits for unless the turn runs TURN_MS.
 */
export function fairTurn(): Promise<void> | undefined {
  if (!nextTurn) {
    turnStarted = performance.now();
    nextTurn = new Promise<void>((resolve) =>
      setImmediate(() => {
        nextTurn = null;
        resolve();
      }),
    );
    return undefined;
  }
  return performance.now() - turnStarted < TURN_MS ? undefined : nextTurn;
}
