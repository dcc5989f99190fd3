/**
 * VolumeFiles on Docker: one helper container per call, removed when the call
 * ends. Bytes move through the engine's archive API on a helper that is created and
 * never started (so a remote engine works the same): stat, read and write walk the
 * path with one stat per segment (a bounded number, a few at a time) and refuse
 * symlinks on the way, because the engine would follow them inside the helper's own
 * root. Listing, removing and measuring need a process: a throwaway helper runs a
 * short shell walk plus find, rm or du, its output streamed and capped.
 *
 * Every engine call has a deadline (`callTimeoutMs`; a transfer may not stall for
 * longer), a command its own; past one the call answers `timeout`. Engine errors
 * never reach a client: they are the `cause` of a plain data-plane error.
 */
import type Docker from "dockerode";
import { BayError } from "../../errors.ts";
import type { DirectoryListing, FileBody, FileKind, FileStat, OpenedFile, VolumeFiles, VolumeRef } from "../driver.ts";
import { fileErrors, prefixOf, segmentsOf, walkChain, type Walked } from "../volume-walk.ts";
import { createArchiveHelper, getArchive, helperName, putArchive, removeHelper, runHelperCommand, statPath } from "./archive.ts";
import { engineMessage, imageNotFound, isImageMissing, isNotFound, isUnreachable } from "./docker-errors.ts";
import type { LabelCodec } from "./labels.ts";
import { sendOneFileTar, streamFirstFile } from "./volume-tar.ts";

export interface DockerVolumeFilesOptions {
  /** Image of the helpers: a POSIX sh, GNU find, head, rm and du, and a uid 1000. */
  helperImage: string;
  /** Deadline of each engine call; also the longest a transfer may go without progress. */
  callTimeoutMs: number;
  /** Longest a helper command (remove, usage) may run. */
  commandTimeoutMs: number;
  /** A read's helper is removed after this even if its reader never finishes. */
  readLifetimeMs?: number;
}

export const DEFAULT_VOLUME_FILES_OPTIONS: DockerVolumeFilesOptions = {
  helperImage: "bay-ship:latest",
  callTimeoutMs: 30_000,
  commandTimeoutMs: 120_000,
};

const ROOT = "/workspace";
const absolute = (path: string) => (path === "." ? ROOT : `${ROOT}/${path}`);
/** Segment stats in flight at once for one walk. */
const STAT_CONCURRENCY = 8;
const READ_LIFETIME_MS = 10 * 60_000;
/** Helper stderr kept for the log; usage's stdout is a number. */
const MAX_STDERR_BYTES = 16 * 1024;
const MAX_USAGE_OUTPUT_BYTES = 4 * 1024;
/** A listing record is `%y %s %T@ %P`: a segment (≤ 255 bytes) and three short fields. */
const MAX_RECORD_BYTES = 1024;
/** Background retries removing a helper whose create or removal did not finish (reconcile sweeps what is left). */
const REMOVE_RETRY_MS = [1_000, 3_000, 10_000, 30_000];

/**
 * The walk of a helper command: each segment of $2 is checked like walkChain does
 * (a symlink → 11, missing → 10, a parent that is no directory → 12, with `at=<i>`
 * on stderr), then `list` prints at most $3 children (NUL-terminated records) and
 * `remove` removes the entry (a final symlink itself). Exit 13: not a directory,
 * 14: not readable by uid 1000.
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
  rm -rf -- "$cur" ;;
esac`;

/** Whether a failure is a deadline firing (ours or the engine request's). */
const isAbort = (err: unknown): boolean => {
  const e = err as { name?: string; code?: string } | null;
  return e?.name === "AbortError" || e?.name === "TimeoutError" || e?.code === "ABORT_ERR";
};

const timeoutError = (op: string, ms: number, cause?: unknown) =>
  new BayError("timeout", `workspace ${op} did not finish within ${ms} ms`, { details: { timeout_ms: ms }, cause });

