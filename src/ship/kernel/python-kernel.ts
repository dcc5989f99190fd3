import { ShipError } from "../errors.ts";
import { KernelProcess, type DriverReply, type KernelProcessOptions } from "./kernel-process.ts";

/** Kernel state as /health reports it. */
export type KernelState = "starting" | "ready" | "restarting";

/** Body of a successful POST /ipython/exec. */
export interface ExecResult {
  success: boolean;
  output: string;
  error: string | null;
  data: DriverReply["data"];
  execution_count: number | null;
  kernel_restarted: boolean;
  /** True when output, error or data was cut to the output cap. */
  truncated: boolean;
}

/** How long an interrupted exec may take to answer before the kernel is killed. */
const INTERRUPT_GRACE_MS = 5000;
/** How long an exec waits for a (re)starting kernel. */
const READY_WAIT_MS = 60_000;
/** Restart back-off when the kernel keeps dying at start. */
const MAX_BACKOFF_MS = 10_000;
/**
 * Default number of execs that may wait behind the running one (SHIP_MAX_QUEUED_EXECS);
 * more are refused with quota_exceeded. Generous: agent frameworks fire calls in parallel.
 */
export const MAX_QUEUED_EXECS = 64;

/**
 * The one persistent Python kernel: starts it, restarts it when it dies, runs one
 * exec at a time, and enforces timeouts by interrupting (SIGINT) the running code.
 */
export class PythonKernel {
  private current: KernelProcess | null = null;
  private everStarted = false;
  private everReady = false;
  private restartedUnreported = false;
  private deathReported = false;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private failures = 0;
  private stopped = false;
  private readyNow = false;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;

  private readonly maxQueued: number;

  constructor(private readonly opts: KernelProcessOptions & { maxQueuedExecs?: number }) {
    this.maxQueued = opts.maxQueuedExecs ?? MAX_QUEUED_EXECS;
  }

  /** Current state for /health. */
  get state(): KernelState {
    if (this.readyNow && this.current?.isAlive) return "ready";
    return this.everReady ? "restarting" : "starting";
  }

  /** Starts the kernel process (idempotent). */
  start(): void {
    if (this.current || this.stopped) return;
    let proc: KernelProcess;
    try {
      proc = new KernelProcess(this.opts);
    } catch (err) {
      console.error(`[ship] cannot start python kernel: ${(err as Error).message}`);
      this.scheduleRestart();
      return;
    }
    if (this.everStarted) {
      // A death already reported by the exec it interrupted is not reported twice.
      if (this.deathReported) this.deathReported = false;
      else this.restartedUnreported = true;
    }
    this.everStarted = true;
    this.current = proc;
    this.readyNow = false;
    proc.ready.then(
      () => {
        if (this.current === proc) this.readyNow = true;
        this.everReady = true;
        this.failures = 0;
      },
      () => {},
    );
    void proc.exited.then(() => {
      if (this.current !== proc) return;
      console.error(`[ship] ${proc.describeExit()}; restarting`);
      this.current = null;
      this.readyNow = false;
      this.scheduleRestart();
    });
  }

  /** Kills the kernel and stops restarting it. */
  stop(): void {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.current?.kill();
    this.current = null;
  }

