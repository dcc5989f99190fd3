import { ShipError } from "../errors.ts";
import { CappedBuffer, drainInto } from "../output-buffer.ts";
import { killGroup, spawnCommand, type CommandSpec } from "./spawn.ts";

/** Result of a foreground command. */
export interface CommandResult {
  success: boolean;
  output: string;
  error: string;
  exit_code: number;
  truncated: boolean;
  process_id: null;
}

/** How long to keep reading after bash exits, for output still in the pipes. */
const PIPE_GRACE_MS = 250;

/** Watching a command while it runs (streamed execs). */
export interface CommandWatch {
  /** Each chunk of output as it is kept (what the result will hold, in order per stream). */
  onOutput(name: "stdout" | "stderr", bytes: Uint8Array): void;
  /** Aborts when nobody waits for the command any more: its process group is killed. */
  signal: AbortSignal;
}

/** A CappedBuffer that hands each chunk it keeps to `tap` too. */
class TappedBuffer extends CappedBuffer {
  private taken = 0;

  constructor(
    private readonly max: number,
    private readonly tap: (bytes: Uint8Array) => void,
  ) {
    super(max);
  }

  override push(chunk: Uint8Array): void {
    const room = Math.max(this.max - this.taken, 0);
    const kept = chunk.byteLength > room ? chunk.subarray(0, room) : chunk;
    this.taken += kept.byteLength;
    super.push(chunk);
    if (kept.byteLength > 0) this.tap(kept);
  }
}

/**
 * Runs a command to completion. On timeout the whole process group is killed and
 * `timeout` is thrown with what was printed so far. Whatever the command left
 * running in its process group is killed when it exits: a foreground exec owns
 * nothing afterwards (long-lived processes use `background: true`), which also
 * stops fork bombs and frees the pipes.
 */
export async function execCommand(
  spec: CommandSpec & { timeoutSeconds: number; maxOutputBytes: number },
  watch?: CommandWatch,
): Promise<CommandResult> {
  if (watch?.signal.aborted) throw new ShipError("timeout", "the client went away before the command started", { details: { timeout: 0 } });
  const proc = spawnCommand(spec);
  const buffer = (name: "stdout" | "stderr") =>
    watch ? new TappedBuffer(spec.maxOutputBytes, (bytes) => watch.onOutput(name, bytes)) : new CappedBuffer(spec.maxOutputBytes);
  const stdout = buffer("stdout");
  const stderr = buffer("stderr");
  const stopReading = new AbortController();
  const drained = Promise.all([drainInto(proc.stdout, stdout, stopReading.signal), drainInto(proc.stderr, stderr, stopReading.signal)]);

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(proc.pid);
  }, spec.timeoutSeconds * 1000);
  const abandon = () => killGroup(proc.pid);
  watch?.signal.addEventListener("abort", abandon, { once: true });
  const exitCode = await proc.exited;
  clearTimeout(timer);
  watch?.signal.removeEventListener("abort", abandon);
  killGroup(proc.pid);

  const grace = setTimeout(() => stopReading.abort(), PIPE_GRACE_MS);
  await drained;
  clearTimeout(grace);

  if (timedOut) {
    throw new ShipError("timeout", `command timed out after ${spec.timeoutSeconds}s`, {
      details: {
        timeout: spec.timeoutSeconds,
        output: stdout.text(),
        error: stderr.text(),
        truncated: stdout.truncated || stderr.truncated,
      },
    });
  }
  return {
    success: exitCode === 0,
    output: stdout.text(),
    error: stderr.text(),
    exit_code: exitCode,
    truncated: stdout.truncated || stderr.truncated,
    process_id: null,
  };
}
