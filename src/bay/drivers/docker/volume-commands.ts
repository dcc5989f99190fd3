/**
 * The commands the Docker data plane runs in a throwaway helper (listing,
 * removing, measuring) and how their outcome is read. Listing and removing first
 * walk the path in the helper's shell by the same rule as walkChain, so one helper
 * answers the whole request; the walk's findings come back as exit codes. Output
 * is read as it streams and capped: a listing keeps at most its entries.
 */
import { BayError } from "../../errors.ts";
import type { DirectoryListing, FileKind, FileStat } from "../driver.ts";
import { fileErrors, prefixOf, segmentsOf } from "../volume-walk.ts";
import { DuVerdict } from "./du-verdict.ts";

/** How a helper command ended. */
export interface CommandResult {
  exitCode: number;
  /** The first bytes of its stderr. */
  stderr: string;
}

/** A command to run, a reader for its stdout, and the answer its result gives (or the error it throws). */
export interface VolumeCommand<T> {
  argv: string[];
  onStdout(chunk: Buffer): void;
  /** Receives all of the command's stderr as it arrives (the result's `stderr` is its first bytes only). */
  onStderr?(chunk: Buffer): void;
  outcome(result: CommandResult): T;
}

const ROOT = "/workspace";
/** A listing record is `%y %s %T@ %P`: a segment (≤ 255 bytes) and three short fields. */
const MAX_RECORD_BYTES = 1024;
const MAX_USAGE_OUTPUT_BYTES = 4 * 1024;

/**
 * The walk of a helper command: each segment of $2 is checked like walkChain does
 * (a symlink → 11, missing → 10, a parent that is no directory → 12, with `at=<i>`
 * on stderr), then `list` prints at most $3 children (NUL-terminated records) and
 * `remove` removes the entry (a final symlink itself; with $3 `dir`, only a directory,
 * else exit 15). Exit 13: not a directory, 14: not readable by uid 1000, 16: rm removed
 * what it could but something inside may not be changed by uid 1000 (a read-only directory).
 */
const WALK_SCRIPT = `set -f
op=$1 path=$2 max=$3 cur=${ROOT}
if [ "$path" != . ]; then
  IFS=/
  n=0
  for seg in $path; do n=$((n + 1)); done
  i=0
  for seg in $path; do
    i=$((i + 1))
    cur=$cur/$seg
    if [ -L "$cur" ]; then
      if [ "$op" = remove ] && [ "$i" -eq "$n" ]; then break; fi
      echo "at=$i" >&2; exit 11
    fi
    [ -e "$cur" ] || exit 10
    if [ "$i" -lt "$n" ] && [ ! -d "$cur" ]; then echo "at=$i" >&2; exit 12; fi
  done
  unset IFS
fi
case $op in
list)
  [ -d "$cur" ] || exit 13
  { [ -r "$cur" ] && [ -x "$cur" ]; } || exit 14
  find "$cur" -mindepth 1 -maxdepth 1 -printf '%y %s %T@ %P\\0' | head -z -n "$max" ;;
remove)
  if [ "$max" = dir ] && { [ -L "$cur" ] || [ ! -d "$cur" ]; }; then exit 15; fi
  # A writer racing the delete can add an entry after rm read its directory: try again.
  # rm's reasons in the C locale, matched at a line's end (rm escapes a newline in a name).
  export LC_ALL=C
  tries=1
  until rm -rf -- "$cur" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 4 ]; then
      err=$(rm -rf -- "$cur" 2>&1 >/dev/null) && exit 0
      printf '%s\n' "$err" >&2
      printf '%s\n' "$err" | grep -Eq ': (Permission denied|Operation not permitted|Read-only file system)$' && exit 16
      exit 1
    fi
  done ;;
esac`;

/** The immediate children of `path`, at most `maxEntries` (sorted), and whether there were more. */
export function listCommand(path: string, maxEntries: number): VolumeCommand<DirectoryListing> {
  const records = new RecordReader(maxEntries + 1);
  return {
    argv: ["sh", "-c", WALK_SCRIPT, "sh", "list", path, String(maxEntries + 1)],
    onStdout: (chunk) => records.push(chunk),
    outcome(result) {
      walkOutcome(result, path, "listing");
      const all = records.records.map(parseRecord).filter((e): e is FileStat => e !== null);
      const entries = all.slice(0, maxEntries).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return { entries, truncated: all.length > maxEntries };
    },
  };
}

/** Removes the entry at `path` (a tree, or a final symlink itself); with `directory`, only a directory. */
export function removeCommand(path: string, directory = false): VolumeCommand<void> {
  return {
    argv: ["sh", "-c", WALK_SCRIPT, "sh", "remove", path, directory ? "dir" : "0"],
    onStdout: () => {},
    outcome: (result) => walkOutcome(result, path, "delete"),
  };
}

/** Attempts of `du` in one helper before a workspace that keeps changing under it is answered so. */
const USAGE_ATTEMPTS = 3;
/** The usage script's exit code when every attempt of `du` ended without a total. */
const USAGE_NO_TOTAL = 17;

