import { KERNEL_INTERRUPT_ACK_MS, KERNEL_INTERRUPT_ANSWER_MS } from "../../protocol/ship/index.ts";
import { ShipError } from "../errors.ts";
import { type CwdRef, startError } from "../paths.ts";
import type { CellEnv, CellEventHandler, CellResult, KernelProcess } from "./kernel-process.ts";

/** Kernel state as /health and the contexts API report it. */
export type KernelState = "starting" | "ready" | "restarting";

/** Body of a successful exec (POST /ipython/exec, POST /code/exec). */
export interface ExecResult {
  success: boolean;
  output: string;
  error: string | null;
  data: CellResult["data"];
  execution_count: number | null;
  kernel_restarted: boolean;
  /** True when output, error or data was cut to the output cap. */
  truncated: boolean;
}

/** Per exec: who listens, what ends it early, and its environment variables. */
export interface ExecOptions extends CellEnv {
  /** Aborts when the client goes away: a queued exec is then never run. */
  signal?: AbortSignal;
  /** Also interrupt the running code when `signal` aborts (streamed execs: nobody is left to read the result). */
  interruptOnAbort?: boolean;
  /** The cell's stream and display events as they come (with backpressure, see CellEventHandler). */
  onEvent?: CellEventHandler;
}

export interface SupervisedKernelOptions {
  /** Starts one kernel process. */
  spawn: () => KernelProcess;
  /** The language, in messages: `python execution timed out`. */
  label: string;
  /** Execs that may wait behind the running one. */
  maxQueuedExecs?: number;
  /** After an interrupt: time to acknowledge it, and to answer once acknowledged (defaults above). */
  interruptGraceMs?: number;
  interruptMaxGraceMs?: number;
  /** The kernel's working directory, absolute and relative to the workspace (what a refusal to start in it names). */
  cwd?: CwdRef;
}

/** How long an interrupted kernel has to say it is stopping the cell (`interrupted`) before it is killed. */
const INTERRUPT_GRACE_MS = KERNEL_INTERRUPT_ACK_MS;
/** How long one that said so has to answer (user code that catches the interrupt and runs on is killed then). */
const INTERRUPT_MAX_GRACE_MS = KERNEL_INTERRUPT_ANSWER_MS;
/** How often the grace period looks at the kernel. */
const GRACE_POLL_MS = 100;
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
 * One persistent kernel (a code context): starts its process, restarts it when it dies,
 * runs one exec at a time, and enforces timeouts by interrupting (SIGINT) the running
 * code; a kernel that ignores the interrupt is killed and replaced (its state is lost,
 * and the next result says `kernel_restarted`).
 */
export class SupervisedKernel {
  private current: KernelProcess | null = null;
  private everStarted = false;
  private everReady = false;
  private restartedUnreported = false;
  private deathReported = false;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private failures = 0;
  /** Why the last start could not spawn a kernel (null once one spawned). */
  private spawnError: unknown = null;
  private stopped = false;
  private readyNow = false;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly maxQueued: number;
  private readonly graceMs: number;
  private readonly maxGraceMs: number;

  constructor(private readonly opts: SupervisedKernelOptions) {
    this.maxQueued = opts.maxQueuedExecs ?? MAX_QUEUED_EXECS;
    this.graceMs = opts.interruptGraceMs ?? INTERRUPT_GRACE_MS;
    this.maxGraceMs = opts.interruptMaxGraceMs ?? INTERRUPT_MAX_GRACE_MS;
  }

  /** Current state. */
  get state(): KernelState {
    if (this.readyNow && this.current?.isAlive) return "ready";
    return this.everReady ? "restarting" : "starting";
  }

  /** The running process's pid (null while none runs). */
  get pid(): number | null {
    return this.current?.isAlive ? this.current.pid : null;
  }

