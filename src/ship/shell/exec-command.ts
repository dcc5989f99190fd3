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

/**
 * Runs a command to completion. On timeout the whole process group is killed and
 * `timeout` is thrown with what was printed so far. Whatever the command left
 * running in its process group is killed when it exits: a foreground exec owns
 * nothing afterwards (long-lived processes use `background: true`), which also
 * stops fork bombs and frees the pipes.
 */
export async function execCommand(spec: CommandSpec & { timeoutSeconds: number; maxOutputBytes: number }): Promise<CommandResult> {
  const proc = spawnCommand(spec);
  const stdout = new CappedBuffer(spec.maxOutputBytes);
  const stderr = new CappedBuffer(spec.maxOutputBytes);
  const stopReading = new AbortController();
  const drained = Promise.all([drainInto(proc.stdout, stdout, stopReading.signal), drainInto(proc.stderr, stderr, stopReading.signal)]);

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(proc.pid);
  }, spec.timeoutSeconds * 1000);
  const exitCode = await proc.exited;
  clearTimeout(timer);
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
