/**
 * Where uploads wait on Bay's disk when their bytes cannot stream straight on
 * (a file part that arrives before its `path`, or a workspace write that must
 * know its size first). One directory per Bay process, so several processes on
 * one host never touch each other's files; directories of processes that are
 * gone (a crash, `kill -9`) are removed when the next one starts. The bytes
 * spooled at once are capped: past the cap an upload is refused with 429 and
 * Retry-After instead of filling the disk. So is each owner's share of it, so
 * that one owner's uploads (sent slowly, or stopping just short of their
 * limit) cannot hold the whole spool and turn every other owner away.
 */
import { createReadStream, lstatSync, mkdirSync, mkdtempSync, type ReadStream, readdirSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BayError } from "../errors.ts";

export interface UploadSpoolOptions {
  /** Parent of every process's spool directory; default `<tmpdir>/bay-spool`. */
  baseDir?: string;
  /** Most bytes spooled at once by this process. */
  maxBytes: number;
  /** Most bytes one owner's uploads may hold of it at once (default: all of it). */
  maxBytesPerOwner?: number;
}

/** Opens spool slots for one owner (what an upload's receiver is handed). */
export interface SpoolOpener {
  open(): Promise<SpoolSlot>;
}

/** One spooled upload's files; `release` closes their readers and removes them (safe twice). */
export interface SpoolSlot {
  dir: string;
  /** Counts `n` more bytes against the cap; throws 429 when they do not fit. */
  take(n: number): void;
  /**
   * A read stream on one of the slot's files, closed by `release` whether it was read
   * or not: an fd left on a removed file would hold its disk space outside the cap.
   */
  read(file: string): ReadStream;
  release(): Promise<void>;
}

export class UploadSpool {
  readonly dir: string;
  private inUse = 0;
  /** Bytes each owner holds right now; an owner holding none has no entry. */
  private readonly byOwner = new Map<string, number>();

  constructor(private readonly opts: UploadSpoolOptions) {
    const base = opts.baseDir ?? join(tmpdir(), "bay-spool");
    mkdirSync(base, { recursive: true, mode: 0o700 });
    const dir = join(base, String(process.pid));
    if (isPrivateDir(base)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A base another user can write into (made before Bay's first start in a shared
    // /tmp, or a symlink) would let them read, swap or redirect tenants' bytes:
    // such a base is never used; this process spools in a fresh private directory.
    this.dir = isPrivateDir(base) && isPrivateDir(dir) ? dir : mkdtempSync(join(tmpdir(), `bay-spool-${process.pid}-`));
  }

  /** Bytes spooled right now (for tests and metrics). */
  get bytesInUse(): number {
    return this.inUse;
  }

  /** Bytes `owner`'s uploads hold right now. */
  ownerBytes(owner: string): number {
    return this.byOwner.get(owner) ?? 0;
  }

  /** The spool as `owner`'s uploads see it: their slots count against their share. */
  forOwner(owner: string): SpoolOpener {
    return { open: () => this.open(owner) };
  }

  /**
   * Removes what dead processes left: spool directories whose pid no longer
   * runs, and the `bay-upload-*` folders older Bay versions used. Returns how many.
   */
  static cleanStale(baseDir = join(tmpdir(), "bay-spool")): number {
    let removed = 0;
    // Only in a base no one else can write into: elsewhere the entries may be anyone's.
    for (const name of isPrivateDir(baseDir) ? safeList(baseDir) : []) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
      rmSync(join(baseDir, name), { recursive: true, force: true });
      removed++;
    }
    for (const name of safeList(tmpdir())) {
      // Fallback spools of dead processes (`bay-spool-<pid>-…`) and older versions' folders, if ours.
      const fallback = /^bay-spool-(\d+)-/.exec(name);
      const stale = fallback ? Number(fallback[1]) !== process.pid && !isAlive(Number(fallback[1])) : name.startsWith("bay-upload-");
      if (!stale || !isPrivateDir(join(tmpdir(), name))) continue;
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  /** A private directory for one upload of `owner`'s. */
  async open(owner: string): Promise<SpoolSlot> {
    const dir = await mkdtemp(join(this.dir, "up-"));
    let taken = 0;
    let released = false;
    /** The refusal that ended this slot's takes, if one did. */
    let refused: BayError | null = null;
    const readers: ReadStream[] = [];
    /** Gives back what the slot counted, once. */
    const giveBack = () => {
      this.inUse -= taken;
      const left = this.ownerBytes(owner) - taken;
      if (left > 0) this.byOwner.set(owner, left);
      else this.byOwner.delete(owner);
      taken = 0;
    };
    return {
      dir,
      take: (n: number) => {
        if (refused) throw refused;
        const held = this.ownerBytes(owner);
        const share = this.opts.maxBytesPerOwner ?? this.opts.maxBytes;
        if (this.inUse + n > this.opts.maxBytes) {
          refused = new BayError("quota_exceeded", "Bay's upload spool is full; retry shortly", {
            retryAfter: 5,
            details: { reason: "spool_full", limit_bytes: this.opts.maxBytes },
          });
        } else if (held + n > share) {
          // The spool has room, but not in this owner's share of it.
          refused = new BayError("quota_exceeded", "your uploads waiting on Bay's disk fill your share of it; retry when one ends", {
            retryAfter: 5,
            details: { reason: "spool_share_full", limit_bytes: share },
          });
        }
        if (refused) {
          // The refused upload is over: its bytes count no more, now, rather than after its files
          // are removed, so the owner's other uploads in flight do not fail on them too.
          giveBack();
          throw refused;
        }
        this.inUse += n;
        this.byOwner.set(owner, held + n);
        taken += n;
      },
      read: (file: string) => {
        const reader = createReadStream(file);
        readers.push(reader);
        return reader;
      },
      release: async () => {
        if (released) return;
        released = true;
        // One still opening fails on the removed file, with no reader left to tell: its error is dropped.
        for (const reader of readers) reader.on("error", () => {}).destroy();
        giveBack();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}

/** A real directory (not a symlink) of this process's user that no one else may write into. */
function isPrivateDir(path: string): boolean {
  try {
    const st = lstatSync(path);
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as someone else.
    return (e as { code?: string }).code === "EPERM";
  }
}
