/**
 * VolumeFiles on Docker: one helper container per call, removed when the call
 * ends. Bytes move through the engine's archive API on a helper that is created and
 * never started (so a remote engine works the same): stat, read and write walk the
 * path with one stat per segment (a bounded number, a few at a time) and refuse
 * symlinks on the way, because the engine would follow them inside the helper's own
 * root. Listing, removing and measuring need a process: a throwaway helper runs
 * one of volume-commands.ts, its output streamed and capped.
 *
 * Every engine call has a deadline (`callTimeoutMs`; a transfer may not stall for
 * longer), a command its own; past one the call answers `timeout`. Engine errors
 * never reach a client: the engine's words go to the log (`internal`, `cause`) of a
 * plain data-plane error.
 */
import type Docker from "dockerode";
import { BayError } from "../../errors.ts";
import type { DirectoryListing, FileBody, FileStat, OpenedFile, RemoveOptions, VolumeFiles, VolumeRef } from "../driver.ts";
import { fileErrors, prefixOf, segmentsOf, walkChain, type Walked } from "../volume-walk.ts";
import {
  createArchiveHelper,
  getArchive,
  helperName,
  putArchive,
  removeHelper,
  runHelperCommand,
  statPath,
  statPathMode,
} from "./archive.ts";
import { escapedWrite, racedWrite, retryRaced } from "./archive-races.ts";
import { ensureArchiveRoot } from "./archive-root.ts";
import { engineMessage, engineStatus, imageNotFound, isAbort, isImageMissing, isNotFound, isUnreachable } from "./docker-errors.ts";
import type { LabelCodec } from "./labels.ts";
import { listCommand, removeCommand, usageCommand, type VolumeCommand } from "./volume-commands.ts";
import type { TarDir } from "./volume-tar.ts";

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

/** ./volume-tar.ts and tar-stream, loaded with the first file moved through a helper: a Bay that moves none never loads them. */
function volumeTar(): typeof import("./volume-tar.ts") {
  return require("./volume-tar.ts") as typeof import("./volume-tar.ts");
}

/** Segment stats in flight at once for one walk. */
const STAT_CONCURRENCY = 8;
const READ_LIFETIME_MS = 10 * 60_000;
/** Helper stderr kept for the log. */
const MAX_STDERR_BYTES = 16 * 1024;
/** Background retries removing a helper whose create or removal did not finish (reconcile sweeps what is left). */
const REMOVE_RETRY_MS = [1_000, 3_000, 10_000, 30_000];
/** Removing a helper is cleanup, not the request's work: it gets at least this long, however tight the call deadline. */
const MIN_REMOVE_TIMEOUT_MS = 10_000;

/** Whether a failure is a deadline firing (ours or the engine request's). */
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
  private expired = false;
  /** Whether the clock ran out (not an abort by `clear`). */
  get fired(): boolean {
    return this.expired;
  }
  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort();
    }, this.ms);
  }
  /** Stops the clock; `abort` also ends whatever the signal is attached to. */
  clear(abort = false): void {
    clearTimeout(this.timer);
    if (abort) this.controller.abort();
  }
}

export class DockerVolumeFiles implements VolumeFiles {
  private readonly opts: Required<DockerVolumeFilesOptions>;
  /** ARCHIVE_ROOT_IMAGE looked for or made (archiveRoot). */
  private archiveRootMade: Promise<void> | undefined;

  constructor(
    private readonly docker: Docker,
    private readonly codec: LabelCodec,
    opts: Partial<DockerVolumeFilesOptions> = {},
  ) {
    this.opts = { readLifetimeMs: READ_LIFETIME_MS, ...DEFAULT_VOLUME_FILES_OPTIONS, ...opts };
  }

  async stat(volume: VolumeRef, path: string): Promise<FileStat | null> {
    return retryRaced(() => this.statOnce(volume, path), path, "stat");
  }

  async read(volume: VolumeRef, path: string): Promise<OpenedFile> {
    return retryRaced(() => this.readOnce(volume, path), path, "read");
  }

  private async statOnce(volume: VolumeRef, path: string): Promise<FileStat | null> {
    return this.withArchiveHelper(volume, "stat", path, async (helper) => {
      if (path !== ".") return (await this.walk(helper, path, "allow")).target;
      const root = await this.call("stat", path, (signal) => statPath(this.docker, helper, ROOT, ".", signal));
      if (!root) throw new BayError("internal_error", "workspace stat failed: the volume root is missing");
      return root;
    });
  }