/**
 * `du -sb` on the workspace, tried again (up to USAGE_ATTEMPTS) while it prints no total:
 * du gives up on the whole walk (no total) when a directory it is in is moved or replaced
 * under it, which code in the sandbox can keep doing. Prints the total line; else exits
 * USAGE_NO_TOTAL. On stderr each attempt starts with a line of its own (`du attempt N`)
 * and the last line says how the last one ended (`du exit N`). Only du's stdout (its
 * one total line) is held by the shell; what it says on stderr, however long (a path deep
 * in the tree), goes straight out to be judged as it streams (du-verdict.ts).
 */
const USAGE_SCRIPT = `export LC_ALL=C
i=0
while [ $i -lt ${USAGE_ATTEMPTS} ]; do
  printf 'du attempt %s\\n' "$i" >&2
  total=$(du -sb -- "$1")
  rc=$?
  case "$total" in [0-9]*"\t$1") printf '%s\\n' "$total"; exit 0;; esac
  i=$((i+1))
done
printf 'du exit %s\\n' "$rc" >&2
exit ${USAGE_NO_TOTAL}`;

/** Bytes the volume takes (`du -sb`, apparent sizes). */
export function usageCommand(): VolumeCommand<number> {
  let out = "";
  const verdict = new DuVerdict();
  return {
    argv: ["sh", "-c", USAGE_SCRIPT, "sh", ROOT],
    onStdout(chunk) {
      if (out.length < MAX_USAGE_OUTPUT_BYTES) out += chunk.toString("utf8");
    },
    onStderr: (chunk) => verdict.feed(chunk),
    outcome(result) {
      // du exits 1 when it cannot read some directory but still prints the total it could.
      const total = /^(\d+)\s+\/workspace\s*$/m.exec(out);
      if (total) return Number(total[1]);
      if (result.exitCode === USAGE_NO_TOTAL && verdict.walkedAway()) {
        throw new BayError(
          "conflict",
          "the workspace kept changing while its size was measured (directories moved or replaced under it); try again",
          {
            details: { reason: "changing" },
            internal: { operation: "workspace usage", attempts: USAGE_ATTEMPTS, helper_stderr: result.stderr.slice(0, 2000) },
          },
        );
      }
      throw commandFailure("usage", result);
    },
  };
}

/** The data plane's answer for a walk script's exit code; 0 passes. */
function walkOutcome(result: CommandResult, path: string, op: string): void {
  const at = Number(/at=(\d+)/.exec(result.stderr)?.[1] ?? "0");
  const prefix = at > 0 ? prefixOf(segmentsOf(path), at) : path;
  switch (result.exitCode) {
    case 0:
      return;
    case 10:
      throw fileErrors.notFound(path);
    case 11:
      throw fileErrors.symlink(path, prefix);
    case 12:
      throw fileErrors.parentNotDirectory(path, prefix);
    case 13:
      throw fileErrors.notDirectory(path);
    case 14:
      throw fileErrors.permissionDenied(path);
    case 15:
      throw fileErrors.notADirectory(path);
    case 16:
      throw fileErrors.partlyDeleted(path);
    default:
      throw commandFailure(op, result);
  }
}

/** A helper command that failed for a reason the data plane does not name: its stderr goes to the log only. */
function commandFailure(op: string, result: CommandResult): BayError {
  return new BayError("internal_error", `workspace ${op} failed`, {
    internal: { operation: `workspace ${op}`, helper_exit_code: result.exitCode, helper_stderr: result.stderr.slice(0, 2000) },
  });
}

/** Splits a helper's stdout into NUL-terminated records; keeps at most `max`, and drops an overlong one. */
class RecordReader {
  readonly records: Buffer[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private overlong = false;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    let from = 0;
    for (let nul = chunk.indexOf(0, from); nul !== -1; nul = chunk.indexOf(0, from)) {
      this.take(chunk.subarray(from, nul));
      this.end();
      from = nul + 1;
    }
    this.take(chunk.subarray(from));
  }

  private take(part: Buffer): void {
    if (this.overlong || part.byteLength === 0) return;
    if (this.pendingBytes + part.byteLength > MAX_RECORD_BYTES) {
      this.overlong = true;
      this.pending = [];
      return;
    }
    this.pending.push(part);
    this.pendingBytes += part.byteLength;
  }

  private end(): void {
    if (!this.overlong && this.records.length < this.max) this.records.push(Buffer.concat(this.pending));
    this.pending = [];
    this.pendingBytes = 0;
    this.overlong = false;
  }
}

const KIND_OF_FIND_TYPE: Record<string, FileKind> = { f: "file", d: "directory", l: "symlink" };

/** One `%y %s %T@ %P` record of find (a time before 1970 is negative); null when malformed. */
function parseRecord(record: Buffer): FileStat | null {
  const m = /^(\S) (\d+) (-?\d+(?:\.\d+)?) (.+)$/s.exec(record.toString("utf8"));
  if (!m) return null;
  const kind = KIND_OF_FIND_TYPE[m[1]!] ?? "other";
  return {
    name: m[4]!,
    kind,
    size: kind === "file" || kind === "symlink" ? Number(m[2]) : 0,
    modifiedAt: Math.floor(Number(m[3]) * 1000),
  };
}