/** An AbortSignal that fires when `touch()` has not been called for `ms`. */
class IdleDeadline {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  constructor(private readonly ms: number) {
    this.touch();
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  get fired(): boolean {
    return this.controller.signal.aborted;
  }
  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.controller.abort(), this.ms);
  }
  /** Stops the clock; `abort` also ends whatever the signal is attached to. */
  clear(abort = false): void {
    clearTimeout(this.timer);
    if (abort) this.controller.abort();
  }
}

export class DockerVolumeFiles implements VolumeFiles {
  private readonly opts: Required<DockerVolumeFilesOptions>;

  constructor(
    private readonly docker: Docker,
    private readonly codec: LabelCodec,
    opts: Partial<DockerVolumeFilesOptions> = {},
  ) {
    this.opts = { readLifetimeMs: READ_LIFETIME_MS, ...DEFAULT_VOLUME_FILES_OPTIONS, ...opts };
  }

  async stat(volume: VolumeRef, path: string): Promise<FileStat | null> {
    return this.withArchiveHelper(volume, "stat", path, async (helper) => {
      if (path !== ".") return (await this.walk(helper, path, "allow")).target;
      const root = await this.call("stat", path, (signal) => statPath(this.docker, helper, ROOT, ".", signal));
      if (!root) throw new BayError("internal_error", "workspace stat failed: the volume root is missing");
      return root;
    });
  }

  async read(volume: VolumeRef, path: string): Promise<OpenedFile> {
    if (path === ".") throw fileErrors.isDirectory(path);
    const helper = await this.createArchiveHelper(volume, "read", path);
    const transfer = new IdleDeadline(this.opts.callTimeoutMs);
    let released: Promise<void> | undefined;
    const release = () => {
      clearTimeout(lifetime);
      transfer.clear(true);
      released ??= this.discard(helper.name, false);
      return released;
    };
    const lifetime = setTimeout(release, this.opts.readLifetimeMs);
    lifetime.unref?.();
    try {
      const { target } = await this.walk(helper.id, path, "refuse");
      if (!target) throw fileErrors.notFound(path);
      if (target.kind === "directory") throw fileErrors.isDirectory(path);
      if (target.kind !== "file") throw fileErrors.notRegularFile(path);
      transfer.touch();
      const stream = await getArchive(this.docker, helper.id, absolute(path), transfer.signal);
      const { size, body } = await streamFirstFile(stream, path, release);
      // From here the reader sets the pace; the lifetime bounds it.
      transfer.clear();
      return { stat: { ...target, size }, body };
    } catch (err) {
      const fired = transfer.fired;
      await release();
      if (fired && !(err instanceof BayError)) throw timeoutError("read", this.opts.callTimeoutMs, err);
      throw isNotFound(err) ? fileErrors.notFound(path) : this.failure(err, "read", path);
    }
  }

  async write(volume: VolumeRef, path: string, body: FileBody): Promise<void> {
    if (path === ".") throw fileErrors.root(path);
    await this.withArchiveHelper(volume, "write", path, async (helper) => {
      const { target, missingDirs } = await this.walk(helper, path, "refuse");
      if (target?.kind === "directory") throw fileErrors.isDirectory(path);
      if (target && target.kind !== "file") throw fileErrors.notRegularFile(path);
      // A stalled engine must not hold the upload forever: each chunk it takes resets the clock.
      const idle = new IdleDeadline(this.opts.callTimeoutMs);
      const bytes = body.bytes instanceof Uint8Array ? body.bytes : touching(body.bytes, () => idle.touch());
      try {
        await sendOneFileTar({ dirs: missingDirs, name: path, size: body.size, body: bytes }, (tar) =>
          putArchive(this.docker, helper, ROOT, tar, idle.signal),
        );
      } catch (err) {
        if (idle.fired && !(err instanceof BayError)) throw timeoutError("write", this.opts.callTimeoutMs, err);
        throw err;
      } finally {
        idle.clear();
      }
    });
  }

