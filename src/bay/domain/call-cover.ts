/**
 * A call's cover (see CapabilityRouter): the row in `call_covers` that keeps every
 * replica's reaper off the session while the call runs, held as a lease. The row
 * reaches at most COVER_LEASE_MS past now and is renewed every COVER_RENEW_MS while
 * the call is in flight, up to the call's own deadline. A Bay that dies mid-call
 * stops renewing: its rows lapse within the lease, and the session is reclaimed as
 * usual instead of being held until the dead call's deadline (timeout + minutes).
 */
import type { SandboxStore } from "../store/sandbox-store.ts";

export const COVER_LEASE_MS = 20_000;
export const COVER_RENEW_MS = 5_000;

export class CallCover {
  /** Named before the insert: one that committed but whose answer was lost is still deleted at the end. */
  readonly id = crypto.randomUUID();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly store: Pick<SandboxStore, "coverCall" | "renewCallCover">,
    private readonly sandboxId: string,
    /** The call's own deadline (epoch ms): the cover never reaches past it. */
    private readonly until: number,
    private readonly now: () => number,
    private readonly onRenewFailed: (e: unknown) => void,
    private readonly timing = { leaseMs: COVER_LEASE_MS, renewMs: COVER_RENEW_MS },
  ) {}

  private leaseEnd(): number {
    return Math.min(this.until, this.now() + this.timing.leaseMs);
  }

  /** Writes the row, and renews it while the call runs if its deadline is beyond the lease. */
  async take(): Promise<void> {
    await this.store.coverCall(this.id, this.sandboxId, this.leaseEnd());
    if (this.until <= this.leaseEnd()) return;
    this.timer = setInterval(() => {
      if (this.leaseEnd() >= this.until) this.stop();
      void this.store.renewCallCover(this.id, this.leaseEnd()).catch(this.onRenewFailed);
    }, this.timing.renewMs);
    this.timer.unref?.();
  }

  /** The call is over (its row is deleted with the idle reset). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
