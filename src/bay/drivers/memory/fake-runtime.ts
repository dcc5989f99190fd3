/**
 * What runs behind a fake Ship's routes (fake-ship.ts): the container's workspace
 * on its volume in the engine's MemoryVolumeFiles, its code contexts, shell,
 * background processes, terminals and watches, and the life that ends them all
 * when the container dies. Paths here are already normalised (`normalize`, Ship's
 * path rule); the HTTP side checks requests and shapes answers.
 */
import type { z } from "zod";
import type { shipOperations as ops } from "../../../protocol/ship/index.ts";
import { BayError } from "../../errors.ts";
import type { RemoveOptions, VolumeFiles, VolumeRef } from "../driver.ts";
import { fileErrors } from "../volume-walk.ts";
import { FakeContexts } from "./fake-contexts.ts";
import { FakeProcesses } from "./fake-processes.ts";
import { FakePythonKernel, type KernelHost } from "./fake-python.ts";
import { PyError } from "./fake-python-parse.ts";
import { runShell, type ShellHost } from "./fake-shell.ts";
import { FakeTerminals } from "./fake-terminal.ts";
import { checkWatchRoot, type WatchEvent, watchTree } from "./fake-watch.ts";
import { WORKSPACE_ROOT_REASON } from "../../../protocol/ship/constants.ts";

export interface FakeRuntimeOptions {
  files: VolumeFiles;
  volume: VolumeRef;
  /** Code contexts that may be created (Ship's SHIP_MAX_CONTEXTS; default 8). */
  maxContexts?: number;
  /** How `time.sleep` and `sleep` wait (default: real time); ends early when `signal` aborts. */
  sleep?: (seconds: number, signal: AbortSignal) => Promise<void>;
}

/** Changes one watch reports per poll before it counts the rest as dropped (Ship's SHIP_WATCH_QUEUE default). */
const WATCH_QUEUE = 1024;
const WATCH_POLL_MS = 50;
const LIST_LIMIT = 10_000;

/** Resolves after `seconds`, or rejects once `signal` aborts. */
function sleep(seconds: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, Math.max(0, seconds) * 1000);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Ship's path rule: relative, no NUL, no escape; "." is the root. */
export function normalize(path: string): string {
  const invalid = (reason: string) =>
    new BayError("invalid_path", `invalid path ${JSON.stringify(path)}: ${reason}`, { details: { path, reason } });
  if (path.includes("\0")) throw invalid("contains a NUL byte");
  if (path === "") throw invalid("empty path");
  if (path.startsWith("/")) throw invalid("absolute paths are not allowed");
  const parts: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (parts.length === 0) throw invalid("escapes the workspace");
      parts.pop();
    } else parts.push(seg);
  }
  return parts.length === 0 ? "." : parts.join("/");
}

/** A fake container's runtime state; `kill` ends it. */
export class FakeRuntime {
  private readonly alive = new AbortController();
  readonly contexts: FakeContexts;
  readonly processes: FakeProcesses;
  readonly terminals: FakeTerminals;
  /** The workspace and clock the kernel, the shell and background commands share. */
  private readonly host: ShellHost;

  constructor(private readonly o: FakeRuntimeOptions) {
    const names = async (p: string) =>
      (await o.files.list(o.volume, p, { maxEntries: LIST_LIMIT, timeoutMs: 60_000 })).entries.map((e) => e.name);
    this.host = {
      readText: async (p) => new TextDecoder().decode(await this.readBytes(p)),
      writeText: (p, text) => this.writeBytes(p, new TextEncoder().encode(text)),
      list: names,
      remove: (p) => o.files.remove(o.volume, p),
      sleep: (s, signal) => (o.sleep ?? sleep)(s, AbortSignal.any([signal, this.alive.signal])),
    };
    this.contexts = new FakeContexts({
      newPython: () => new FakePythonKernel(pythonHost(this.host)),
      maxContexts: o.maxContexts ?? 8,
      checkCwd: (cwd) => this.directory(cwd),
    });
    this.processes = new FakeProcesses(this.host, this.alive.signal);
    this.terminals = new FakeTerminals(this.host, this.alive.signal);
  }

  /** Aborts once the container has died. */
  get stopped(): AbortSignal {
    return this.alive.signal;
  }

  /** Dies at once: commands and sleeping cells end. */
  kill(): void {
    this.alive.abort(new Error("the container stopped"));
  }