  async list(volume: VolumeRef, path: string, opts: { maxEntries: number; timeoutMs: number }): Promise<DirectoryListing> {
    const records = new RecordReader(opts.maxEntries + 1);
    const res = await this.runCommand(
      volume,
      "listing",
      path,
      ["sh", "-c", WALK_SCRIPT, "sh", "list", path, String(opts.maxEntries + 1)],
      opts.timeoutMs,
      (chunk) => records.push(chunk),
    );
    this.checkWalk(res, path, "listing");
    const all = records.records.map(parseRecord).filter((e): e is FileStat => e !== null);
    const entries = all.slice(0, opts.maxEntries).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { entries, truncated: all.length > opts.maxEntries };
  }

  async remove(volume: VolumeRef, path: string): Promise<void> {
    if (path === ".") throw fileErrors.root(path);
    const res = await this.runCommand(
      volume,
      "delete",
      path,
      ["sh", "-c", WALK_SCRIPT, "sh", "remove", path, "0"],
      this.opts.commandTimeoutMs,
      () => {},
    );
    this.checkWalk(res, path, "delete");
  }

  async usage(volume: VolumeRef): Promise<number> {
    let out = "";
    const res = await this.runCommand(volume, "usage", ".", ["du", "-sb", ROOT], this.opts.commandTimeoutMs, (chunk) => {
      if (out.length < MAX_USAGE_OUTPUT_BYTES) out += chunk.toString("utf8");
    });
    // du exits 1 when it cannot read some directory but still prints the total it could.
    const total = /^(\d+)\s+\/workspace\s*$/m.exec(out);
    if (!total) throw this.helperFailure("usage", res);
    return Number(total[1]);
  }

  /**
   * The lstat chain of `path` from one stat per segment, STAT_CONCURRENCY at a
   * time, stopping at the first segment that is missing or no directory.
   */
  private async walk(helper: string, path: string, finalLink: "refuse" | "allow"): Promise<Walked> {
    const segments = segmentsOf(path);
    const chain: Array<FileStat | null> = [];
    for (let start = 0; start < segments.length; start += STAT_CONCURRENCY) {
      const batch = segments
        .slice(start, start + STAT_CONCURRENCY)
        .map((segment, k) =>
          this.call("stat", path, (signal) => statPath(this.docker, helper, absolute(prefixOf(segments, start + k + 1)), segment, signal)),
        );
      for (const result of await Promise.allSettled(batch)) {
        if (result.status === "rejected") {
          // Stats below a symlink or a file fail in the engine; the walk explains those itself.
          walkChain(path, chain, finalLink);
          throw result.reason;
        }
        chain.push(result.value);
        if (result.value?.kind !== "directory") return walkChain(path, chain, finalLink);
      }
    }
    return walkChain(path, chain, finalLink);
  }

  /** Maps a walk script's exit code to the data plane's answer; 0 passes. */
  private checkWalk(res: { exitCode: number; stderr: string }, path: string, op: string): void {
    const at = Number(/at=(\d+)/.exec(res.stderr)?.[1] ?? "0");
    const prefix = at > 0 ? prefixOf(segmentsOf(path), at) : path;
    switch (res.exitCode) {
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
        throw new BayError("validation_error", `not readable: ${path}`, { details: { path } });
      default:
        throw this.helperFailure(op, res);
    }
  }

  private helperFailure(op: string, res: { exitCode: number; stderr: string }): BayError {
    const cause = new Error(`helper exited with ${res.exitCode}: ${res.stderr.slice(0, 2000)}`);
    return new BayError("internal_error", `workspace ${op} failed`, { cause });
  }

