/**
 * The kernel line protocol shared by Ship's kernels (the Python driver, driver.py, and
 * the JS/TS kernel, js/kernel.ts): JSON lines.
 * stdin: one `KernelRequest` per line. stdout: a private channel carrying `KernelEvent`s;
 * user output never reaches it. Per cell, zero or more `stream` and `display` events as
 * the output is produced, then exactly one `result`; after an interrupt (SIGINT, or the
 * JS kernel's request on stdin) the kernel says `interrupted` as soon as the cell is
 * being stopped, before its result.
 */

/** One cell to run. */
export interface KernelRequest {
  id: number;
  code: string;
  /** Set in the kernel's environment and kept, before `env` (Ship sends them once per kernel process). */
  base_env?: Record<string, string>;
  /** Set for this cell only: put back as they were, or removed, once it ends. */
  env?: Record<string, string>;
}

/**
 * The JS kernel's interrupt, sent before any SIGINT (js-kernel-process.ts): it names the
 * cell, so it never stops a later one, and a kernel whose event loop is free acts on it
 * at once. SIGINT follows only for a kernel busy in user code.
 */
export interface KernelInterruptRequest {
  interrupt: number;
}

/** One rich output item, as in IPython: MIME type → text (binary types base64). */
export interface KernelDataItem {
  type: "execute_result" | "display_data";
  data: Record<string, string>;
}

/** Once, when the kernel can take requests. */
export interface ReadyEvent {
  event: "ready";
  /** e.g. `bun 1.2.3`, `python 3.11.2`. */
  runtime: string;
  language: string;
}

/** Output of a running cell, as it is produced. */
export interface StreamEvent {
  id: number;
  event: "stream";
  name: "stdout" | "stderr";
  text: string;
}

/** A rich output of a running cell (display(), as it is produced). */
export interface DisplayEvent {
  id: number;
  event: "display";
  data: Record<string, string>;
}

/**
 * The running cell got the interrupt and is ending: its result follows, possibly only
 * after a while (it carries all of the cell's output, up to the cap). A kernel that
 * never says so is taken to ignore the interrupt.
 */
export interface InterruptedEvent {
  id: number;
  event: "interrupted";
}

/** The end of a cell. */
export interface ResultEvent {
  id: number;
  event: "result";
  success: boolean;
  /** stdout and stderr text in the order produced, at most SHIP_MAX_OUTPUT_BYTES bytes. */
  output: string;
  error: string | null;
  data: KernelDataItem[];
  /** null when the cell never got one (Python: interrupted before it ran). */
  execution_count: number | null;
  truncated: boolean;
}

export type KernelEvent = ReadyEvent | StreamEvent | DisplayEvent | InterruptedEvent | ResultEvent;
