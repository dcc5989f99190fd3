/** Signals every process of a session (a terminal's shell and all it started, jobs included). */
import { readdirSync, readFileSync } from "node:fs";

/** Pids whose session id is `sid`, read from /proc/<pid>/stat (field 6). */
export function sessionMembers(sid: number): number[] {
  const out: number[] = [];
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[3]) === sid) out.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** Sends `signal` to every member of session `sid`; returns how many there were. */
export function signalSession(sid: number, signal: NodeJS.Signals): number {
  const members = sessionMembers(sid);
  for (const pid of members) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
  return members.length;
}
