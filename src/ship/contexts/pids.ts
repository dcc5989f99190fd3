/**
 * Room for one more kernel under the sandbox's pids limit. Every thread counts against
 * the container's pids cgroup, and a runtime that cannot get a thread aborts (Bun does),
 * so a context started into the last few pids would take a running one down with it.
 * A context is refused up front instead while starting it would leave less than a spare
 * margin for Ship, the shell and the running kernels' own growth.
 */
import { readFileSync } from "node:fs";
import { ShipError } from "../errors.ts";
import type { Language } from "./kernels.ts";

/** Pids in use and the limit, or null where there is no limit to read (no cgroup, `max`). */
export type PidsReader = () => { current: number; max: number } | null;

/** Threads a fresh kernel takes, with room to grow (measured idle: JS 5, Python 2). */
export const PIDS_PER_KERNEL: Record<Language, number> = { python: 4, javascript: 8, typescript: 8 };
/** Pids that must stay free once the new kernel runs. */
export const PIDS_SPARE = 8;

const CANDIDATES = [
  ["/sys/fs/cgroup/pids.current", "/sys/fs/cgroup/pids.max"], // cgroup v2
  ["/sys/fs/cgroup/pids/pids.current", "/sys/fs/cgroup/pids/pids.max"], // cgroup v1
] as const;

/** Reads the container's pids cgroup (v2, else v1). */
export const cgroupPids: PidsReader = () => {
  for (const [currentFile, maxFile] of CANDIDATES) {
    let current: string;
    let max: string;
    try {
      current = readFileSync(currentFile, "utf8").trim();
      max = readFileSync(maxFile, "utf8").trim();
    } catch {
      continue;
    }
    if (max === "max") return null;
    const c = Number(current);
    const m = Number(max);
    return Number.isInteger(c) && Number.isInteger(m) ? { current: c, max: m } : null;
  }
  return null;
};

/**
 * Throws quota_exceeded (reason `pids_limit`) when a kernel for `language` does not fit.
 * `reserved`: pids promised to kernels still starting (their threads are not all there yet).
 */
export function checkPidsRoom(language: Language, read: PidsReader, reserved = 0): void {
  const pids = read();
  if (!pids) return;
  const needed = PIDS_PER_KERNEL[language] + PIDS_SPARE + reserved;
  if (pids.max - pids.current >= needed) return;
  throw new ShipError(
    "quota_exceeded",
    `the sandbox's process limit is nearly reached (${pids.current} of ${pids.max} pids in use; a ${language} context needs about ${PIDS_PER_KERNEL[language]} and ${PIDS_SPARE} stay spare): delete a context or end some processes first`,
    { details: { reason: "pids_limit", limit: pids.max, pids_in_use: pids.current } },
  );
}