  /** Starts the kernel process (idempotent). */
  start(): void {
    if (this.current || this.stopped) return;
    let proc: KernelProcess;
    try {
      proc = this.opts.spawn();
      this.spawnError = null;
    } catch (err) {
      console.error(`[ship] cannot start ${this.opts.label} kernel: ${(err as Error).message}`);
      this.spawnError = err;
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

  /**
   * Replaces the process with a fresh one now (its state is gone), and resolves once
   * the new one is ready. An exec running meanwhile ends with kernel_restarted.
   * Asked for, so the next result does not report it.
   */
  async restart(): Promise<void> {
    if (this.stopped) throw new ShipError("not_found", "the context was deleted");
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
    }
    const old = this.current;
    this.current = null;
    this.readyNow = false;
    old?.kill("it was restarted on request");
    this.restartedUnreported = false;
    this.deathReported = this.everStarted;
    this.failures = 0;
    this.start();
    await this.readyKernel();
  }

  /** Resolves once a process is ready (starting one if none runs); throws when it cannot start. */
  async whenReady(): Promise<void> {
    await this.readyKernel();
  }

  /** Kills the kernel and stops restarting it; execs still waiting are refused. */
  stop(): void {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.current?.kill("its context was deleted");
    this.current = null;
  }

  /** Throws quota_exceeded now when an exec would be refused for a full queue (before a stream opens). */
  admit(): void {
    if (this.waiting >= this.maxQueued) {
      throw new ShipError("quota_exceeded", `too many ${this.opts.label} execs waiting (max ${this.maxQueued}); try again later`, {
        details: { max_queued: this.maxQueued },
      });
    }
  }

  /**
   * Runs code; concurrent calls wait their turn (at most `maxQueuedExecs` of them).
   * A call whose `signal` aborts while it waits (its client gave up) is never run.
   */
  exec(code: string, timeoutSeconds: number, o: ExecOptions = {}): Promise<ExecResult> {
    const { signal } = o;
    if (signal?.aborted) return Promise.reject(cancelledError());
    try {
      this.admit();
    } catch (err) {
      return Promise.reject(err);
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
      return this.execNow(code, timeoutSeconds, o);
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
    let lastError = `${this.opts.label} kernel is not running`;
    while (Date.now() < deadline) {
      if (this.stopped) throw new ShipError("not_found", "the context was deleted");
      if (!this.current) this.start();
      if (!this.current && this.spawnError !== null) {
        // Its working directory removed or locked by code in the sandbox: that path's refusal at
        // once (the restarts go on, so the context recovers once the directory is back).
        const refusal = this.opts.cwd && startError(this.spawnError, this.opts.cwd, `${this.opts.label} kernel`);
        if (refusal instanceof ShipError && refusal.code !== "internal_error") throw refusal;
      }
      const proc = this.current;
      if (proc) {
        try {
          await proc.ready;
          if (proc.isAlive) return proc;
        } catch (err) {
          if (this.stopped) throw new ShipError("not_found", "the context was deleted");
          // Replaced by a restart on request while starting: wait for the new one.
          if (this.current !== proc && this.current) continue;
          lastError = (err as Error).message;
          // It died before becoming ready (e.g. IPython missing): fail fast.
          throw new ShipError("internal_error", `${this.opts.label} kernel failed to start: ${lastError}`);
        }
      }
      await Bun.sleep(50);
    }
    throw new ShipError("internal_error", `${this.opts.label} kernel not ready: ${lastError}`);
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

  private async execNow(code: string, timeoutSeconds: number, o: ExecOptions): Promise<ExecResult> {
    const proc = await this.readyKernel();
    // Once the cell is being stopped, its remaining events are dropped rather than waited
    // for: a slow reader must never keep the kernel from answering (and being killed for it).
    let dropping = false;
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const consumer = o.onEvent;
    const onEvent: CellEventHandler | undefined =
      consumer &&
      ((event) => {
        if (dropping) return undefined;
        const pending = consumer(event);
        return pending instanceof Promise ? Promise.race([pending, released]) : undefined;
      });
    const died = proc.exited.then(() => "died" as const);
    const reply = proc.send(code, onEvent, { baseEnv: o.baseEnv, env: o.env });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<"timeout" | "abandoned">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutSeconds * 1000);
      if (o.interruptOnAbort && o.signal) {
        onAbort = () => resolve("abandoned");
        if (o.signal.aborted) onAbort();
        else o.signal.addEventListener("abort", onAbort, { once: true });
      }
    });
    const first = await Promise.race([reply, died, stopped]);
    clearTimeout(timer);
    if (onAbort) o.signal?.removeEventListener("abort", onAbort);

    if (first === "died") return this.diedResult(proc);
    if (typeof first === "object") return this.toResult(first);

    // Timeout or a client gone: interrupt, and give the kernel a moment to answer with what it printed.
    dropping = true;
    release();
    const interruptedAt = Date.now();
    proc.interrupt();
    let graceTimer: ReturnType<typeof setInterval> | undefined;
    const grace = new Promise<"grace">((resolve) => {
      graceTimer = setInterval(() => {
        const since = Date.now() - interruptedAt;
        const acked = proc.runningCellAcknowledged;
        if (since >= (acked ? this.maxGraceMs : this.graceMs)) resolve("grace");
      }, GRACE_POLL_MS);
    });
    const late = await Promise.race([reply, died, grace]);
    clearInterval(graceTimer);
    let output = "";
    let restarted = false;
    if (typeof late === "object") {
      output = late.output;
    } else {
      // It ignored the interrupt (or died): replace it; its state is lost.
      proc.kill("it ignored the interrupt after a timeout");
      restarted = true;
      // Reported by this answer, unless nobody is left to read it: then the next one says it.
      if (first === "timeout") this.reportDeath(proc);
    }
    if (first === "abandoned") {
      throw new ShipError("timeout", "the client went away; the running code was interrupted", {
        details: { timeout: timeoutSeconds, output, kernel_restarted: restarted, reason: "client_gone" },
      });
    }
    throw new ShipError("timeout", `${this.opts.label} execution timed out after ${timeoutSeconds}s`, {
      details: { timeout: timeoutSeconds, output, kernel_restarted: restarted },
    });
  }

  private toResult(reply: CellResult): ExecResult {
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
