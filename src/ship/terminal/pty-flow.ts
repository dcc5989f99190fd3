/**
 * Output flow control of a PTY, as a real terminal does it: `tcflow(TCOOFF)` on
 * the terminal stops what the programs on it write (their write() blocks in the
 * kernel), `TCOON` lets it go on. Bun's Terminal reads the PTY for us but cannot
 * pause, so Ship opens the slave side itself (its path from the shell's fd 0)
 * only to issue these two ioctls. Input is unaffected: Ctrl-C still reaches a
 * program whose output is stopped.
 */
import { closeSync, constants, openSync, readlinkSync } from "node:fs";
import { dlopen, FFIType } from "bun:ffi";

const TCXONC = 0x540a;
const TCOOFF = 0;
const TCOON = 1;

let libc: { ioctl: (fd: number, request: number, arg: number) => number } | null | undefined;

function ioctl(): typeof libc {
  if (libc !== undefined) return libc;
  try {
    const lib = dlopen("libc.so.6", { ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64], returns: FFIType.i32 } });
    libc = { ioctl: (fd, request, arg) => lib.symbols.ioctl(fd, request, arg) };
  } catch {
    libc = null;
  }
  return libc;
}

/** Stops and restarts a terminal's output. */
export interface PtyFlow {
  /** Stops output; false when the kernel refused (then nothing was stopped). */
  stop(): boolean;
  start(): void;
  close(): void;
}

/**
 * Flow control for the terminal `pid` has on its stdin, or null where it is not
 * available (no libc FFI): callers then bound their buffers some other way. The
 * terminal's path is looked up when output is first stopped, not at spawn: right
 * after spawn the child may not have its terminal on fd 0 yet. A `stop()` that
 * cannot find or stop it answers false.
 */
export function ptyFlow(pid: number): PtyFlow | null {
  const c = ioctl();
  if (!c) return null;
  let path: string | null = null;
  const terminalPath = (): string | null => {
    if (path) return path;
    try {
      const p = readlinkSync(`/proc/${pid}/fd/0`);
      if (p.startsWith("/dev/pts/")) path = p;
    } catch {
      // gone, or not ours to read
    }
    return path;
  };
  // The slave is opened only while output is stopped: an fd held open all along
  // would keep the PTY from reporting its end when the shell is gone.
  let fd = -1;
  const release = () => {
    if (fd < 0) return;
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    fd = -1;
  };
  return {
    stop() {
      if (fd >= 0) return true;
      const target = terminalPath();
      if (!target) return false;
      try {
        fd = openSync(target, constants.O_RDWR | constants.O_NOCTTY);
      } catch {
        return false;
      }
      if (c.ioctl(fd, TCXONC, TCOOFF) === 0) return true;
      release();
      return false;
    },
    start() {
      if (fd < 0) return;
      c.ioctl(fd, TCXONC, TCOON);
      release();
    },
    close() {
      this.start();
    },
  };
}