  private async readOnce(volume: VolumeRef, path: string): Promise<OpenedFile> {
    if (path === ".") throw fileErrors.isDirectory(path);
    const helper = await this.createArchiveHelper(volume, "read", path);
    // Armed just before the transfer starts, so a long walk does not eat into it.
    let transfer: IdleDeadline | undefined;
    let released: Promise<void> | undefined;
    const release = () => {
      clearTimeout(lifetime);
      transfer?.clear(true);
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
      transfer = new IdleDeadline(this.opts.callTimeoutMs);
      const stream = await getArchive(this.docker, helper.id, absolute(path), transfer.signal);
      const { size, body } = await volumeTar().streamFirstFile(stream, path, release);
      // From here the reader sets the pace; the lifetime bounds it.
      transfer.clear();
      return { stat: { ...target, size }, body };
    } catch (err) {
      const fired = transfer?.fired === true;
      await release();
      // A stall past the deadline is a timeout, also when it cut the first chunk (never tried again).
      if (fired && !(err instanceof BayError && err.code !== "internal_error")) throw timeoutError("read", this.opts.callTimeoutMs, err);
      throw isNotFound(err) ? fileErrors.notFound(path) : this.failure(err, "read", path);
    }
  }

  async write(volume: VolumeRef, path: string, body: FileBody): Promise<void> {
    if (path === ".") throw fileErrors.root(path);
    await this.withArchiveHelper(volume, "write", path, async (helper) => {
      const modes: number[] = [];
      const { target, missingDirs, chain } = await retryRaced(
        () => {
          modes.length = 0;
          return this.walk(helper, path, "refuse", modes);
        },
        path,
        "write",
      );
      if (target?.kind === "directory") throw fileErrors.isDirectory(path);
      if (target && target.kind !== "file") throw fileErrors.notRegularFile(path);
      // The parents that exist go in the tar too, as they are: should one vanish before the put, the engine recreates it as the tar says, not as root.
      const segments = segmentsOf(path);
      const dirs: TarDir[] = [];
      for (let i = 0; i < segments.length - 1 && chain[i]?.kind === "directory"; i++) {
        dirs.push({ name: prefixOf(segments, i + 1), mode: modes[i], mtime: new Date(chain[i]!.modifiedAt) });
      }
      for (const name of missingDirs) dirs.push({ name });
      // A stalled engine must not hold the upload forever: each chunk it takes resets the clock.
      const idle = new IdleDeadline(this.opts.callTimeoutMs);
      const bytes = body.bytes instanceof Uint8Array ? body.bytes : touching(body.bytes, () => idle.touch());
      try {
        await volumeTar().sendOneFileTar({ dirs, name: path, size: body.size, body: bytes }, (tar) =>
          putArchive(this.docker, helper, ROOT, tar, idle.signal),
        );
      } catch (err) {
        if (idle.fired && !(err instanceof BayError)) throw timeoutError("write", this.opts.callTimeoutMs, err);
        // A parent deleted while the engine unpacked: what the write touched just went (as a walk that finds it gone says).
        if (!(err instanceof BayError) && /no such file or directory/i.test(engineMessage(err))) throw fileErrors.notFound(path);
        // A parent swapped for a symlink and back while the engine unpacked (the walk found directories).
        if (!(err instanceof BayError) && /file exists|not a directory/i.test(engineMessage(err))) {
          throw racedWrite(path, { engine_message: engineMessage(err) });
        }
        throw err;
      } finally {
        idle.clear();
      }
      if (await this.call("write", path, (signal) => escapedWrite(this.docker, helper, signal))) throw racedWrite(path);
    });
  }

  async list(volume: VolumeRef, path: string, opts: { maxEntries: number; timeoutMs: number }): Promise<DirectoryListing> {
    return this.runCommand(volume, "listing", path, listCommand(path, opts.maxEntries), opts.timeoutMs);
  }

  async remove(volume: VolumeRef, path: string, opts: RemoveOptions = {}): Promise<void> {
    if (path === ".") throw fileErrors.root(path);
    await this.runCommand(volume, "delete", path, removeCommand(path, opts.directory === true), this.opts.commandTimeoutMs);
  }

  async usage(volume: VolumeRef): Promise<number> {
    return this.runCommand(volume, "usage", ".", usageCommand(), this.opts.commandTimeoutMs);
  }