  /** A watch of `root` (checked before the stream starts), until `signal` aborts or the container dies. */
  async watch(root: string, recursive: boolean, signal: AbortSignal): Promise<AsyncGenerator<WatchEvent>> {
    await checkWatchRoot(this.o.files, this.o.volume, root);
    const stop = AbortSignal.any([signal, this.alive.signal]);
    const opts = {
      files: this.o.files,
      volume: this.o.volume,
      root,
      recursive,
      queueMax: WATCH_QUEUE,
      pollMs: WATCH_POLL_MS,
    };
    return watchTree(opts, stop);
  }

  remove(path: string, opts?: RemoveOptions): Promise<void> {
    return this.o.files.remove(this.o.volume, path, opts);
  }

  /** A file's size and bytes, streamed from the volume. */
  download(path: string) {
    return this.o.files.read(this.o.volume, path);
  }

  /** A context's working directory: normalised, and an existing directory of the workspace. */
  async directory(cwd: string): Promise<string> {
    const path = normalize(cwd);
    const where = await this.o.files.stat(this.o.volume, path);
    if (!where) throw fileErrors.notFound(path);
    if (where.kind !== "directory") throw new BayError("validation_error", `cwd is not a directory: ${path}`);
    return path;
  }

  async shell(body: z.infer<typeof ops.execShell.body>) {
    const cwd = await this.directory(body.cwd ?? ".");
    const env = body.env ?? {};
    if (body.background) {
      const item = this.processes.start(body.command, cwd, env, body.stdin === true);
      return { success: true, output: "", error: "", exit_code: null, truncated: false, process_id: item.process_id };
    }
    const deadline = AbortSignal.timeout(body.timeout * 1000);
    const r = await runShell(this.host, body.command, cwd, env, AbortSignal.any([deadline, this.alive.signal])).catch((e) => {
      if (!deadline.aborted) throw e;
      return null;
    });
    if (!r) {
      throw new BayError("timeout", `command timed out after ${body.timeout}s`, {
        details: { timeout: body.timeout, output: "", error: "", truncated: false },
      });
    }
    return { success: r.exitCode === 0, output: r.stdout, error: r.stderr, exit_code: r.exitCode, truncated: false, process_id: null };
  }

  async list(path: string) {
    const { entries, truncated } = await this.o.files.list(this.o.volume, path, { maxEntries: LIST_LIMIT, timeoutMs: 60_000 });
    return {
      path,
      entries: entries.map((e) => ({
        name: e.name,
        path: path === "." ? e.name : `${path}/${e.name}`,
        is_file: e.kind === "file",
        is_dir: e.kind === "directory",
        size: e.size,
        modified_time: new Date(e.modifiedAt).toISOString(),
      })),
      truncated,
    };
  }

  async readBytes(path: string): Promise<Uint8Array> {
    const { body } = await this.o.files.read(this.o.volume, path);
    return new Uint8Array(await new Response(body).arrayBuffer());
  }

  /** What a write of `path` would be refused for, writing nothing (Ship's checkUploadTarget). */
  async checkWrite(path: string): Promise<void> {
    if (path === ".") throw rootWrite();
    const target = await this.o.files.stat(this.o.volume, path);
    if (target?.kind === "directory") throw fileErrors.isDirectory(path);
  }

  async writeBytes(path: string, bytes: Uint8Array): Promise<void> {
    if (path === ".") throw rootWrite();
    if (this.alive.signal.aborted) throw new BayError("internal_error", "the container stopped");
    await this.o.files.write(this.o.volume, path, { size: bytes.byteLength, bytes });
  }
}

const rootWrite = () =>
  new BayError("invalid_path", "cannot write to the workspace root", { details: { path: ".", reason: WORKSPACE_ROOT_REASON } });

/** The kernel's view of the workspace: the volume's errors as Python exceptions. */
function pythonHost(host: ShellHost): KernelHost {
  const asPython = (path: string) => (e: unknown) => {
    if (!(e instanceof BayError)) throw e;
    if (e.code === "file_not_found") throw new PyError("FileNotFoundError", `[Errno 2] No such file or directory: '${path}'`);
    if (e.code === "validation_error") throw new PyError("IsADirectoryError", `[Errno 21] Is a directory: '${path}'`);
    throw new PyError("OSError", `${e.message}: '${path}'`);
  };
  return {
    readText: (p, shown) => host.readText(p).catch(asPython(shown)),
    writeText: (p, t, shown) => host.writeText(p, t).catch(asPython(shown)),
    sleep: host.sleep,
  };
}
