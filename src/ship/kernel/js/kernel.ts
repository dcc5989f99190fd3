/**
 * The JavaScript/TypeScript kernel: one process per code context, started by Ship as
 * `ship js-kernel [--language javascript|typescript]` in the context's working directory.
 * It speaks the kernel line protocol (../protocol.ts) and behaves like IPython for JS:
 * top-level declarations persist across cells (transform.ts), top-level `await`,
 * `import` of Node built-ins and of packages under the working directory, TypeScript
 * syntax, console capture, the last expression's value, rich output.
 *
 * Interrupts (what Ship sends on a timeout or a client gone): a request on stdin naming
 * the running cell ends it as soon as the event loop is free (the cell awaits); one
 * naming a cell still queued answers it as interrupted, unrun, when its turn comes
 * (interrupt-requests.ts). User code that holds the thread gets SIGINT from Ship as
 * well (js-kernel-process.ts): it is entered through guard.ts, so SIGINT stops even a
 * tight loop and the process and its globals survive. Entered that way: the cell's
 * synchronous part, the rest of the cell after each top-level `await` (transform.ts
 * routes it through `__bay__.hop`), promise reactions that run during those sections,
 * setTimeout/setInterval callbacks, and the rich-output hook. A SIGINT that finds no guarded call running does nothing: which
 * cell it was meant for is not known, and the stdin request ends the cell. Out of
 * reach: a loop in code resumed directly by native I/O (the rest of a user `async
 * function` after `await fetch()` or `await Bun.sleep()`, stream, socket or
 * child-process event handlers), and blocking native calls (execSync, Bun.sleepSync,
 * Atomics.wait). Ship then kills the process after its grace period and the context's
 * state is lost (kernel_restarted).
 */
import vm from "node:vm";
import { installConsole, type StreamName } from "./console.ts";
import { takeOverStdio, type CapturedFd, type KernelFds } from "./fds.ts";
import { installGlobals } from "./globals.ts";
import { Guard, type Guarded } from "./guard.ts";
import { InterruptRequests } from "./interrupt-requests.ts";
import { kernelBackgroundInterval, kernelClearInterval, kernelExit, kernelParse, KernelPromise, kernelSetImmediate } from "./intrinsics.ts";
import { brokenBy, describeThrow, exitIfBroken, selfTest, type SelfTestTools, thenTrap } from "./health.ts";
import { warmUp } from "./warm-up.ts";
import { Cell, cellValue, type Outcome } from "./cell.ts";
import { firstOf, settle, thenOf } from "./promises.ts";
import { SerialQueue } from "./serial-queue.ts";
import { restoreEnv, setEnv } from "./env.ts";
import { KernelChannel } from "./channel.ts";
import { bundleOf, clip, describeError, normalizeBundle } from "./output.ts";
import type { KernelInterruptRequest, KernelRequest } from "../protocol.ts";
import { CellSyntaxError, HELPER, transformCell } from "./transform.ts";
import { INTERRUPTED_ERROR, type JsKernelOptions, parseKernelArgs } from "./options.ts";

export { INTERRUPTED_ERROR } from "./options.ts";

const POLL_MS = 20;
const IDLE_POLL_MS = 1000;

const macrotask = () => new KernelPromise<void>((resolve) => kernelSetImmediate(resolve));

class JsKernel {
  private count = 0;
  private current: Cell | null = null;
  private readonly queue = new SerialQueue<KernelRequest>(
    (req) => this.execute(req),
    (req, err) => this.failed(req, err),
  );
  /** Console output while no cell runs: it goes to the next cell, like the Python driver's. */
  private background: Array<[StreamName, string]> = [];
  private backgroundBytes = 0;
  private readonly decoders = new Map<CapturedFd, TextDecoder>();
  private poller: ReturnType<typeof setInterval> | null = null;
  private readonly guard = new Guard(`${HELPER}.guarded`);
  private readonly interrupts = new InterruptRequests();
  private readonly transpiler = new Bun.Transpiler({ loader: "ts", target: "bun", trimUnusedImports: false, deadCodeElimination: false });
  /** Per cell, the script line that calls its async wrapper: frames there are the kernel's. */
  private readonly wrapperLines = new Map<number, number>();
  /** Requests in a row the kernel's own code failed on (failed()); a cell answered normally resets it. */
  private kernelErrors = 0;
  /** What health.ts's self-test runs the kernel's paths with. */
  private readonly selfTestTools: SelfTestTools = {
    transpile: (ts) => this.transpiler.transformSync(ts),
    isWrapperFrame: (frame) => this.isWrapperFrame(frame),
  };

