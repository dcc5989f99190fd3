import type { Subprocess } from "bun";
import { childEnv } from "../child-env.ts";
import { ShipError } from "../errors.ts";

/** What a user command needs to start. */
export interface CommandSpec {
  command: string;
  /** Absolute, already checked working directory. */
  cwd: string;
  env?: Record<string, string>;
}

/** A started `bash -lc` with piped stdout/stderr. */
export type CommandProcess = Subprocess<"ignore", "pipe", "pipe">;

/**
 * Starts `bash -lc <command>` as the leader of its own session and process group,
 * so a timeout or kill can take down everything it forked.
 */
export function spawnCommand(spec: CommandSpec): CommandProcess {
  try {
    return Bun.spawn(["bash", "-lc", spec.command], {
      cwd: spec.cwd,
      env: childEnv(spec.env),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      detached: true,
    });
  } catch (err) {
    // e.g. EAGAIN under a fork bomb's pids limit: the caller gets an error, Ship lives on.
    throw new ShipError("internal_error", `could not start command: ${(err as Error).message}`);
  }
}

/** Sends a signal to the process group led by `pid` (falls back to the pid alone). */
export function killGroup(pid: number, signal: NodeJS.Signals = "SIGKILL"): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}
