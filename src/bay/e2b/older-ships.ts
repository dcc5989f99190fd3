/**
 * Ships built before a run could last a day take an exec timeout of at most 300 s.
 * They live on after an upgrade (a session started before it, a pool member, another
 * replica's, a pinned image) and refuse a longer timeout while checking the request,
 * before anything runs. A run refused so is sent once more with 300 s, and its
 * sandbox is remembered for a while: its next runs go with 300 s at once, instead of
 * a refused call each time (a cover row, a stream slot, an audit line).
 */
import { BayError } from "../errors.ts";

/** The longest exec timeout an older Ship takes (its schema's, fixed in those images). */
export const OLDER_SHIP_MAX_TIMEOUT_SECONDS = 300;
/** How long a sandbox stays known to run an older Ship (its session may be replaced meanwhile: then it gets 300 s until this passes). */
export const REMEMBER_MS = 10 * 60_000;
/** Sandboxes remembered at once; past it the memory starts over. */
const MAX_REMEMBERED = 10_000;

/** Whether Ship refused the request's `timeout` field (its validation error names the field by its path). */
export const refusedTimeout = (e: unknown): boolean =>
  e instanceof BayError &&
  e.code === "validation_error" &&
  Array.isArray(e.details.issues) &&
  e.details.issues.some((i: unknown) => (i as { path?: unknown } | null)?.path === "timeout");

export class OlderShips {
  /** Sandbox id → until when its Ship is taken to be an older one. */
  private readonly until = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** `run` for `sandboxId` with `timeout`, or with 300 s on a Ship known or found to take no more. */
  async run<T>(sandboxId: string, timeout: number, run: (timeout: number) => Promise<T>): Promise<T> {
    const first = this.known(sandboxId) ? Math.min(timeout, OLDER_SHIP_MAX_TIMEOUT_SECONDS) : timeout;
    try {
      return await run(first);
    } catch (e) {
      if (first <= OLDER_SHIP_MAX_TIMEOUT_SECONDS || !refusedTimeout(e)) throw e;
      if (this.until.size >= MAX_REMEMBERED) this.until.clear();
      this.until.set(sandboxId, this.now() + REMEMBER_MS);
      return run(OLDER_SHIP_MAX_TIMEOUT_SECONDS);
    }
  }

  private known(sandboxId: string): boolean {
    const until = this.until.get(sandboxId);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.until.delete(sandboxId);
    return false;
  }
}
