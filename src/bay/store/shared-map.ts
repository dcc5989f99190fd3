/**
 * A read-only shared mapping of the first page of a file whose descriptor the
 * caller keeps open, through libc's mmap (bun:ffi). Bun.mmap would open and close
 * a descriptor of its own, and closing any descriptor of a file drops every POSIX
 * lock the process holds on it (SQLite's included); this maps the caller's.
 * Reading the mapping costs no system call. Null where libc or mmap is unavailable
 * (the caller then reads with pread).
 */
import { dlopen, FFIType, toArrayBuffer } from "bun:ffi";

const PROT_READ = 1;
const MAP_SHARED = 1;
const PAGE = 4096;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

export interface SharedMap {
  /** The first `bytes` bytes of the file, live. */
  view: DataView;
  unmap(): void;
}

type Libc = ReturnType<typeof openLibc>;
let libc: Libc | null | undefined;

function openLibc() {
  return dlopen("libc.so.6", {
    mmap: { args: [FFIType.u64, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.u64 },
    munmap: { args: [FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  });
}

/** Maps the first page of `fd` (which must stay open, and the file at least a page long, while the map is used). */
export function mapFirstPage(fd: number, bytes: number): SharedMap | null {
  if (bytes > PAGE) throw new RangeError(`at most ${PAGE} bytes`);
  if (libc === undefined) {
    try {
      libc = openLibc();
    } catch {
      libc = null;
    }
  }
  if (!libc) return null;
  const lib = libc;
  const addr = BigInt(lib.symbols.mmap(0n, BigInt(PAGE), PROT_READ, MAP_SHARED, fd, 0n));
  if (addr === MAP_FAILED || addr === 0n) return null;
  let mapped = true;
  return {
    view: new DataView(toArrayBuffer(Number(addr), 0, bytes)),
    unmap: () => {
      if (!mapped) return;
      mapped = false;
      lib.symbols.munmap(addr, BigInt(PAGE));
    },
  };
}
