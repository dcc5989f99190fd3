/**
 * The in-memory fake Ship's code contexts: Ship's bookkeeping (ids, default context
 * per language, the SHIP_MAX_CONTEXTS cap, a default context that can be restarted but
 * not deleted, cwd checked against the workspace) with a fake Python kernel per Python
 * context. JavaScript and TypeScript contexts exist, but the fake runs no JavaScript:
 * their execs answer `success:false` naming the fake, never a made-up result.
 */
import type { Context, PythonExecResult } from "../../../protocol/ship/index.ts";
import { BayError } from "../../errors.ts";
import type { FakePythonKernel } from "./fake-python.ts";

export type Language = Context["language"];
export const LANGUAGES: readonly Language[] = ["python", "javascript", "typescript"];

/** Runs one cell in a context. */
export type Exec = (code: string, timeoutSeconds: number, signal?: AbortSignal) => Promise<PythonExecResult>;

interface Entry {
  info: Omit<Context, "status">;
  kernel: FakePythonKernel | null;
}

export interface FakeContextsOptions {
  /** A fresh fake Python kernel. */
  newPython(): FakePythonKernel;
  /** SHIP_MAX_CONTEXTS. */
  maxContexts: number;
  /** Checks a context's cwd (normalised, existing directory) and returns it. */
  checkCwd(cwd: string): Promise<string>;
}

const defaultId = (language: Language) => `ctx-default-${language}`;

const noJavaScript = (language: Language): PythonExecResult => ({
  success: false,
  output: "",
  error: `NotImplementedError: the in-memory fake Ship runs no ${language}`,
  data: [],
  execution_count: null,
  kernel_restarted: false,
  truncated: false,
});

export class FakeContexts {
  private readonly entries = new Map<string, Entry>();
  private created = 0;
  private serial = 0;

  constructor(private readonly o: FakeContextsOptions) {
    // The kernel of /ipython/exec, which runs through execIn() and so follows a restart.
    this.add(defaultId("python"), "python", ".", true, o.newPython());
  }

  list(): Context[] {
    return [...this.entries.values()].map(describe);
  }

  get(id: string): Context {
    return describe(this.entry(id));
  }

  async create(language: Language, cwd?: string): Promise<Context> {
    const dir = await this.o.checkCwd(cwd ?? ".");
    if (this.created >= this.o.maxContexts) {
      throw new BayError("quota_exceeded", `this sandbox already has ${this.o.maxContexts} contexts; delete one first`, {
        details: { max_contexts: this.o.maxContexts },
      });
    }
    this.created++;
    const id = `ctx-fake${(++this.serial).toString(16).padStart(20, "0")}`;
    return describe(this.add(id, language, dir, false, language === "python" ? this.o.newPython() : null));
  }

  delete(id: string): void {
    const entry = this.entry(id);
    if (entry.info.default) {
      throw new BayError("conflict", `${id} is the default ${entry.info.language} context: it can be restarted, not deleted`, {
        details: { reason: "default_context" },
      });
    }
    this.entries.delete(id);
    this.created--;
  }

  restart(id: string): Context {
    const entry = this.entry(id);
    if (entry.kernel) entry.kernel = this.o.newPython();
    return describe(entry);
  }

  /** The context named, or the default context of `language` (Python when neither is given), started on first use. */
  execIn(contextId: string | undefined, language: Language | undefined): Exec {
    let entry: Entry;
    if (contextId !== undefined) {
      entry = this.entry(contextId);
      if (language !== undefined && language !== entry.info.language) {
        throw new BayError("validation_error", `context ${contextId} runs ${entry.info.language}, not ${language}`, {
          details: { issues: [{ path: "json.language", message: `the context's language is ${entry.info.language}` }] },
        });
      }
    } else {
      const lang = language ?? "python";
      entry =
        this.entries.get(defaultId(lang)) ?? this.add(defaultId(lang), lang, ".", true, lang === "python" ? this.o.newPython() : null);
    }
    const { kernel, info } = entry;
    return kernel ? (code, timeout, signal) => kernel.exec(code, timeout, signal) : async () => noJavaScript(info.language);
  }

  private add(id: string, language: Language, cwd: string, isDefault: boolean, kernel: FakePythonKernel | null): Entry {
    const entry: Entry = { info: { id, language, cwd, created_at: new Date().toISOString(), default: isDefault }, kernel };
    this.entries.set(id, entry);
    return entry;
  }

  private entry(id: string): Entry {
    const entry = this.entries.get(id);
    if (!entry) throw new BayError("not_found", `context not found: ${id}`, { details: { kind: "context", id } });
    return entry;
  }
}

function describe(entry: Entry): Context {
  return { ...entry.info, status: "ready" };
}
