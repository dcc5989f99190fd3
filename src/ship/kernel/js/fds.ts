/**
 * The kernel's file descriptors, rearranged at start through libc (bun:ffi), as the
 * Python driver does with os.dup/os.dup2:
 * - fd 0, 1, 2 as Ship gave them are moved to private close-on-exec descriptors: the
 *   request pipe, the protocol channel and the kernel's log;
 * - fd 0 becomes /dev/null, so user code and its children never read the requests;
 * - fd 1 and 2 become two anonymous in-memory files (memfd, append mode) that the kernel
 *   reads back. Anything writing to them directly (fs.writeSync(1), Bun.write(Bun.stdout),
 *   a child process inheriting stdio) is captured and can never reach the protocol. Files
 *   rather than pipes: a writer never blocks, so a synchronous `execSync(…, {stdio:
 *   "inherit"})` printing megabytes cannot deadlock the single-threaded kernel.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { closeSync, fstatSync, ftruncateSync, openSync, readSync } from "node:fs";

const F_DUPFD_CLOEXEC = 1030;
const F_GETFL = 3;
const F_SETFL = 4;
const O_APPEND = 0o2000;
const MFD_CLOEXEC = 1;

function loadLibc() {
  const symbols = {
    dup2: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    memfd_create: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  } as const;
  let lastError: unknown;
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      return dlopen(name, symbols).symbols;
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`cannot load libc: ${(lastError as Error)?.message ?? lastError}`);
}

/** A captured output descriptor (fd 1 or 2) and how much of it was read. */
export class CapturedFd {
  private offset = 0;
  private readonly buf = Buffer.alloc(64 * 1024);

  constructor(
    /** The descriptor user code writes to (1 or 2). */
    readonly target: number,
    /** The kernel's own descriptor of the same memfd. */
    private readonly file: number,
    private readonly libc: ReturnType<typeof loadLibc>,
  ) {}

  /** Points `target` at the capture file again (user code may have closed or moved it). */
  restore(): void {
    this.libc.dup2(this.file, this.target);
  }

  /** Bytes written since the last read, at most `limit` (the rest stays for the next read). */
  read(limit = Number.POSITIVE_INFINITY): Uint8Array {
    const size = fstatSync(this.file).size;
    if (size < this.offset) this.offset = 0; // truncated behind our back
    const chunks: Buffer[] = [];
    let want = Math.min(size - this.offset, limit);
    while (want > 0) {
      const n = readSync(this.file, this.buf, 0, Math.min(want, this.buf.length), this.offset);
      if (n <= 0) break;
      chunks.push(Buffer.from(this.buf.subarray(0, n)));
      this.offset += n;
      want -= n;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  /** Bytes written and not read yet. */
  pending(): number {
    return Math.max(fstatSync(this.file).size - this.offset, 0);
  }

  /**
   * Drops what was written so far, so a runaway writer cannot grow the file (memory)
   * without bound. Bytes appended between the last read and this call are lost; callers
   * only do it once the cell's output is over its cap anyway.
   */
  discard(): void {
    ftruncateSync(this.file, 0);
    this.offset = 0;
  }
}

/** Descriptors the kernel talks to Ship through, and the captured user output. */
export interface KernelFds {
  /** Where requests arrive (the original fd 0). */
  requests: number;
  /** The protocol channel (the original fd 1). */
  protocol: number;
  /** Ship's log (the original fd 2). */
  log: number;
  stdout: CapturedFd;
  stderr: CapturedFd;
}

/** Rearranges fds 0, 1, 2 as described at the top of this file. Call once, first thing. */
export function takeOverStdio(): KernelFds {
  const libc = loadLibc();
  const privateCopy = (fd: number) => {
    const copy = libc.fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) throw new Error(`cannot duplicate fd ${fd}`);
    return copy;
  };
  const requests = privateCopy(0);
  const protocol = privateCopy(1);
  const log = privateCopy(2);

  const devNull = openSync("/dev/null", "r");
  libc.dup2(devNull, 0);
  closeSync(devNull);

  const capture = (target: number, name: string) => {
    const file = libc.memfd_create(ptr(Buffer.from(`${name}\0`)), MFD_CLOEXEC);
    if (file < 0) throw new Error(`memfd_create(${name}) failed`);
    // Append mode on the shared description: every writer (us, children) adds at the end.
    libc.fcntl(file, F_SETFL, libc.fcntl(file, F_GETFL, 0) | O_APPEND);
    const captured = new CapturedFd(target, file, libc);
    captured.restore();
    return captured;
  };
  return { requests, protocol, log, stdout: capture(1, "kernel-stdout"), stderr: capture(2, "kernel-stderr") };
}
