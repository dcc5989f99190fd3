/**
 * Linux inotify through libc (bun:ffi): Node's fs.watch reports neither whether
 * an entry is a directory nor which two events make one rename, and watching
 * through it costs an inotify instance per directory. One non-blocking instance
 * is read here by polling; each read returns the raw events in kernel order.
 */
import { dlopen, FFIType, read as readPointer } from "bun:ffi";
import { constants as osConstants } from "node:os";

export const IN = {
  MODIFY: 0x2,
  ATTRIB: 0x4,
  MOVED_FROM: 0x40,
  MOVED_TO: 0x80,
  CREATE: 0x100,
  DELETE: 0x200,
  DELETE_SELF: 0x400,
  MOVE_SELF: 0x800,
  Q_OVERFLOW: 0x4000,
  IGNORED: 0x8000,
  ONLYDIR: 0x1000000,
  DONT_FOLLOW: 0x2000000,
  EXCL_UNLINK: 0x4000000,
  MASK_ADD: 0x20000000,
  ISDIR: 0x40000000,
} as const;

const IN_NONBLOCK = 0o4000;
const IN_CLOEXEC = 0o2000000;
const EAGAIN = 11;
const EINTR = 4;

/** One event as the kernel reported it. */
export interface RawEvent {
  wd: number;
  mask: number;
  cookie: number;
  /** Entry name inside the watched directory ("" for events on the directory itself). */
  name: string;
}

type Libc = {
  inotify_init1(flags: number): number;
  inotify_add_watch(fd: number, path: Uint8Array, mask: number): number;
  inotify_rm_watch(fd: number, wd: number): number;
  read(fd: number, buf: Uint8Array, len: number): number;
  close(fd: number): number;
  errno(): number;
};

let libc: Libc | null | undefined;

function load(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    const lib = dlopen("libc.so.6", {
      inotify_init1: { args: [FFIType.i32], returns: FFIType.i32 },
      inotify_add_watch: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
      inotify_rm_watch: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
      read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
      close: { args: [FFIType.i32], returns: FFIType.i32 },
      __errno_location: { args: [], returns: FFIType.ptr },
    });
    const s = lib.symbols;
    libc = {
      inotify_init1: (flags) => s.inotify_init1(flags),
      inotify_add_watch: (fd, path, mask) => s.inotify_add_watch(fd, path, mask),
      inotify_rm_watch: (fd, wd) => s.inotify_rm_watch(fd, wd),
      read: (fd, buf, len) => Number(s.read(fd, buf, len)),
      close: (fd) => s.close(fd),
      errno: () => readPointer.i32(s.__errno_location()!, 0),
    };
  } catch {
    libc = null;
  }
  return libc;
}

/** errno numbers to their names (ENOENT, ENOSPC, …). */
const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** A failed inotify call; `code` is the errno's name when known, as a failed fs call's is. */
export class InotifyError extends Error {
  readonly code: string | undefined;

  constructor(
    readonly op: string,
    readonly errno: number,
  ) {
    super(`${op} failed (errno ${errno})`);
    this.code = ERRNO_NAMES.get(errno);
  }
}

/** One inotify instance. */
export class Inotify {
  private readonly c: Libc;
  private fd: number;
  private readonly buf = new Uint8Array(64 * 1024);

  constructor() {
    const c = load();
    if (!c) throw new InotifyError("dlopen libc", 0);
    this.c = c;
    this.fd = c.inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (this.fd < 0) throw new InotifyError("inotify_init1", c.errno());
  }

  /** Adds (or updates) the watch of a directory; returns its watch descriptor. */
  add(path: string, mask: number): number {
    const wd = this.c.inotify_add_watch(this.fd, Buffer.from(`${path}\0`), mask);
    if (wd < 0) throw new InotifyError("inotify_add_watch", this.c.errno());
    return wd;
  }

  remove(wd: number): void {
    this.c.inotify_rm_watch(this.fd, wd);
  }

  /**
   * The events queued now (none when nothing happened), read 64 KiB at a time until
   * `max` or more are read: what is left waits in the kernel's queue (which, full, says
   * it overflowed). `cut`: the reads stopped at `max`, not at the queue's end.
   */
  drain(max: number): { events: RawEvent[]; cut: boolean } {
    const out: RawEvent[] = [];
    while (out.length < max) {
      const n = this.c.read(this.fd, this.buf, this.buf.byteLength);
      if (n < 0) {
        const errno = this.c.errno();
        if (errno === EINTR) continue;
        if (errno === EAGAIN) return { events: out, cut: false };
        throw new InotifyError("read", errno);
      }
      if (n === 0) return { events: out, cut: false };
      const view = new DataView(this.buf.buffer, this.buf.byteOffset, n);
      let at = 0;
      while (at + 16 <= n) {
        const wd = view.getInt32(at, true);
        const mask = view.getUint32(at + 4, true);
        const cookie = view.getUint32(at + 8, true);
        const len = view.getUint32(at + 12, true);
        const raw = this.buf.subarray(at + 16, at + 16 + len);
        const nul = raw.indexOf(0);
        const name = Buffer.from(nul < 0 ? raw : raw.subarray(0, nul)).toString("utf8");
        out.push({ wd, mask, cookie, name });
        at += 16 + len;
      }
    }
    return { events: out, cut: true };
  }

  close(): void {
    if (this.fd < 0) return;
    this.c.close(this.fd);
    this.fd = -1;
  }
}