  private readonly channel: KernelChannel;
  private readonly log = (line: string) => this.channel.log(line);

  constructor(
    private readonly fds: KernelFds,
    private readonly options: JsKernelOptions,
  ) {
    this.channel = new KernelChannel(fds);
  }

  start(): void {
    installGlobals({
      guard: this.guard,
      resume: (fn) => this.resume(fn),
      display: (value, options) => this.display(value, options),
    });
    installConsole((name, text) => this.write(name, text));
    // Not the default (exit): a signal only matters inside a guarded call (see the top).
    process.on("SIGINT", () => {});
    process.on("uncaughtException", (err) => this.uncaught(err));
    process.on("unhandledRejection", (reason) => this.uncaught(reason));
    this.schedulePolling(IDLE_POLL_MS);
    this.channel.send({ event: "ready", runtime: `bun ${Bun.version}`, language: this.options.language });
    void this.readRequests();
    kernelSetImmediate(() => {
      if (!this.current) warmUp(this.guard, this.selfTestTools.transpile, this.log);
    });
  }

  private async readRequests(): Promise<void> {
    try {
      await this.channel.readLines((line) => this.accept(line));
    } catch (err) {
      // A cell broke what reads or takes a request: a kernel that cannot hear Ship is of no use.
      exitIfBroken(this.selfTestTools, this.log, `it could not take a request: ${describeThrow(err)}`);
    }
    // Ship closed our stdin: it is done with this context.
    await this.queue.idle();
    kernelExit(0);
  }

  private accept(line: string): void {
    if (!line.trim()) return;
    let req: KernelRequest;
    try {
      req = kernelParse(line);
    } catch {
      this.channel.log("ignoring a request line that is not JSON");
      return;
    }
    // Own fields only: a cell that sets Object.prototype.interrupt must not turn every request into one.
    const interrupt =
      req !== null && typeof req === "object" && Object.hasOwn(req, "interrupt")
        ? (req as Partial<KernelInterruptRequest>).interrupt
        : undefined;
    if (typeof interrupt === "number") {
      // Ship's interrupt: only the cell it names (a late request never stops a later cell).
      if (this.interrupts.request(interrupt, this.current?.id)) this.interrupt();
      return;
    }
    if (typeof req?.id !== "number" || typeof req.code !== "string") {
      this.channel.log("ignoring a request without a numeric id and a string code");
      return;
    }
    this.interrupts.queued(req.id);
    this.queue.push(req);
  }

  /**
   * The kernel's own code threw. A kernel whose code no longer works (health.ts) exits
   * before answering: Ship then answers the request with the reason and restarts it.
   * Otherwise the request is answered, or Ship would wait for its timeout. Never throws:
   * a rejection here would stop the queue, and every later cell with it.
   */
  private failed(req: KernelRequest, err: unknown): void {
    this.current = null;
    // Twice in a row is not a bug of one request: a built-in the self-test does not reach is broken.
    const broken = ++this.kernelErrors >= 2 ? "its own code failed on two requests in a row" : brokenBy(() => selfTest(this.selfTestTools));
    try {
      this.log(`cell ${req.id} failed inside the kernel: ${broken === null ? ((err as Error)?.stack ?? err) : describeThrow(err)}`);
      if (broken === null) this.answerUnrun(req.id, `kernel error: ${(err as Error)?.message ?? String(err)}`);
    } catch {
      exitIfBroken(this.selfTestTools, this.log, "it could not answer a request");
    }
    if (broken !== null) exitIfBroken(this.selfTestTools, this.log, broken);
  }

  /** The result of a cell that did not run (or not to its end): an error, no output. */
  private answerUnrun(id: number, error: string): void {
    this.channel.send({ id, event: "result", success: false, output: "", error, data: [], execution_count: this.count, truncated: false });
  }

  // --- output --------------------------------------------------------------------