  /** Runs a command in a throwaway helper under a deadline for the whole run, then removes the helper. */
  private async runCommand(
    volume: VolumeRef,
    op: string,
    path: string,
    command: string[],
    timeoutMs: number,
    onStdout: (chunk: Buffer) => void,
  ): Promise<{ exitCode: number; stderr: string }> {
    const name = helperName();
    const run = new AbortController();
    const timer = setTimeout(() => run.abort(), timeoutMs);
    let failed = true;
    try {
      const res = await runHelperCommand(this.docker, this.codec, volume, {
        name,
        image: this.opts.helperImage,
        command,
        onStdout,
        maxStderrBytes: MAX_STDERR_BYTES,
        callSignal: () => AbortSignal.any([run.signal, AbortSignal.timeout(this.opts.callTimeoutMs)]),
        runSignal: run.signal,
      });
      failed = false;
      return res;
    } catch (err) {
      if (run.signal.aborted) throw timeoutError(op, timeoutMs, err);
      throw this.failure(err, op, path);
    } finally {
      clearTimeout(timer);
      await this.discard(name, failed);
    }
  }

  private async createArchiveHelper(volume: VolumeRef, op: string, path: string): Promise<{ id: string; name: string }> {
    const name = helperName();
    try {
      const id = await this.call(op, path, (signal) =>
        createArchiveHelper(this.docker, this.codec, volume, { name, image: this.opts.helperImage, signal }),
      );
      return { id, name };
    } catch (err) {
      await this.discard(name, true);
      throw err;
    }
  }

  private async withArchiveHelper<T>(volume: VolumeRef, op: string, path: string, fn: (helper: string) => Promise<T>): Promise<T> {
    const helper = await this.createArchiveHelper(volume, op, path);
    try {
      return await fn(helper.id);
    } catch (err) {
      throw this.failure(err, op, path);
    } finally {
      await this.discard(helper.name, false);
    }
  }

  /** One engine call under the call deadline; failures become data-plane errors. */
  private async call<T>(op: string, path: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await fn(AbortSignal.timeout(this.opts.callTimeoutMs));
    } catch (err) {
      throw this.failure(err, op, path);
    }
  }

  /**
   * Removes a helper. When that fails, or when its create was given up on (the engine
   * may still be making it), it is tried again in the background.
   */
  private async discard(name: string, mayAppear: boolean): Promise<void> {
    const attempt = () =>
      removeHelper(this.docker, name, AbortSignal.timeout(this.opts.callTimeoutMs)).then(
        (r) => r === "removed" || !mayAppear,
        () => false,
      );
    if (await attempt()) return;
    void (async () => {
      for (const ms of REMOVE_RETRY_MS) {
        await new Promise((resolve) => setTimeout(resolve, ms).unref?.());
        if (
          await removeHelper(this.docker, name, AbortSignal.timeout(this.opts.callTimeoutMs)).then(
            (r) => r === "removed",
            () => false,
          )
        )
          return;
      }
    })();
  }

  /** An engine failure as a data-plane error: no engine text or container id in what clients see (the cause keeps them). */
  private failure(err: unknown, op: string, path: string): BayError {
    if (err instanceof BayError) return err;
    if (isAbort(err)) return timeoutError(op, this.opts.callTimeoutMs, err);
    if (isUnreachable(err)) return new BayError("driver_unavailable", "docker engine unreachable", { retryAfter: 5, cause: err });
    if (isImageMissing(err)) return imageNotFound(this.opts.helperImage, err);
    if (/file name too long/i.test(engineMessage(err))) {
      return new BayError("invalid_path", "invalid path: too long", { details: { path, reason: "too long" }, cause: err });
    }
    return new BayError("internal_error", `workspace ${op} failed`, { cause: err });
  }
}

/** Passes a body through, calling `onChunk` for each chunk taken. */
async function* touching(body: AsyncIterable<Uint8Array>, onChunk: () => void): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    onChunk();
    yield chunk;
  }
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

/** One `%y %s %T@ %P` record of find; null when malformed. */
function parseRecord(record: Buffer): FileStat | null {
  const m = /^(\S) (\d+) (\d+(?:\.\d+)?) (.+)$/s.exec(record.toString("utf8"));
  if (!m) return null;
  const kind = KIND_OF_FIND_TYPE[m[1]!] ?? "other";
  return {
    name: m[4]!,
    kind,
    size: kind === "file" || kind === "symlink" ? Number(m[2]) : 0,
    modifiedAt: Math.floor(Number(m[3]) * 1000),
  };
}
