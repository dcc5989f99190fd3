/**
 * User code runs as the same uid as Ship, so it could read Ship's memory through
 * /proc/<pid>/mem (ptrace access) and learn the session secret. A non-dumpable
 * process's /proc entries belong to root, which closes that. The flag is not
 * inherited across execve, so user processes stay ordinary.
 */
import { dlopen, FFIType } from "bun:ffi";

const PR_SET_DUMPABLE = 4;

/** Marks this process non-dumpable; false where prctl is unavailable or fails (Ship then refuses to start). */
export function makeNonDumpable(libcName = "libc.so.6"): boolean {
  try {
    const libc = dlopen(libcName, {
      prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
    });
    const rc = libc.symbols.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    libc.close();
    return rc === 0;
  } catch {
    return false;
  }
}
