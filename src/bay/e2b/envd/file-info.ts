/**
 * File metadata for envd's Filesystem service (Stat, ListDir with depth,
 * MakeDir, Move): mode, owner, group and symlink targets, which Ship's file API
 * does not report. Each call is one fixed script run through the sandbox's shell
 * capability as the sandbox user; paths travel as environment variables (never
 * spliced into the script), were checked by Bay's path rule first, and the
 * script refuses any that resolves (through a symlink) outside /workspace.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { SandboxExec } from "../../domain/sandbox-exec.ts";
import type { CallContext } from "../../domain/capability-router.ts";
import { BayError } from "../../errors.ts";
import { type EntryInfo, EntryInfoSchema, FileType } from "../generated/envd/filesystem/filesystem_pb.ts";
import { toE2bPath } from "../paths.ts";

/** One entry per 9 NUL-terminated fields: type, size, mode, permissions, user, group, mtime, relative path, link target. */
const FORMAT = "%y\\0%s\\0%m\\0%M\\0%u\\0%g\\0%T@\\0%P\\0%l\\0";
const FIELDS = 9;

const CONFINE = `confine() { r=$(realpath -m -- "$1") || exit 46; case "$r" in /workspace|/workspace/*) ;; *) exit 46;; esac; }`;

const SCRIPTS = {
  stat: `${CONFINE}; confine "$P"; [ -e "$P" ] || [ -L "$P" ] || exit 44; find "$P" -maxdepth 0 -printf '${FORMAT}'`,
  list: `${CONFINE}; confine "$P"; [ -e "$P" ] || exit 44; [ -d "$P" ] || exit 45; find "$P" -mindepth 1 -maxdepth "$D" -printf '${FORMAT}'`,
  mkdir: `${CONFINE}; confine "$P"; { [ -e "$P" ] || [ -L "$P" ]; } && exit 47; mkdir -p -- "$P" || exit 48; find "$P" -maxdepth 0 -printf '${FORMAT}'`,
  move: `${CONFINE}; confine "$S"; confine "$T"; [ -e "$S" ] || [ -L "$S" ] || exit 44; mkdir -p -- "$(dirname -- "$T")" || exit 48; mv -T -- "$S" "$T" || exit 48; find "$T" -maxdepth 0 -printf '${FORMAT}'`,
} as const;

/** What each script's own exit codes mean. */
const EXIT: Record<number, (path: string) => BayError> = {
  44: (p) => new BayError("file_not_found", `no such file or directory: ${toE2bPath(p)}`, { details: { path: p } }),
  45: (p) => new BayError("validation_error", `not a directory: ${toE2bPath(p)}`, { details: { path: p } }),
  46: (p) =>
    new BayError("invalid_path", `invalid path: ${toE2bPath(p)} resolves outside the workspace`, {
      details: { path: p, reason: "symlink" },
    }),
  47: (p) => new BayError("conflict", `already exists: ${toE2bPath(p)}`),
  48: (p) => new BayError("validation_error", `the operation failed on ${toE2bPath(p)}`, { details: { path: p } }),
};

/** Depth Bay lists at most (E2B's ListDir walks as deep as asked). */
export const MAX_LIST_DEPTH = 16;

export class FileInfo {
  constructor(private readonly exec: SandboxExec) {}

  async stat(ctx: CallContext, path: string): Promise<EntryInfo> {
    return this.one(await this.run(ctx, "stat", { P: path }, path), path);
  }

  async list(ctx: CallContext, path: string, depth: number): Promise<EntryInfo[]> {
    const d = Math.min(Math.max(depth, 1), MAX_LIST_DEPTH);
    const fields = await this.run(ctx, "list", { P: path, D: String(d) }, path);
    return parseEntries(fields, path);
  }

  /** Creates the directory (and its parents); `conflict` when something is already there. */
  async makeDir(ctx: CallContext, path: string): Promise<EntryInfo> {
    return this.one(await this.run(ctx, "mkdir", { P: path }, path), path);
  }

  async move(ctx: CallContext, source: string, destination: string): Promise<EntryInfo> {
    return this.one(await this.run(ctx, "move", { S: source, T: destination }, source), destination);
  }

  private one(fields: string[], path: string): EntryInfo {
    const [entry] = parseEntries(fields, path, true);
    if (!entry) throw new BayError("ship_error", "the sandbox runtime answered no file information");
    return entry;
  }

  private async run(ctx: CallContext, script: keyof typeof SCRIPTS, env: Record<string, string>, path: string): Promise<string[]> {
    const res = await this.exec.shell(ctx, { command: SCRIPTS[script], timeout: 30, env, background: false, stdin: false });
    const body = (await res.json()) as { exit_code: number; output: string; truncated: boolean };
    const known = EXIT[body.exit_code];
    if (known) throw known(path);
    if (body.exit_code !== 0) throw new BayError("ship_error", `file information failed (exit ${body.exit_code})`);
    if (body.truncated) {
      throw new BayError("payload_too_large", "the listing is larger than the sandbox runtime returns at once; list a smaller depth", {
        details: { limit_bytes: body.output.length },
      });
    }
    return body.output.split("\0");
  }
}

/** Entries from the script's NUL-separated fields; `self` names the entry the path itself. */
export function parseEntries(fields: string[], base: string, self = false): EntryInfo[] {
  const out: EntryInfo[] = [];
  for (let i = 0; i + FIELDS <= fields.length; i += FIELDS) {
    const [type, size, mode, permissions, owner, group, mtime, rel, link] = fields.slice(i, i + FIELDS) as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const path = self || rel === "" ? base : base === "." ? rel : `${base}/${rel}`;
    const name = path === "." ? "user" : (path.split("/").pop() ?? path);
    out.push(
      create(EntryInfoSchema, {
        name,
        type: type === "f" ? FileType.FILE : type === "d" ? FileType.DIRECTORY : type === "l" ? FileType.SYMLINK : FileType.UNSPECIFIED,
        path: toE2bPath(path),
        size: BigInt(Number.parseInt(size, 10) || 0),
        mode: Number.parseInt(mode, 8) || 0,
        permissions,
        owner,
        group,
        modifiedTime: timestampFromMs(Math.round(Number.parseFloat(mtime) * 1000) || 0),
        ...(type === "l" ? { symlinkTarget: link } : {}),
      }),
    );
  }
  return out;
}
