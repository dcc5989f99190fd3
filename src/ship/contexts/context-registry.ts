/**
 * The code contexts of this Ship: each one a supervised kernel process of its own (as
 * the sandbox user, like all user code here), so one context's crash, endless loop or
 * memory blow-up leaves the others and Ship alone. Every language has a default context:
 * Python's is the kernel Ship starts with (POST /ipython/exec runs there), the others are
 * started on their first use. Contexts live in memory: all are gone when the container
 * stops.
 */
import { randomBytes } from "node:crypto";
import { ShipError } from "../errors.ts";
import type { KernelState, SupervisedKernel } from "../kernel/supervised-kernel.ts";
import type { CwdRef } from "../paths.ts";
import { workingDir } from "../working-dir.ts";
import type { Language } from "./kernels.ts";
import { cgroupPids, checkPidsRoom, PIDS_PER_KERNEL, type PidsReader } from "./pids.ts";

/** A context as the API shows it. */
export interface ContextInfo {
  id: string;
  language: Language;
  /** Working directory, relative to the workspace. */
  cwd: string;
  created_at: string;
  /** The language's default context (POST /code/exec without context_id). */
  default: boolean;
  status: KernelState;
}

interface Entry {
  info: Omit<ContextInfo, "status">;
  kernel: SupervisedKernel;
}

export interface ContextRegistryOptions {
  workspace: string;
  /** Contexts that may be created (POST /contexts); the default ones do not count. */
  maxContexts: number;
  /** A kernel for a context, not started yet, in `cwd`. */
  kernelFor(language: Language, cwd: CwdRef): SupervisedKernel;
  /** Python's default context, the kernel Ship started with. */
  python: SupervisedKernel;
  /** The sandbox's pids in use and limit (default: the container's pids cgroup). */
  pids?: PidsReader;
}

/** The fixed id of a language's default context. */
export const defaultContextId = (language: Language): string => `ctx-default-${language}`;

export class ContextRegistry {
  private readonly entries = new Map<string, Entry>();
  private created = 0;
  private closed = false;
  private readonly pids: PidsReader;
  /** Pids promised to kernels still starting. */
  private reservedPids = 0;

  constructor(private readonly opts: ContextRegistryOptions) {
    this.pids = opts.pids ?? cgroupPids;
    this.add(defaultContextId("python"), "python", ".", true, opts.python);
  }

  /** Starts a context and resolves once its kernel is ready. */
  async create(language: Language, cwd?: string): Promise<ContextInfo> {
    const dir = await workingDir(this.opts.workspace, cwd);
    if (this.created >= this.opts.maxContexts) {
      throw new ShipError("quota_exceeded", `this sandbox already has ${this.opts.maxContexts} contexts; delete one first`, {
        details: { max_contexts: this.opts.maxContexts },
      });
    }
    checkPidsRoom(language, this.pids, this.reservedPids);
    const kernel = this.opts.kernelFor(language, dir);
    const entry = this.add(`ctx-${randomBytes(12).toString("hex")}`, language, dir.relative, false, kernel);
    this.created++;
    const ready = this.startReserving(language, kernel);
    try {
      await ready;
    } catch (err) {
      this.remove(entry);
      throw err;
    }
    return this.describe(entry);
  }

  list(): ContextInfo[] {
    return [...this.entries.values()].map((e) => this.describe(e));
  }

  get(id: string): ContextInfo {
    return this.describe(this.entry(id));
  }

  /** Ends a context's kernel and forgets it; a default context cannot be deleted (restart it). */
  delete(id: string): void {
    const entry = this.entry(id);
    if (entry.info.default) {
      throw new ShipError("conflict", `${id} is the default ${entry.info.language} context: it can be restarted, not deleted`, {
        details: { reason: "default_context" },
      });
    }
    this.remove(entry);
  }

  /** A fresh kernel for the context (its state is gone); resolves once it is ready. */
  async restart(id: string): Promise<ContextInfo> {
    const entry = this.entry(id);
    await entry.kernel.restart();
    return this.describe(entry);
  }

  /**
   * The kernel an exec runs in: the context named, or the default context of `language`
   * (Python when neither is given), started on first use.
   */
  kernelFor(contextId: string | undefined, language: Language | undefined): SupervisedKernel {
    if (contextId !== undefined) {
      const entry = this.entry(contextId);
      if (language !== undefined && language !== entry.info.language) {
        throw new ShipError("validation_error", `context ${contextId} runs ${entry.info.language}, not ${language}`, {
          details: { issues: [{ path: "json.language", message: `the context's language is ${entry.info.language}` }] },
        });
      }
      return entry.kernel;
    }
    const lang = language ?? "python";
    const existing = this.entries.get(defaultContextId(lang));
    if (existing) return existing.kernel;
    if (this.closed) throw new ShipError("not_found", "Ship is shutting down");
    checkPidsRoom(lang, this.pids, this.reservedPids);
    const kernel = this.opts.kernelFor(lang, { absolute: this.opts.workspace, relative: "." });
    this.add(defaultContextId(lang), lang, ".", true, kernel);
    // The exec waits for it to be ready (and reports a failed start) itself.
    this.startReserving(lang, kernel).catch(() => {});
    return kernel;
  }

  /** Ends every context (Ship is stopping). */
  closeAll(): void {
    this.closed = true;
    for (const entry of this.entries.values()) entry.kernel.stop();
    this.entries.clear();
  }

  /** Starts a kernel, keeping its pids reserved until it is ready (or failed). */
  private startReserving(language: Language, kernel: SupervisedKernel): Promise<void> {
    const pids = PIDS_PER_KERNEL[language];
    this.reservedPids += pids;
    kernel.start();
    return kernel.whenReady().finally(() => {
      this.reservedPids -= pids;
    });
  }

  private add(id: string, language: Language, cwd: string, isDefault: boolean, kernel: SupervisedKernel): Entry {
    const entry: Entry = { info: { id, language, cwd, created_at: new Date().toISOString(), default: isDefault }, kernel };
    this.entries.set(id, entry);
    return entry;
  }

  private remove(entry: Entry): void {
    if (this.entries.get(entry.info.id) !== entry) return;
    this.entries.delete(entry.info.id);
    if (!entry.info.default) this.created--;
    entry.kernel.stop();
  }

  private entry(id: string): Entry {
    const entry = this.entries.get(id);
    if (!entry) throw new ShipError("not_found", `context not found: ${id}`, { details: { kind: "context", id } });
    return entry;
  }

  private describe(entry: Entry): ContextInfo {
    return { ...entry.info, status: entry.kernel.state };
  }
}