  private write(name: StreamName, text: string): void {
    const cell = this.current;
    if (cell && !cell.finishing) {
      cell.output.write(name, text);
      return;
    }
    const size = Buffer.byteLength(text);
    if (this.backgroundBytes + size > this.options.maxOutputBytes) return;
    this.background.push([name, text]);
    this.backgroundBytes += size;
  }

  /** Moves raw fd 1/2 output into the running cell (or drops it once over the cap). */
  private pollRaw(): void {
    const trap = thenTrap();
    if (trap) exitIfBroken(this.selfTestTools, this.log, trap);
    const cell = this.current;
    for (const [fd, name] of [
      [this.fds.stdout, "stdout"],
      [this.fds.stderr, "stderr"],
    ] as const) {
      if (!cell) {
        if (fd.pending() > this.options.maxOutputBytes) fd.discard();
        continue;
      }
      if (cell.output.truncated) {
        if (fd.pending() > 0) fd.discard();
        continue;
      }
      const bytes = fd.read(cell.output.room + 4);
      if (bytes.length === 0) continue;
      let decoder = this.decoders.get(fd);
      if (!decoder) {
        decoder = new TextDecoder();
        this.decoders.set(fd, decoder);
      }
      cell.output.write(name, decoder.decode(bytes, { stream: true }));
    }
  }

  private schedulePolling(ms: number): void {
    if (this.poller) kernelClearInterval(this.poller);
    this.poller = kernelBackgroundInterval(() => this.pollRaw(), ms);
  }

  // --- cells ---------------------------------------------------------------------

  private async execute(req: KernelRequest): Promise<void> {
    // The sandbox's own variables are kept; the cell's are put back once it ends.
    setEnv(req.base_env);
    const before = new Map<string, string | undefined>();
    try {
      setEnv(req.env, before);
      await this.executeCell(req);
    } finally {
      restoreEnv(before);
    }
  }

  private async executeCell(req: KernelRequest): Promise<void> {
    if (this.interrupts.starting(req.id)) {
      // Stopped while it waited its turn: said like any interrupt, and not run.
      this.count++;
      this.channel.send({ id: req.id, event: "interrupted" });
      this.answerUnrun(req.id, INTERRUPTED_ERROR);
      return;
    }
    const count = ++this.count;
    const cell = new Cell(req.id, count, this.options.maxOutputBytes, (name, text) =>
      this.channel.send({ id: req.id, event: "stream", name, text }),
    );
    this.fds.stdout.restore();
    this.fds.stderr.restore();
    this.current = cell;
    for (const [name, text] of this.background) cell.output.write(name, text);
    this.background = [];
    this.backgroundBytes = 0;
    this.pollRaw();
    this.schedulePolling(POLL_MS);

    let outcome = await this.run(cell, req.code);
    let result: Record<string, string> | null = null;
    if (outcome.kind === "value" && outcome.value !== undefined) {
      const rendered = await this.render(cell, outcome.value);
      if (rendered.kind === "ok") result = rendered.value;
      else outcome = rendered;
    }
    cell.finishing = true;
    this.fds.stdout.restore();
    this.fds.stderr.restore();
    this.pollRaw();
    this.schedulePolling(IDLE_POLL_MS);
    this.current = null;

    const data = [...cell.displays];
    if (result) {
      data.push({ type: "execute_result", data: cell.budget.take(result) });
      const text = result["text/plain"];
      if (text !== undefined) cell.output.appendResult(text);
    }
    let error: string | null = null;
    let cut = false;
    if (outcome.kind === "interrupted") error = INTERRUPTED_ERROR;
    else if (outcome.kind === "error") ({ text: error, cut } = clip(this.errorText(outcome.error), this.options.maxOutputBytes));
    // A cell can fail because an earlier one broke a built-in the kernel uses: then it
    // exits here, and Ship answers this cell with the reason and starts a fresh kernel.
    if (error !== null) exitIfBroken(this.selfTestTools, this.log);
    this.channel.send({
      id: req.id,
      event: "result",
      success: error === null,
      output: cell.output.text(),
      error,
      data,
      execution_count: count,
      truncated: cell.output.truncated || cell.budget.truncated || cut,
    });
    this.kernelErrors = 0;
  }