  /**
   * Runs code; concurrent calls wait their turn (at most `maxQueuedExecs` of them).
   * A call whose `signal` aborts while it waits (its client gave up) is never run.
   */
  exec(code: string, timeoutSeconds: number, signal?: AbortSignal): Promise<ExecResult> {
    if (signal?.aborted) return Promise.reject(cancelledError());
    if (this.waiting >= this.maxQueued) {
      return Promise.reject(
        new ShipError("quota_exceeded", `too many python execs waiting (max ${this.maxQueued}); try again later`, {
          details: { max_queued: this.maxQueued },
        }),
      );
    }
    this.waiting++;
    let counted = true;
    const leaveQueue = () => {
      if (!counted) return;
      counted = false;
      this.waiting--;
    };
    signal?.addEventListener("abort", leaveQueue, { once: true });
    const run = this.queue.then(() => {
      leaveQueue();
      signal?.removeEventListener("abort", leaveQueue);
      if (signal?.aborted) throw cancelledError();
      return this.execNow(code, timeoutSeconds);
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private scheduleRestart(): void {
    if (this.stopped || this.restartTimer) return;
    const delay = Math.min(MAX_BACKOFF_MS, this.failures === 0 ? 0 : 250 * 2 ** this.failures);
    this.failures++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.start();
    }, delay);
  }

  private async readyKernel(): Promise<KernelProcess> {
    const deadline = Date.now() + READY_WAIT_MS;
    let lastError = "python kernel is not running";
    while (Date.now() < deadline) {
      if (!this.current) this.start();
      const proc = this.current;
      if (proc) {
        try {
          await proc.ready;
          if (proc.isAlive) return proc;
        } catch (err) {
          lastError = (err as Error).message;
          // It died before becoming ready (e.g. IPython missing): fail fast.
          throw new ShipError("internal_error", `python kernel failed to start: ${lastError}`);
        }
      }
      await Bun.sleep(50);
    }
    throw new ShipError("internal_error", `python kernel not ready: ${lastError}`);
  }

  /** This response reports `proc`'s death, so the restart that follows is not reported again. */
  private reportDeath(proc: KernelProcess): void {
    this.restartedUnreported = false;
    // Not replaced yet: the coming start() must not flag the restart again.
    if (!this.current || this.current === proc) this.deathReported = true;
  }

  private takeRestartFlag(): boolean {
    const flag = this.restartedUnreported;
    this.restartedUnreported = false;
    return flag;
  }

  private async execNow(code: string, timeoutSeconds: number): Promise<ExecResult> {
    const proc = await this.readyKernel();
    const died = proc.exited.then(() => "died" as const);
    const reply = proc.send(code);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutSeconds * 1000);
    });
    const first = await Promise.race([reply, died, timedOut]);
    clearTimeout(timer);

    if (first === "died") return this.diedResult(proc);
    if (first !== "timeout") return this.toResult(first);

    // Timeout: interrupt, and give the kernel a moment to answer with what it printed.
    proc.interrupt();
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<"grace">((resolve) => {
      graceTimer = setTimeout(() => resolve("grace"), INTERRUPT_GRACE_MS);
    });
    const late = await Promise.race([reply, died, grace]);
    clearTimeout(graceTimer);
    let output = "";
    let restarted = false;
    if (typeof late === "object") {
      output = late.output;
    } else {
      // It ignored the interrupt (or died): replace it; its state is lost.
      proc.kill("it ignored the interrupt after a timeout");
      restarted = true;
      this.reportDeath(proc);
    }
    throw new ShipError("timeout", `python execution timed out after ${timeoutSeconds}s`, {
      details: { timeout: timeoutSeconds, output, kernel_restarted: restarted },
    });
  }

  private toResult(reply: DriverReply): ExecResult {
    return {
      success: reply.success,
      output: reply.output,
      error: reply.error,
      data: reply.data,
      execution_count: reply.execution_count,
      kernel_restarted: this.takeRestartFlag(),
      truncated: reply.truncated === true,
    };
  }

  private diedResult(proc: KernelProcess): ExecResult {
    // The exit handler has scheduled the restart; this reply reports it.
    this.reportDeath(proc);
    return {
      success: false,
      output: "",
      error: `${proc.describeExit()}. The kernel was restarted; its variables are lost.`,
      data: [],
      execution_count: null,
      kernel_restarted: true,
      truncated: false,
    };
  }
}

function cancelledError(): ShipError {
  // Nobody is listening any more; the code is simply not run.
  return new ShipError("timeout", "the client gave up before this exec started; it was not run", {
    details: { timeout: 0, output: "", kernel_restarted: false },
  });
}
