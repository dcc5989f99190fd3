import type { Subprocess } from "bun";
import { randomBytes } from "node:crypto";
import { unlinkSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { LONG_COMMAND_BYTES } from "../../protocol/ship/index.ts";
import { childEnv } from "../child-env.ts";
import { ShipError } from "../errors.ts";
import { startError } from "../paths.ts";

/** What a user command needs to start. */
export interface CommandSpec {
  command: string;
  /** Absolute, already checked working directory. */
  cwd: string;
  /** The same, relative to the workspace: what an error about it names (default the root). */
  cwdPath?: string;
  env?: Record<string, string>;
}

/** A started `bash -lc` with piped stdout/stderr (and stdin when asked for). */
export type CommandProcess = Subprocess<"ignore" | "pipe", "pipe", "pipe">;

/**
 * Starts `bash -lc <command>` as the leader of its own session and process group,
 * so a timeout or kill can take down everything it forked. Linux refuses one
 * argument over 128 KiB (E2BIG), so a long command is written to a private script
 * file in /tmp and run as `bash -l <file>`, which is removed when bash exits.
 * stdin is /dev/null unless `io.stdin` is "pipe" (a background process a client writes to).
 */
export function spawnCommand(spec: CommandSpec, io: { stdin?: "ignore" | "pipe" } = {}): CommandProcess {
  const script = Buffer.byteLength(spec.command, "utf8") > LONG_COMMAND_BYTES ? writeScript(spec.command) : null;
  try {
    const proc = Bun.spawn(script ? ["bash", "-l", script] : ["bash", "-lc", spec.command], {
      cwd: spec.cwd,
      env: childEnv(spec.env),
      stdin: io.stdin ?? "ignore",
      stdout: "pipe",
      stderr: "pipe",
      detached: true,
    });
    if (script) void proc.exited.finally(() => removeQuietly(script));
    return proc;
  } catch (err) {
    if (script) removeQuietly(script);
    throw startError(err, { absolute: spec.cwd, relative: spec.cwdPath ?? "." }, "command");
  }
}

function writeScript(command: string): string {
  const file = join(tmpdir(), `ship-cmd-${randomBytes(8).toString("hex")}.sh`);
  try {
    writeFileSync(file, command, { mode: 0o600, flag: "wx" });
  } catch (err) {
    removeQuietly(file);
    throw new ShipError("internal_error", `could not store the command for bash: ${(err as Error).message}`);
  }
  return file;
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
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

/** A subprocess's signalCode as a signal name (`SIGKILL`), or null. */
export function signalName(code: number | string | null | undefined): string | null {
  if (code === null || code === undefined) return null;
  if (typeof code === "string") return code;
  return Object.entries(constants.signals).find(([, n]) => n === code)?.[0] ?? `SIG${code}`;
}