  private errorText(err: unknown): string {
    if (err instanceof CellSyntaxError) return `SyntaxError: ${err.message}`;
    return describeError(err, (frame) => this.isWrapperFrame(frame));
  }

  private isWrapperFrame(frame: string): boolean {
    const match = /\bcell-(\d+):(\d+):\d+\)?$/.exec(frame);
    return !!match && this.wrapperLines.get(Number(match[1])) === Number(match[2]);
  }

  /** Runs the cell until its promise settles, an interrupt, or an uncaught error. */
  private async run(cell: Cell, code: string): Promise<Outcome> {
    let script: vm.Script;
    try {
      const cellScript = transformCell(code, (ts) => this.transpiler.transformSync(ts));
      script = new vm.Script(cellScript.source, { filename: `cell-${cell.count}` });
      this.wrapperLines.set(cell.count, cellScript.source.split("\n").length);
    } catch (error) {
      return { kind: "error", error };
    }
    const started = this.guard.run(() => script.runInThisContext() as Promise<unknown>);
    if (started.kind === "interrupted") this.acknowledgeInterrupt(cell);
    if (started.kind !== "ok") return started;
    const settled = await firstOf(settle(cellValue(started.value)), cell.stopped);
    if (settled.kind === "interrupted") return settled;
    const first: Outcome = settled.kind === "ok" ? { kind: "value", value: settled.value.value } : settled;
    // One turn of the event loop: rejections the cell left unhandled surface now.
    await macrotask();
    await macrotask();
    return cell.stopOutcome ?? first;
  }

  /** The last expression's MIME bundle; the rich-output hook is user code, so it is guarded too. */
  private async render(cell: Cell, value: unknown): Promise<Guarded<Record<string, string>>> {
    const made = this.guard.run(() => bundleOf(value));
    if (made.kind !== "ok") return made;
    if (!(made.value instanceof Promise)) return made as Guarded<Record<string, string>>;
    const first = await firstOf(settle(made.value), cell.stopped);
    return first.kind === "value" ? { kind: "error", error: new Error("unexpected cell value") } : first;
  }

  // --- interrupts and errors -----------------------------------------------------

  /** Runs a callback of user code (timer, resumed cell) guarded; false if it was interrupted. */
  private resume(fn: () => unknown): boolean {
    const r = this.guard.run(fn);
    if (r.kind === "interrupted") {
      this.interrupt();
      return false;
    }
    if (r.kind === "error") this.uncaught(r.error);
    return true;
  }

  private interrupt(): void {
    const cell = this.current;
    if (!cell) return;
    this.acknowledgeInterrupt(cell);
    cell.stop({ kind: "interrupted" });
  }

  /** Tells Ship the cell is being stopped (`interrupted`), once: its result follows. */
  private acknowledgeInterrupt(cell: Cell): void {
    if (cell.acknowledged || cell.finishing || cell.stopOutcome) return;
    cell.acknowledged = true;
    this.channel.send({ id: cell.id, event: "interrupted" });
  }

  private uncaught(error: unknown): void {
    const cell = this.current;
    if (cell && !cell.finishing) {
      cell.stop({ kind: "error", error });
      return;
    }
    this.write("stderr", `Uncaught ${this.errorText(error)}\n`);
  }

  private display(value: unknown, options?: { raw?: boolean }): Promise<void> | undefined {
    const cell = this.current;
    if (!cell || cell.finishing) return undefined;
    const emit = (bundle: Record<string, string>) => {
      if (cell.finishing) return;
      const data = cell.budget.take(bundle);
      if (Object.keys(data).length === 0) return;
      cell.displays.push({ type: "display_data", data });
      this.channel.send({ id: cell.id, event: "display", data });
    };
    const bundle = options?.raw ? normalizeBundle(value) : bundleOf(value);
    if (bundle instanceof Promise) return thenOf(bundle, emit);
    emit(bundle);
    return undefined;
  }
}

/** Entry point of `ship js-kernel`: takes over stdio and serves requests until stdin closes. */
export function runJsKernel(argv: string[]): void {
  let options: JsKernelOptions;
  try {
    options = parseKernelArgs(argv);
  } catch (err) {
    process.stderr.write(`[js-kernel] ${(err as Error).message}\n`);
    process.exit(2);
  }
  const fds = takeOverStdio();
  new JsKernel(fds, options).start();
}