  /**
   * The lstat chain of `path` from one stat per segment, STAT_CONCURRENCY at a
   * time, stopping at the first segment that is missing or no directory.
   */
  private async walk(
    helper: string,
    path: string,
    finalLink: "refuse" | "allow",
    modes: number[] = [],
  ): Promise<Walked & { chain: Array<FileStat | null> }> {
    const segments = segmentsOf(path);
    const chain: Array<FileStat | null> = [];
    const done = () => ({ ...walkChain(path, chain, finalLink), chain });
    for (let start = 0; start < segments.length; start += STAT_CONCURRENCY) {
      const batch = segments
        .slice(start, start + STAT_CONCURRENCY)
        .map((segment, k) =>
          this.call("stat", path, (signal) =>
            statPathMode(this.docker, helper, absolute(prefixOf(segments, start + k + 1)), segment, signal),
          ),
        );
      for (const result of await Promise.allSettled(batch)) {
        if (result.status === "rejected") {
          // Stats below a symlink or a file fail in the engine; the walk explains those itself.
          walkChain(path, chain, finalLink);
          throw result.reason;
        }
        chain.push(result.value?.stat ?? null);
        modes.push(result.value?.mode ?? 0);
        if (result.value?.stat.kind !== "directory") return done();
      }
    }
    return done();
  }

  /** Runs a command in a throwaway helper under a deadline for the whole run, removes the helper, reads the outcome. */
  private async runCommand<T>(volume: VolumeRef, op: string, path: string, command: VolumeCommand<T>, timeoutMs: number): Promise<T> {
    const name = helperName();
    const run = new AbortController();
    const timer = setTimeout(() => run.abort(), timeoutMs);
    let failed = true;
    try {
      const res = await runHelperCommand(this.docker, this.codec, volume, {
        name,
        image: this.opts.helperImage,
        command: command.argv,
        onStdout: (chunk) => command.onStdout(chunk),
        onStderr: (chunk) => command.onStderr?.(chunk),
        maxStderrBytes: MAX_STDERR_BYTES,
        callSignal: () => AbortSignal.any([run.signal, AbortSignal.timeout(this.opts.callTimeoutMs)]),
        runSignal: run.signal,
      });
      failed = false;
      return command.outcome(res);
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
      const id = await this.call(op, path, async (signal) => {
        await this.archiveRoot(signal);
        try {
          return await createArchiveHelper(this.docker, this.codec, volume, { name, signal });
        } catch (err) {
          // The image was removed behind Bay's back: made again, once.
          if (!isImageMissing(err)) throw err;
          this.archiveRootMade = undefined;
          await this.archiveRoot(signal);
          return await createArchiveHelper(this.docker, this.codec, volume, { name, signal });
        }
      });
      return { id, name };
    } catch (err) {
      await this.discard(name, true);
      throw err;
    }
  }

  /** ARCHIVE_ROOT_IMAGE on the engine: looked for (and made) once per process, again after a failure. */
  private archiveRoot(signal: AbortSignal): Promise<void> {
    this.archiveRootMade ??= ensureArchiveRoot(this.docker, signal).catch((err) => {
      this.archiveRootMade = undefined;
      throw err;
    });
    return this.archiveRootMade;
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
      removeHelper(this.docker, name, this.removeSignal()).then(
        (r) => r === "removed" || !mayAppear,
        () => false,
      );
    if (await attempt()) return;
    void (async () => {
      for (const ms of REMOVE_RETRY_MS) {
        await new Promise((resolve) => setTimeout(resolve, ms).unref?.());
        if (
          await removeHelper(this.docker, name, this.removeSignal()).then(
            (r) => r === "removed",
            () => false,
          )
        )
          return;
      }
    })();
  }

  private removeSignal(): AbortSignal {
    return AbortSignal.timeout(Math.max(this.opts.callTimeoutMs, MIN_REMOVE_TIMEOUT_MS));
  }

  /** An engine failure as a data-plane error: no engine text or container id in what clients see (the cause keeps them). */
  private failure(err: unknown, op: string, path: string): BayError {
    if (err instanceof BayError) return err;
    const internal = { operation: `workspace ${op}`, path, engine_message: engineMessage(err), engine_status: engineStatus(err) ?? null };
    if (isAbort(err)) return timeoutError(op, this.opts.callTimeoutMs, err);
    if (isUnreachable(err))
      return new BayError("driver_unavailable", "the container engine is unreachable", { retryAfter: 5, internal, cause: err });
    if (isImageMissing(err)) return imageNotFound(this.opts.helperImage, err);
    if (/file name too long/i.test(engineMessage(err))) {
      return new BayError("invalid_path", "invalid path: too long", { details: { path, reason: "too long" }, internal, cause: err });
    }
    return new BayError("internal_error", `workspace ${op} failed`, { internal, cause: err });
  }
}

/** Passes a body through, calling `onChunk` for each chunk taken. */
async function* touching(body: AsyncIterable<Uint8Array>, onChunk: () => void): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    onChunk();
    yield chunk;
  }
}
